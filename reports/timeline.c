/*
 * timeline.c — the inline SVG timeline of report.html: one horizontal lane
 * per node and client, virtual time left to right, faults as translucent
 * bands, operations as ticks colored by outcome, crashes, restarts,
 * partitions and checkpoints, violations as red dots with a tooltip.
 *
 * Self-contained SVG: presentation attributes instead of a style sheet, no
 * xmlns (inline SVG in HTML needs none, and the page must name no URL). A huge
 * run stays small: at most REPORT_TIMELINE_OPS_MAX operation ticks and
 * REPORT_TIMELINE_MARKS_MAX marks of each other kind are drawn, sampled
 * evenly, and a note says so. Coordinates are printed from integers, never
 * through the locale. Depends on the text helpers of libreports.
 */
#include "reports/reports.h"

#include <assert.h>
#include <inttypes.h>
#include <string.h>

#define TL_WIDTH       1000 /* viewBox units; the page scales it to its width */
#define TL_LABEL_WIDTH 110  /* left of the plot: lane names */
#define TL_RIGHT       16
#define TL_TOP         8
#define TL_LANE_HEIGHT 34
#define TL_AXIS_HEIGHT 24 /* below the lanes: the tick labels */
#define TL_NOTE_HEIGHT 18 /* below the axis when sampling left something out */
/* Inside a lane, from its top: fault names sit above the marks, never on them. */
#define TL_LANE_LABEL     22 /* baseline of the lane's name */
#define TL_BAND_TOP       3  /* fault bands */
#define TL_BAND_HEIGHT    28
#define TL_BAND_TEXT      11 /* baseline of a fault's name on its band */
#define TL_TICK_TOP       15 /* operation ticks */
#define TL_TICK_HEIGHT    14
#define TL_MARK_MID       22 /* centre of crashes, restarts and violations */
#define TL_AXIS_TICKS_MAX 12
#define TL_OTHER_LANE     "other"

#define COLOR_OK      "#2e9d4f"
#define COLOR_FAIL    "#d0342c"
#define COLOR_UNKNOWN "#e0a100"
#define COLOR_FAULT   "#f28c28"
#define COLOR_CHECK   "#8a63d2"
#define COLOR_CRASH   "#222222"
#define COLOR_GRID    "#d8dee4"
#define COLOR_TEXT    "#24292f"

struct timeline {
    const struct report_run *r;
    FILE *out;
    size_t rows;    /* lanes drawn: r->lane_count, plus TL_OTHER_LANE when something has none */
    int64_t end_us; /* the right edge of the plot */
    bool sampled;   /* something was left out: room for a note below the axis */
};

/*
 * Draws `budget` of `total` items spread evenly: item i is taken when
 * floor((i + 1) * budget / total) moves past floor(i * budget / total).
 */
struct sampler {
    uint64_t total, budget, seen, taken;
};

static bool sampler_take(struct sampler *s)
{
    assert(s->seen < s->total);
    bool take = s->budget >= s->total ||
                (s->seen + 1) * s->budget / s->total > s->seen * s->budget / s->total;
    s->seen++;
    s->taken += take;
    return take;
}

static bool is_op(enum report_mark mark)
{
    return mark == REPORT_OP_OK || mark == REPORT_OP_FAIL || mark == REPORT_OP_UNKNOWN;
}

/* Marks drawn across every lane rather than on one. */
static bool is_global(const struct report_event *e, size_t lane)
{
    return e->mark == REPORT_CHECKPOINT ||
           ((e->mark == REPORT_PARTITION || e->mark == REPORT_HEAL) && lane == SIZE_MAX);
}

/* The row of a lane name, or SIZE_MAX when it names no lane. */
static size_t tl_find_lane(const struct report_run *r, const char *name)
{
    for (size_t i = 0; name[0] != '\0' && i < r->lane_count; i++) {
        if (strcmp(r->lanes[i], name) == 0) {
            return i;
        }
    }
    return SIZE_MAX;
}

/* The row to draw on: the lane's, or the "other" row. */
static size_t tl_row(const struct timeline *tl, const char *name)
{
    size_t lane = tl_find_lane(tl->r, name);
    return lane == SIZE_MAX ? tl->r->lane_count : lane;
}

static void tl_init(struct timeline *tl, const struct report_run *r, FILE *out)
{
    bool other = false;
    int64_t end = r->simulated_us;
    for (size_t i = 0; i < r->fault_count; i++) {
        const struct report_fault *f = &r->faults[i];
        other = other || tl_find_lane(r, f->lane) == SIZE_MAX;
        end = f->armed_at_us > end ? f->armed_at_us : end; /* -1: never armed */
        end = f->healed_at_us > end ? f->healed_at_us : end;
    }
    for (size_t i = 0; i < r->event_count; i++) {
        const struct report_event *e = &r->events[i];
        size_t lane = tl_find_lane(r, e->lane);
        other = other || (lane == SIZE_MAX && !is_global(e, lane));
        end = e->at_us > end ? e->at_us : end;
    }
    *tl = (struct timeline){
        .r = r, .out = out, .rows = r->lane_count + (other ? 1 : 0), .end_us = end > 0 ? end : 1};
}

/* A coordinate in tenths of a unit, printed as "12.3" or "12". */
static void tl_put(FILE *out, int64_t tenths)
{
    assert(tenths >= 0);
    if (tenths % 10 == 0) {
        fprintf(out, "%" PRId64, tenths / 10);
    } else {
        fprintf(out, "%" PRId64 ".%" PRId64, tenths / 10, tenths % 10);
    }
}

static int64_t tl_x(const struct timeline *tl, int64_t at_us)
{
    int64_t t = at_us < 0 ? 0 : at_us > tl->end_us ? tl->end_us : at_us;
    double plot = (double)(TL_WIDTH - TL_LABEL_WIDTH - TL_RIGHT) * 10.0;
    return TL_LABEL_WIDTH * 10 + (int64_t)((double)t / (double)tl->end_us * plot + 0.5);
}

static int64_t tl_row_top(size_t row)
{
    return (TL_TOP + (int64_t)row * TL_LANE_HEIGHT) * 10;
}

static int64_t tl_height(const struct timeline *tl)
{
    return TL_TOP + (int64_t)tl->rows * TL_LANE_HEIGHT + TL_AXIS_HEIGHT +
           (tl->sampled ? TL_NOTE_HEIGHT : 0);
}

/* <title>3.2s · primary · what: label</title>, the tooltip of a mark. */
static void tl_title(FILE *out, int64_t at_us, const char *lane, const char *what,
                     const char *label)
{
    char at[REPORT_FMT_MAX];
    report_format_duration(at_us < 0 ? 0 : at_us, at);
    fprintf(out, "<title>%s", at);
    if (lane[0] != '\0') {
        fputs(" \xC2\xB7 ", out);
        report_xml_put_text(out, lane);
    }
    fprintf(out, " \xC2\xB7 %s", what);
    if (label[0] != '\0') {
        fputs(": ", out);
        report_xml_put_text(out, label);
    }
    fputs("</title>", out);
}

static void tl_lanes(const struct timeline *tl)
{
    FILE *out = tl->out;
    for (size_t row = 0; row < tl->rows; row++) {
        const char *name = row < tl->r->lane_count ? tl->r->lanes[row] : TL_OTHER_LANE;
        int64_t top = tl_row_top(row);
        fputs("<rect x=\"0\" y=\"", out);
        tl_put(out, top);
        fprintf(out, "\" width=\"%d\" height=\"%d\" fill=\"%s\"/>\n", TL_WIDTH, TL_LANE_HEIGHT,
                row % 2 == 0 ? "#f6f8fa" : "#ffffff");
        fprintf(out, "<text class=\"lane-label\" x=\"%d\" y=\"", TL_LABEL_WIDTH - 8);
        tl_put(out, top + TL_LANE_LABEL * 10);
        fputs("\" text-anchor=\"end\" font-size=\"12\">", out);
        report_xml_put_text(out, name);
        fputs("</text>\n", out);
    }
}

/* A step of 1, 2 or 5 times a power of ten microseconds giving at most TL_AXIS_TICKS_MAX ticks. */
static int64_t tl_axis_step(int64_t end_us)
{
    static const int64_t multiples[] = {1, 2, 5};
    for (int64_t power = 1; power <= INT64_MAX / 10; power *= 10) {
        for (size_t i = 0; i < sizeof multiples / sizeof multiples[0]; i++) {
            if (end_us / (power * multiples[i]) <= TL_AXIS_TICKS_MAX) {
                return power * multiples[i];
            }
        }
    }
    return end_us;
}

static void tl_axis(const struct timeline *tl)
{
    FILE *out = tl->out;
    int64_t bottom = tl_row_top(tl->rows);
    int64_t step = tl_axis_step(tl->end_us);
    for (int64_t t = 0; t <= tl->end_us; t += step) {
        char label[REPORT_FMT_MAX];
        report_format_duration(t, label);
        int64_t x = tl_x(tl, t);
        fputs("<line x1=\"", out);
        tl_put(out, x);
        fprintf(out, "\" y1=\"%d\" x2=\"", TL_TOP);
        tl_put(out, x);
        fputs("\" y2=\"", out);
        tl_put(out, bottom + 40); /* the tick reaches just below the last lane */
        fprintf(out, "\" stroke=\"%s\"/>\n<text x=\"", COLOR_GRID);
        tl_put(out, x);
        fputs("\" y=\"", out);
        tl_put(out, bottom + (TL_AXIS_HEIGHT - 7) * 10);
        fprintf(out, "\" text-anchor=\"middle\" font-size=\"11\">%s</text>\n", label);
        if (t > INT64_MAX - step) {
            break;
        }
    }
}

static void tl_fault(const struct timeline *tl, const struct report_fault *f)
{
    FILE *out = tl->out;
    int64_t x1 = tl_x(tl, f->armed_at_us);
    int64_t x2 = tl_x(tl, f->healed_at_us >= 0 ? f->healed_at_us : tl->end_us);
    int64_t width = x2 - x1 < 20 ? 20 : x2 - x1; /* an instant fault stays visible */
    int64_t top = tl_row_top(tl_row(tl, f->lane)) + TL_BAND_TOP * 10;
    char armed[REPORT_FMT_MAX], healed[REPORT_FMT_MAX], fired[REPORT_FMT_MAX];
    report_format_duration(f->armed_at_us < 0 ? 0 : f->armed_at_us, armed);
    report_format_duration(f->healed_at_us < 0 ? 0 : f->healed_at_us, healed);
    report_format_count(f->fired, fired);
    fputs("<g class=\"fault\"><rect x=\"", out);
    tl_put(out, x1);
    fputs("\" y=\"", out);
    tl_put(out, top);
    fputs("\" width=\"", out);
    tl_put(out, width);
    fprintf(out, "\" height=\"%d\" rx=\"3\" fill=\"%s\" fill-opacity=\"0.25\" stroke=\"%s\"/>",
            TL_BAND_HEIGHT, COLOR_FAULT, COLOR_FAULT);
    fputs("<title>fault ", out);
    report_xml_put_text(out, f->name);
    fprintf(out, ": armed at %s, %s%s, fired %s times</title>", armed,
            f->healed_at_us >= 0 ? "healed at " : "never healed",
            f->healed_at_us >= 0 ? healed : "", fired);
    /* The name on the band when it fits (about 6 units per character at this size). */
    if ((int64_t)strlen(f->name) * 60 + 60 <= width) {
        fputs("<text x=\"", out);
        tl_put(out, x1 + 30);
        fputs("\" y=\"", out);
        tl_put(out, top + (TL_BAND_TEXT - TL_BAND_TOP) * 10);
        fputs("\" font-size=\"9\">", out);
        report_xml_put_text(out, f->name);
        fputs("</text>", out);
    }
    fputs("</g>\n", out);
}

/* Checkpoints, and partitions or heals that name no lane: a line across every lane. */
static void tl_global(const struct timeline *tl, const struct report_event *e)
{
    static const char *const what[] = {[REPORT_CHECKPOINT] = "checkpoint",
                                       [REPORT_PARTITION] = "partition",
                                       [REPORT_HEAL] = "heal"};
    assert(e->mark == REPORT_CHECKPOINT || e->mark == REPORT_PARTITION || e->mark == REPORT_HEAL);
    FILE *out = tl->out;
    int64_t x = tl_x(tl, e->at_us);
    fputs("<line x1=\"", out);
    tl_put(out, x);
    fprintf(out, "\" y1=\"%d\" x2=\"", TL_TOP);
    tl_put(out, x);
    fputs("\" y2=\"", out);
    tl_put(out, tl_row_top(tl->rows));
    fprintf(out, "\" stroke=\"%s\" stroke-width=\"%s\"%s>",
            e->mark == REPORT_HEAL        ? COLOR_OK
            : e->mark == REPORT_PARTITION ? COLOR_CRASH
                                          : COLOR_CHECK,
            e->mark == REPORT_CHECKPOINT ? "1" : "1.5",
            e->mark == REPORT_CHECKPOINT ? "" : " stroke-dasharray=\"4 3\"");
    tl_title(out, e->at_us, e->lane, what[e->mark], e->label);
    fputs("</line>\n", out);
}

/* What an event is drawn as; the layers are drawn in this order, later on top. */
enum tl_layer { TL_GLOBAL, TL_OP_OK, TL_OP_BAD, TL_POINT, TL_VIOLATION, TL_LAYERS };

static enum tl_layer tl_layer_of(const struct timeline *tl, const struct report_event *e)
{
    if (is_global(e, tl_find_lane(tl->r, e->lane))) {
        return TL_GLOBAL;
    } else if (e->mark == REPORT_OP_OK) {
        return TL_OP_OK;
    } else if (is_op(e->mark)) {
        return TL_OP_BAD;
    }
    return e->mark == REPORT_VIOLATION ? TL_VIOLATION : TL_POINT;
}

/*
 * One sampler per layer. Failed and unknown operations are what a student
 * looks for, so they take the operation budget first; ok ones get the rest.
 */
static void tl_plan(const struct timeline *tl, struct sampler samplers[TL_LAYERS])
{
    uint64_t totals[TL_LAYERS] = {0};
    for (size_t i = 0; i < tl->r->event_count; i++) {
        totals[tl_layer_of(tl, &tl->r->events[i])]++;
    }
    uint64_t ops_max = REPORT_TIMELINE_OPS_MAX;
    for (int layer = 0; layer < TL_LAYERS; layer++) {
        uint64_t budget = REPORT_TIMELINE_MARKS_MAX;
        if (layer == TL_OP_BAD) {
            budget = ops_max;
        } else if (layer == TL_OP_OK) {
            budget = totals[TL_OP_BAD] >= ops_max ? 0 : ops_max - totals[TL_OP_BAD];
        }
        samplers[layer] = (struct sampler){.total = totals[layer], .budget = budget};
    }
}

/* A tick of an operation that succeeded: one more segment of the shared path. */
static void tl_op_ok(const struct timeline *tl, int64_t x, int64_t top)
{
    fputc('M', tl->out);
    tl_put(tl->out, x);
    fputc(' ', tl->out);
    tl_put(tl->out, top + TL_TICK_TOP * 10);
    fprintf(tl->out, "v%d", TL_TICK_HEIGHT);
}

/* A tick of an operation that failed or whose outcome is unknown, with its tooltip. */
static void tl_op_bad(const struct timeline *tl, const struct report_event *e, int64_t x,
                      int64_t top)
{
    bool failed = e->mark == REPORT_OP_FAIL;
    fputs("<line x1=\"", tl->out);
    tl_put(tl->out, x);
    fputs("\" y1=\"", tl->out);
    tl_put(tl->out, top + TL_TICK_TOP * 10 - 10);
    fputs("\" x2=\"", tl->out);
    tl_put(tl->out, x);
    fputs("\" y2=\"", tl->out);
    tl_put(tl->out, top + (TL_TICK_TOP + TL_TICK_HEIGHT) * 10 + 10);
    fprintf(tl->out, "\" stroke=\"%s\" stroke-width=\"1.5\">", failed ? COLOR_FAIL : COLOR_UNKNOWN);
    tl_title(tl->out, e->at_us, e->lane, failed ? "failed" : "outcome unknown", e->label);
    fputs("</line>\n", tl->out);
}

/* A crash (a cross), a restart (a triangle), a partition or heal on one lane (a dashed bar). */
static void tl_point(const struct timeline *tl, const struct report_event *e, int64_t x,
                     int64_t top)
{
    FILE *out = tl->out;
    int64_t mid = top + TL_MARK_MID * 10;
    const char *what = "partition";
    fputs("<path d=\"M", out);
    if (e->mark == REPORT_CRASH) {
        tl_put(out, x - 50);
        fputc(' ', out);
        tl_put(out, mid - 50);
        fprintf(out, "l10 10m0 -10l-10 10\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\">",
                COLOR_CRASH);
        what = "crash";
    } else if (e->mark == REPORT_RESTART) {
        tl_put(out, x);
        fputc(' ', out);
        tl_put(out, mid - 60);
        fprintf(out, "l6 11h-12z\" fill=\"%s\">", COLOR_OK);
        what = "restart";
    } else {
        tl_put(out, x);
        fputc(' ', out);
        tl_put(out, top + TL_BAND_TOP * 10);
        fprintf(out, "v%d\" stroke=\"%s\" stroke-width=\"2\" stroke-dasharray=\"3 2\">",
                TL_BAND_HEIGHT, e->mark == REPORT_HEAL ? COLOR_OK : COLOR_CRASH);
        what = e->mark == REPORT_HEAL ? "heal" : "partition";
    }
    tl_title(out, e->at_us, e->lane, what, e->label);
    fputs("</path>\n", out);
}

static void tl_violation(const struct timeline *tl, const struct report_event *e, int64_t x,
                         int64_t top)
{
    fputs("<circle class=\"violation\" cx=\"", tl->out);
    tl_put(tl->out, x);
    fputs("\" cy=\"", tl->out);
    tl_put(tl->out, top + TL_MARK_MID * 10);
    fprintf(tl->out, "\" r=\"5.5\" fill=\"%s\" stroke=\"#ffffff\" stroke-width=\"1.5\">",
            COLOR_FAIL);
    tl_title(tl->out, e->at_us, e->lane, "VIOLATION", e->label);
    fputs("</circle>\n", tl->out);
}

/* Every sampled event of one layer; ok ticks share one path, having no tooltip. */
static void tl_layer(const struct timeline *tl, enum tl_layer layer, struct sampler *s)
{
    if (s->total == 0 || s->budget == 0) {
        return;
    }
    if (layer == TL_OP_OK) {
        fprintf(tl->out, "<path stroke=\"%s\" stroke-width=\"1\" d=\"", COLOR_OK);
    }
    for (size_t i = 0; i < tl->r->event_count; i++) {
        const struct report_event *e = &tl->r->events[i];
        if (tl_layer_of(tl, e) != layer || !sampler_take(s)) {
            continue;
        }
        int64_t x = tl_x(tl, e->at_us);
        int64_t top = tl_row_top(tl_row(tl, e->lane));
        switch (layer) {
        case TL_GLOBAL:
            tl_global(tl, e);
            break;
        case TL_OP_OK:
            tl_op_ok(tl, x, top);
            break;
        case TL_OP_BAD:
            tl_op_bad(tl, e, x, top);
            break;
        case TL_POINT:
            tl_point(tl, e, x, top);
            break;
        case TL_VIOLATION:
            tl_violation(tl, e, x, top);
            break;
        case TL_LAYERS:
            assert(false);
            break;
        }
    }
    if (layer == TL_OP_OK) {
        fputs("\"/>\n", tl->out);
    }
}

/* Says what was left out, when sampling left anything out. */
static void tl_note(const struct timeline *tl, const struct sampler samplers[TL_LAYERS])
{
    uint64_t ops = samplers[TL_OP_OK].total + samplers[TL_OP_BAD].total;
    uint64_t ops_taken = samplers[TL_OP_OK].taken + samplers[TL_OP_BAD].taken;
    uint64_t marks = 0, marks_taken = 0;
    for (int layer = 0; layer < TL_LAYERS; layer++) {
        if (layer != TL_OP_OK && layer != TL_OP_BAD) {
            marks += samplers[layer].total;
            marks_taken += samplers[layer].taken;
        }
    }
    if (!tl->sampled) {
        return;
    }
    assert(ops_taken < ops || marks_taken < marks);
    char shown[REPORT_FMT_MAX], total[REPORT_FMT_MAX];
    report_format_count(ops_taken, shown);
    report_format_count(ops, total);
    fprintf(tl->out,
            "<text class=\"note\" x=\"%d\" y=\"%" PRId64 "\" font-size=\"11\">"
            "Showing %s of %s operations (failed and unknown ones first, the rest "
            "sampled evenly)",
            TL_LABEL_WIDTH, tl_height(tl) - 5, shown, total);
    if (marks_taken < marks) {
        report_format_count(marks_taken, shown);
        report_format_count(marks, total);
        fprintf(tl->out, " and %s of %s other marks", shown, total);
    }
    fputs(".</text>\n", tl->out);
}

int report_write_timeline(const struct report_run *r, FILE *out)
{
    assert(report_run_is_valid(r));
    assert(out != NULL);
    struct timeline tl;
    tl_init(&tl, r, out);
    struct sampler samplers[TL_LAYERS];
    tl_plan(&tl, samplers);
    for (int layer = 0; layer < TL_LAYERS; layer++) {
        tl.sampled = tl.sampled || samplers[layer].budget < samplers[layer].total;
    }
    fprintf(out,
            "<svg class=\"timeline\" viewBox=\"0 0 %d %" PRId64 "\" width=\"100%%\" role=\"img\" "
            "font-family=\"system-ui, sans-serif\">\n<title>Timeline of ",
            TL_WIDTH, tl_height(&tl));
    report_xml_put_text(out, r->drill_name);
    fputs("</title>\n", out);
    tl_lanes(&tl);
    tl_axis(&tl);
    for (size_t i = 0; i < r->fault_count; i++) {
        if (r->faults[i].armed_at_us >= 0) { /* a statement never armed has no band */
            tl_fault(&tl, &r->faults[i]);
        }
    }
    for (int layer = 0; layer < TL_LAYERS; layer++) {
        tl_layer(&tl, (enum tl_layer)layer, &samplers[layer]);
    }
    tl_note(&tl, samplers);
    fputs("</svg>\n", out);
    return report_stream_status(out);
}
