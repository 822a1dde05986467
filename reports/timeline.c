/*
 * timeline.c — the inline SVG timeline of report.html: virtual time left to
 * right with its axis at the top and the bottom; one row per node showing its
 * state over time as a strip (in sync, leading, behind, degraded, refusing
 * writes, offline, down), the faults that strike it as labelled bands, its
 * crashes and restarts; one row per client (one row for all of them when there
 * are many) with its operations coloured by outcome: ok, rejected (a business
 * rule said no), failed, unknown. Partitions are bands across the nodes from
 * the cut to the heal; checkpoints are lines; violations are red dots on the
 * copies and the operations they concern; the steps of each violation's story
 * are numbered circles the page links to (id "story-E-K").
 *
 * Readable at any size: up to REPORT_TIMELINE_TICKS_MAX operations each get a
 * tick; past that, each client row shows the density of operations per time
 * bucket (stacked by outcome, a failed or unknown one never thinner than a
 * line) and every failed or unknown operation keeps its own tick above the
 * bars (at most REPORT_TIMELINE_OPS_MAX, sampled evenly past that, and a note
 * says so). Self-contained SVG: presentation attributes, no xmlns, no URL;
 * coordinates printed from integers, never through the locale. Depends on the
 * text helpers of libreports.
 */
#include "reports/reports.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define TL_WIDTH           1000 /* viewBox units; the page scales it to its width */
#define TL_LABEL_WIDTH     110  /* left of the plot: lane names */
#define TL_RIGHT           16
#define TL_AXIS_TOP        16 /* the time labels above the rows */
#define TL_NOTES_HEIGHT    28 /* story steps that belong to no row, then partition labels */
#define TL_AXIS_BOTTOM     22 /* the time labels below the rows */
#define TL_NOTE_HEIGHT     18 /* the note under the axis */
#define TL_NODE_HEIGHT     42
#define TL_CLIENT_HEIGHT   30
#define TL_CLIENT_ROWS_MAX 8 /* more clients than this share one row */
#define TL_AXIS_TICKS_MAX  12
#define TL_BUCKETS         200 /* density buckets over the plot */
#define TL_OTHER_LANE      "other"
/* Inside a node row, from its top */
#define TL_BAND_TOP     2
#define TL_BAND_HEIGHT  27
#define TL_BAND_TEXT    10 /* baseline of a fault's name, first line; the second is 9 below */
#define TL_NODE_MID     19 /* crashes, restarts, violations, story steps */
#define TL_STRIP_TOP    32 /* the state strip */
#define TL_STRIP_HEIGHT 7
/* Inside a client row */
#define TL_BAD_TOP     2 /* density mode: a tick per failed or unknown operation */
#define TL_BAD_HEIGHT  7
#define TL_BAR_BOTTOM  27 /* density bars grow up from here */
#define TL_BAR_HEIGHT  17
#define TL_TICK_TOP    9 /* tick mode */
#define TL_TICK_HEIGHT 16
#define TL_CLIENT_MID  17

#define COLOR_OK       "#2e9d4f"
#define COLOR_REJECTED "#8c959f"
#define COLOR_FAIL     "#d0342c"
#define COLOR_UNKNOWN  "#e0a100"
#define COLOR_FAULT    "#f28c28"
#define COLOR_CHECK    "#8a63d2"
#define COLOR_CRASH    "#222222"
#define COLOR_GRID     "#d8dee4"
#define COLOR_CUT      "#57606a"

/* The colours and words of node states, in enum report_node_state's order. */
static const char *const state_color[REPORT_STATE_COUNT] = {
    "#b7e4c7", "#6ea8dc", "#f2cc60", "#f0883e", "#d0342c", "#afb8c1", "#24292f"};
static const char *const state_word[REPORT_STATE_COUNT] = {
    "up / in sync",    "leading alone", "behind (lag)", "degraded",
    "refusing writes", "offline",       "down"};

enum tl_outcome { TL_OK, TL_REJECTED, TL_UNKNOWN, TL_FAIL, TL_OUTCOMES };
static const char *const outcome_color[TL_OUTCOMES] = {COLOR_OK, COLOR_REJECTED, COLOR_UNKNOWN,
                                                       COLOR_FAIL};
static const char *const outcome_word[TL_OUTCOMES] = {"ok", "rejected", "outcome unknown",
                                                      "failed"};

struct tl_row {
    const char *name;
    bool node;
    int64_t top; /* in tenths */
    int height;
    int64_t label_free[2]; /* fault labels: where each line is free again, tenths */
    int64_t story_free;    /* story markers: where the next may go */
};

struct timeline {
    const struct report_run *r;
    FILE *out;
    size_t rows;
    struct tl_row *row;
    size_t *lane_row;   /* lane index -> row */
    size_t clients_row; /* the shared clients row, SIZE_MAX: none */
    size_t other_row;   /* SIZE_MAX: none */
    int64_t end_us;
    int64_t plot_bottom; /* tenths */
    bool density;
    uint64_t ops, bad_ops, bad_drawn;
    int64_t notes_free; /* story markers in the notes row */
};

/* Draws `budget` of `total` items spread evenly. */
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
    return mark == REPORT_OP_OK || mark == REPORT_OP_FAIL || mark == REPORT_OP_UNKNOWN ||
           mark == REPORT_OP_REJECTED;
}

static enum tl_outcome outcome_of(enum report_mark mark)
{
    assert(is_op(mark));
    return mark == REPORT_OP_OK         ? TL_OK
           : mark == REPORT_OP_REJECTED ? TL_REJECTED
           : mark == REPORT_OP_FAIL     ? TL_FAIL
                                        : TL_UNKNOWN;
}

/* A partition of the network (not an offline local's cut, which is its own lane's). */
static bool is_net_partition(const struct report_event *e)
{
    return (e->mark == REPORT_PARTITION && strncmp(e->label, "partition ", 10) == 0) ||
           (e->mark == REPORT_HEAL && strcmp(e->label, "partition healed") == 0);
}

/* Marks drawn across every row rather than on one. */
static bool is_global(const struct report_event *e)
{
    return e->mark == REPORT_CHECKPOINT || is_net_partition(e);
}

static size_t tl_find_lane(const struct report_run *r, const char *name)
{
    for (size_t i = 0; name[0] != '\0' && i < r->lane_count; i++) {
        if (strcmp(r->lanes[i], name) == 0) {
            return i;
        }
    }
    return SIZE_MAX;
}

static bool lane_is_node(const struct report_run *r, size_t lane)
{
    if (r->node_lane_count > 0) {
        return lane < r->node_lane_count;
    }
    return strncmp(r->lanes[lane], "client", 6) != 0;
}

/* The row to draw on: the lane's, or the "other" row. */
static size_t tl_row(const struct timeline *tl, const char *name)
{
    size_t lane = tl_find_lane(tl->r, name);
    return lane == SIZE_MAX ? tl->other_row : tl->lane_row[lane];
}

static int64_t tl_x(const struct timeline *tl, int64_t at_us)
{
    int64_t t = at_us < 0 ? 0 : at_us > tl->end_us ? tl->end_us : at_us;
    double plot = (double)(TL_WIDTH - TL_LABEL_WIDTH - TL_RIGHT) * 10.0;
    return TL_LABEL_WIDTH * 10 + (int64_t)((double)t / (double)tl->end_us * plot + 0.5);
}

static int64_t tl_height(const struct timeline *tl, bool with_note)
{
    return tl->plot_bottom / 10 + TL_AXIS_BOTTOM + (with_note ? TL_NOTE_HEIGHT : 0);
}

/* A coordinate in tenths of a unit, printed as "12.3" or "12". */
static void tl_put(FILE *out, int64_t tenths)
{
    if (tenths < 0) {
        fputc('-', out);
        tenths = -tenths;
    }
    if (tenths % 10 == 0) {
        fprintf(out, "%" PRId64, tenths / 10);
    } else {
        fprintf(out, "%" PRId64 ".%" PRId64, tenths / 10, tenths % 10);
    }
}

/* Prints `name="value"` pairs whose values are tenths: tl_attrs(out, 2, "x", x, "y", y). */
static void tl_attr(FILE *out, const char *name, int64_t tenths)
{
    fprintf(out, " %s=\"", name);
    tl_put(out, tenths);
    fputc('"', out);
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

/* ---- layout ------------------------------------------------------------ */

static int tl_rows_plan(struct timeline *tl)
{
    const struct report_run *r = tl->r;
    size_t clients = 0;
    bool other = false;
    for (size_t i = 0; i < r->lane_count; i++) {
        clients += !lane_is_node(r, i);
    }
    for (size_t i = 0; i < r->fault_count && !other; i++) {
        other = tl_find_lane(r, r->faults[i].lane) == SIZE_MAX;
    }
    for (size_t i = 0; i < r->event_count && !other; i++) {
        const struct report_event *e = &r->events[i];
        other = !is_global(e) && tl_find_lane(r, e->lane) == SIZE_MAX;
    }
    bool shared = clients > TL_CLIENT_ROWS_MAX;
    size_t rows = r->lane_count - (shared ? clients - 1 : 0) + (other ? 1 : 0);
    tl->row = calloc(rows + 1, sizeof(*tl->row));
    tl->lane_row = calloc(r->lane_count + 1, sizeof(*tl->lane_row));
    if (tl->row == NULL || tl->lane_row == NULL) {
        return -ENOMEM;
    }
    tl->clients_row = tl->other_row = SIZE_MAX;
    size_t n = 0;
    for (size_t i = 0; i < r->lane_count; i++) {
        if (!lane_is_node(r, i) && shared) {
            if (tl->clients_row == SIZE_MAX) {
                tl->clients_row = n;
                tl->row[n++] = (struct tl_row){.name = "clients"};
            }
            tl->lane_row[i] = tl->clients_row;
            continue;
        }
        tl->lane_row[i] = n;
        tl->row[n++] = (struct tl_row){.name = r->lanes[i], .node = lane_is_node(r, i)};
    }
    if (other) {
        tl->other_row = n;
        tl->row[n++] = (struct tl_row){.name = TL_OTHER_LANE, .node = true};
    }
    assert(n == rows);
    tl->rows = rows;
    int64_t y = (TL_AXIS_TOP + TL_NOTES_HEIGHT) * 10;
    for (size_t i = 0; i < rows; i++) {
        tl->row[i].top = y;
        tl->row[i].height = tl->row[i].node ? TL_NODE_HEIGHT : TL_CLIENT_HEIGHT;
        y += tl->row[i].height * 10;
    }
    tl->plot_bottom = y;
    return 0;
}

static int tl_init(struct timeline *tl, const struct report_run *r, FILE *out)
{
    int64_t end = r->simulated_us;
    uint64_t ops = 0, bad = 0;
    for (size_t i = 0; i < r->fault_count; i++) {
        const struct report_fault *f = &r->faults[i];
        end = f->armed_at_us > end ? f->armed_at_us : end; /* -1: never armed */
        end = f->healed_at_us > end ? f->healed_at_us : end;
    }
    for (size_t i = 0; i < r->event_count; i++) {
        const struct report_event *e = &r->events[i];
        end = e->at_us > end ? e->at_us : end;
        if (is_op(e->mark)) {
            ops++;
            bad += e->mark == REPORT_OP_FAIL || e->mark == REPORT_OP_UNKNOWN;
        }
    }
    *tl = (struct timeline){.r = r,
                            .out = out,
                            .end_us = end > 0 ? end : 1,
                            .density = ops > REPORT_TIMELINE_TICKS_MAX,
                            .ops = ops,
                            .bad_ops = bad};
    return tl_rows_plan(tl);
}

/* ---- the frame: rows, their names, the time axis ------------------------- */

static void tl_rows(const struct timeline *tl)
{
    FILE *out = tl->out;
    for (size_t i = 0; i < tl->rows; i++) {
        const struct tl_row *row = &tl->row[i];
        fputs("<rect x=\"0\"", out);
        tl_attr(out, "y", row->top);
        fprintf(out, " width=\"%d\" height=\"%d\" fill=\"%s\"/>\n", TL_WIDTH, row->height,
                i % 2 == 0 ? "#f6f8fa" : "#ffffff");
        fprintf(out, "<text class=\"lane-label\" x=\"%d\"", TL_LABEL_WIDTH - 8);
        tl_attr(out, "y", row->top + (row->node ? TL_NODE_MID + 4 : TL_CLIENT_MID + 4) * 10);
        fprintf(out, " text-anchor=\"end\" font-size=\"12\"%s>",
                row->node ? " font-weight=\"600\"" : "");
        report_xml_put_text(out, row->name);
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

/* Grid lines across the rows, the time above them and below them. */
static void tl_axis(const struct timeline *tl)
{
    FILE *out = tl->out;
    int64_t step = tl_axis_step(tl->end_us);
    for (int64_t t = 0; t <= tl->end_us; t += step) {
        char label[REPORT_FMT_MAX];
        report_format_duration(t, label);
        int64_t x = tl_x(tl, t);
        fputs("<line", out);
        tl_attr(out, "x1", x);
        tl_attr(out, "y1", (TL_AXIS_TOP - 3) * 10);
        tl_attr(out, "x2", x);
        tl_attr(out, "y2", tl->plot_bottom + 40);
        fprintf(out, " stroke=\"%s\"/>\n<text class=\"axis\"", COLOR_GRID);
        tl_attr(out, "x", x);
        fprintf(out, " y=\"%d\" text-anchor=\"middle\" font-size=\"11\">%s</text>\n",
                TL_AXIS_TOP - 5, label);
        fputs("<text", out);
        tl_attr(out, "x", x);
        tl_attr(out, "y", tl->plot_bottom + (TL_AXIS_BOTTOM - 7) * 10);
        fprintf(out, " text-anchor=\"middle\" font-size=\"11\">%s</text>\n", label);
        if (t > INT64_MAX - step) {
            break;
        }
    }
}

/* ---- node rows: state strips, fault bands, partitions ---------------------- */

static void tl_strip(const struct timeline *tl, const struct tl_row *row, int64_t from_us,
                     int64_t to_us, enum report_node_state st, const char *label)
{
    FILE *out = tl->out;
    int64_t x1 = tl_x(tl, from_us), x2 = tl_x(tl, to_us);
    fputs("<rect class=\"state\"", out);
    tl_attr(out, "x", x1);
    tl_attr(out, "y", row->top + TL_STRIP_TOP * 10);
    tl_attr(out, "width", x2 - x1 < 5 ? 5 : x2 - x1);
    fprintf(out, " height=\"%d\" fill=\"%s\">", TL_STRIP_HEIGHT, state_color[st]);
    char from[REPORT_FMT_MAX], to[REPORT_FMT_MAX];
    report_format_duration(from_us, from);
    report_format_duration(to_us, to);
    fprintf(out, "<title>%s\xE2\x80\x93%s \xC2\xB7 ", from, to);
    report_xml_put_text(out, row->name);
    fprintf(out, " \xC2\xB7 %s: ", state_word[st]);
    report_xml_put_text(out, label);
    fputs("</title></rect>\n", out);
}

/*
 * One node's states, from its REPORT_STATE marks (the same state twice in a
 * row is one stretch, titled by its first label); a lane without any shows
 * "down" from each crash to the next restart.
 */
static void tl_states(const struct timeline *tl, size_t lane)
{
    const struct report_run *r = tl->r;
    const struct tl_row *row = &tl->row[tl->lane_row[lane]];
    bool any = false;
    for (size_t i = 0; i < r->event_count && !any; i++) {
        any = r->events[i].mark == REPORT_STATE && strcmp(r->events[i].lane, r->lanes[lane]) == 0;
    }
    const struct report_event *open = NULL;
    enum report_node_state open_state = REPORT_STATE_UP;
    for (size_t i = 0; i < r->event_count; i++) {
        const struct report_event *e = &r->events[i];
        if (strcmp(e->lane, r->lanes[lane]) != 0) {
            continue;
        }
        enum report_node_state st;
        if (any && e->mark == REPORT_STATE) {
            st = e->state;
        } else if (!any && (e->mark == REPORT_CRASH || e->mark == REPORT_RESTART)) {
            st = e->mark == REPORT_CRASH ? REPORT_STATE_DOWN : REPORT_STATE_UP;
        } else {
            continue;
        }
        if (open != NULL && st == open_state) {
            continue;
        }
        if (open != NULL && (any || open_state == REPORT_STATE_DOWN)) {
            tl_strip(tl, row, open->at_us, e->at_us, open_state, open->label);
        }
        open = e;
        open_state = st;
    }
    if (open != NULL && (any || open_state == REPORT_STATE_DOWN)) {
        tl_strip(tl, row, open->at_us, tl->end_us, open_state, open->label);
    }
}

static void tl_fault(struct timeline *tl, const struct report_fault *f)
{
    FILE *out = tl->out;
    size_t r = tl_row(tl, f->lane);
    struct tl_row *row = &tl->row[r];
    int64_t x1 = tl_x(tl, f->armed_at_us);
    int64_t x2 = tl_x(tl, f->healed_at_us >= 0 ? f->healed_at_us : tl->end_us);
    int64_t width = x2 - x1 < 20 ? 20 : x2 - x1; /* an instant fault stays visible */
    int64_t top = row->top + TL_BAND_TOP * 10;
    char armed[REPORT_FMT_MAX], healed[REPORT_FMT_MAX], fired[REPORT_FMT_MAX];
    report_format_duration(f->armed_at_us < 0 ? 0 : f->armed_at_us, armed);
    report_format_duration(f->healed_at_us < 0 ? 0 : f->healed_at_us, healed);
    report_format_count(f->fired, fired);
    fputs("<g class=\"fault\"><rect", out);
    tl_attr(out, "x", x1);
    tl_attr(out, "y", top);
    tl_attr(out, "width", width);
    fprintf(out, " height=\"%d\" rx=\"3\" fill=\"%s\" fill-opacity=\"0.22\" stroke=\"%s\"/>",
            row->node ? TL_BAND_HEIGHT : row->height - 2 * TL_BAND_TOP, COLOR_FAULT, COLOR_FAULT);
    fputs("<title>fault ", out);
    report_xml_put_text(out, f->name);
    fprintf(out, ": armed at %s, %s%s, fired %s times</title>", armed,
            f->healed_at_us >= 0 ? "healed at " : "never healed",
            f->healed_at_us >= 0 ? healed : "", fired);
    /*
     * Every band is labelled: inside it when it fits, else from its start on
     * (about 5.5 units per character at this size), on the first of two
     * lines that is free there; ending at the plot's edge when it would pass it.
     */
    int64_t text_w = (int64_t)strlen(f->name) * 55 + 40;
    int line = row->label_free[0] <= x1 ? 0 : row->label_free[1] <= x1 ? 1 : 0;
    int64_t x = x1 + 30;
    const char *anchor = "start";
    if (x + text_w > tl_x(tl, tl->end_us)) {
        x = tl_x(tl, tl->end_us) - 30;
        anchor = "end";
    }
    fputs("<text class=\"fault-label\"", out);
    tl_attr(out, "x", x);
    tl_attr(out, "y", row->top + (TL_BAND_TEXT + 9 * line) * 10);
    fprintf(out, " text-anchor=\"%s\" font-size=\"9\" fill=\"#9a4a00\">", anchor);
    report_xml_put_text(out, f->name);
    fputs("</text></g>\n", out);
    row->label_free[line] = x1 + text_w + 40;
}

/* Network partitions: a band across the node rows from the cut to the heal, labelled. */
static void tl_partitions(const struct timeline *tl)
{
    FILE *out = tl->out;
    const struct report_run *r = tl->r;
    int64_t top = tl->row[0].top, bottom = tl->plot_bottom;
    for (size_t i = 0; i < r->event_count; i++) {
        const struct report_event *e = &r->events[i];
        if (e->mark != REPORT_PARTITION || !is_net_partition(e)) {
            continue;
        }
        int64_t end = tl->end_us;
        for (size_t k = i + 1; k < r->event_count; k++) {
            if (r->events[k].mark == REPORT_HEAL && is_net_partition(&r->events[k])) {
                end = r->events[k].at_us;
                break;
            }
        }
        int64_t x1 = tl_x(tl, e->at_us), x2 = tl_x(tl, end);
        fputs("<g class=\"partition\"><rect", out);
        tl_attr(out, "x", x1);
        tl_attr(out, "y", top);
        tl_attr(out, "width", x2 - x1 < 10 ? 10 : x2 - x1);
        tl_attr(out, "height", bottom - top);
        fprintf(out, " fill=\"%s\" fill-opacity=\"0.10\"/>", COLOR_CUT);
        tl_title(out, e->at_us, "", "network partition", e->label);
        fputs("<text", out);
        tl_attr(out, "x", x1 + 20);
        fprintf(out, " y=\"%d\" font-size=\"10\" fill=\"%s\">", TL_AXIS_TOP + TL_NOTES_HEIGHT - 4,
                COLOR_CUT);
        report_xml_put_text(out, e->label);
        fputs("</text></g>\n", out);
    }
}

/* Checkpoints, partitions and their heals: a line across every row. */
static void tl_global(const struct timeline *tl, const struct report_event *e)
{
    FILE *out = tl->out;
    bool heal = e->mark == REPORT_HEAL, cut = e->mark == REPORT_PARTITION;
    int64_t x = tl_x(tl, e->at_us);
    fputs("<line", out);
    tl_attr(out, "x1", x);
    tl_attr(out, "y1", tl->row[0].top);
    tl_attr(out, "x2", x);
    tl_attr(out, "y2", tl->plot_bottom);
    fprintf(out, " stroke=\"%s\" stroke-width=\"%s\"%s>",
            heal  ? COLOR_OK
            : cut ? COLOR_CUT
                  : COLOR_CHECK,
            heal || cut ? "1.5" : "1", heal || cut ? " stroke-dasharray=\"4 3\"" : "");
    tl_title(out, e->at_us, e->lane, heal ? "heal" : cut ? "partition" : "checkpoint", e->label);
    fputs("</line>\n", out);
}

/* ---- marks on one row ------------------------------------------------------ */

static int64_t row_mid(const struct tl_row *row)
{
    return row->top + (row->node ? TL_NODE_MID : TL_CLIENT_MID) * 10;
}

/* A crash (a cross), a restart (a triangle), an offline or online local (a dashed bar). */
static void tl_point(const struct timeline *tl, const struct report_event *e)
{
    FILE *out = tl->out;
    const struct tl_row *row = &tl->row[tl_row(tl, e->lane)];
    int64_t x = tl_x(tl, e->at_us), mid = row_mid(row);
    const char *what;
    fputs("<path d=\"M", out);
    if (e->mark == REPORT_CRASH) {
        tl_put(out, x - 50);
        fputc(' ', out);
        tl_put(out, mid - 50);
        fprintf(out, "l10 10m0 -10l-10 10\" fill=\"none\" stroke=\"%s\" stroke-width=\"2.2\">",
                COLOR_CRASH);
        what = "crash";
    } else if (e->mark == REPORT_RESTART) {
        tl_put(out, x);
        fputc(' ', out);
        tl_put(out, mid - 60);
        fprintf(out, "l6 11h-12z\" fill=\"%s\" stroke=\"#ffffff\">", COLOR_OK);
        what = "restart";
    } else {
        tl_put(out, x);
        fputc(' ', out);
        tl_put(out, row->top + TL_BAND_TOP * 10);
        fprintf(out, "v%d\" stroke=\"%s\" stroke-width=\"2\" stroke-dasharray=\"3 2\">",
                TL_BAND_HEIGHT, e->mark == REPORT_HEAL ? COLOR_OK : COLOR_CUT);
        what = e->mark == REPORT_HEAL ? "heal" : "partition";
    }
    tl_title(out, e->at_us, e->lane, what, e->label);
    fputs("</path>\n", out);
}

static void tl_violation(const struct timeline *tl, const struct report_event *e)
{
    const struct tl_row *row = &tl->row[tl_row(tl, e->lane)];
    fputs("<circle class=\"violation\"", tl->out);
    tl_attr(tl->out, "cx", tl_x(tl, e->at_us));
    tl_attr(tl->out, "cy", row_mid(row));
    fprintf(tl->out, " r=\"5.5\" fill=\"%s\" stroke=\"#ffffff\" stroke-width=\"1.5\">", COLOR_FAIL);
    tl_title(tl->out, e->at_us, e->lane, "VIOLATION", e->label);
    fputs("</circle>\n", tl->out);
}

/* An operation's tick with its tooltip (failed, unknown, or any on a node row). */
static void tl_op_tick(const struct timeline *tl, const struct report_event *e, int64_t y1,
                       int64_t y2)
{
    enum tl_outcome o = outcome_of(e->mark);
    fputs("<line", tl->out);
    tl_attr(tl->out, "x1", tl_x(tl, e->at_us));
    tl_attr(tl->out, "y1", y1);
    tl_attr(tl->out, "x2", tl_x(tl, e->at_us));
    tl_attr(tl->out, "y2", y2);
    fprintf(tl->out, " stroke=\"%s\" stroke-width=\"1.5\">", outcome_color[o]);
    tl_title(tl->out, e->at_us, e->lane, outcome_word[o], e->label);
    fputs("</line>\n", tl->out);
}

/*
 * Tick mode: ok and rejected operations share a path per outcome (no tooltip:
 * they are many and say little), failed and unknown ones are lines with one.
 */
static void tl_ticks(const struct timeline *tl)
{
    FILE *out = tl->out;
    const struct report_run *r = tl->r;
    for (enum tl_outcome o = TL_OK; o <= TL_REJECTED; o++) {
        bool any = false;
        for (size_t i = 0; i < r->event_count; i++) {
            const struct report_event *e = &r->events[i];
            if (!is_op(e->mark) || outcome_of(e->mark) != o) {
                continue;
            }
            if (!any) {
                fprintf(out, "<path class=\"ops-%s\" stroke=\"%s\" stroke-width=\"1\" d=\"",
                        o == TL_OK ? "ok" : "rejected", outcome_color[o]);
                any = true;
            }
            const struct tl_row *row = &tl->row[tl_row(tl, e->lane)];
            int shorter = o == TL_REJECTED ? 5 : 0; /* a refusal reads quieter than a failure */
            fputc('M', out);
            tl_put(out, tl_x(tl, e->at_us));
            fputc(' ', out);
            tl_put(out, row->top + (TL_TICK_TOP + shorter) * 10);
            fprintf(out, "v%d", TL_TICK_HEIGHT - shorter);
        }
        if (any) {
            fputs("\"/>\n", out);
        }
    }
    for (size_t i = 0; i < r->event_count; i++) {
        const struct report_event *e = &r->events[i];
        if (e->mark == REPORT_OP_FAIL || e->mark == REPORT_OP_UNKNOWN) {
            const struct tl_row *row = &tl->row[tl_row(tl, e->lane)];
            tl_op_tick(tl, e, row->top + (TL_TICK_TOP - 1) * 10,
                       row->top + (TL_TICK_TOP + TL_TICK_HEIGHT + 1) * 10);
        }
    }
}

/* ---- density mode ------------------------------------------------------------ */

struct tl_bucket {
    uint32_t n[TL_OUTCOMES];
};

static size_t tl_bucket_of(const struct timeline *tl, int64_t at_us)
{
    int64_t t = at_us < 0 ? 0 : at_us > tl->end_us ? tl->end_us : at_us;
    size_t b = (size_t)((double)t / (double)tl->end_us * TL_BUCKETS);
    return b >= TL_BUCKETS ? TL_BUCKETS - 1 : b;
}

static void tl_bar(const struct timeline *tl, const struct tl_row *row, size_t b,
                   const struct tl_bucket *k, uint32_t max)
{
    FILE *out = tl->out;
    int64_t from = tl->end_us * (int64_t)b / TL_BUCKETS;
    int64_t to = tl->end_us * (int64_t)(b + 1) / TL_BUCKETS;
    int64_t x = tl_x(tl, from), w = tl_x(tl, to) - x;
    int64_t y = row->top + TL_BAR_BOTTOM * 10;
    uint32_t total = 0;
    for (int o = 0; o < TL_OUTCOMES; o++) {
        total += k->n[o];
    }
    fputs("<g>", out);
    for (int o = 0; o < TL_OUTCOMES; o++) {
        if (k->n[o] == 0) {
            continue;
        }
        int64_t h = (int64_t)((double)k->n[o] / max * TL_BAR_HEIGHT * 10 + 0.5);
        int64_t least = o == TL_FAIL || o == TL_UNKNOWN ? 15 : 3;
        h = h < least ? least : h;
        y -= h;
        fputs("<rect", out);
        tl_attr(out, "x", x);
        tl_attr(out, "y", y);
        tl_attr(out, "width", w > 2 ? w - 2 : w);
        tl_attr(out, "height", h);
        fprintf(out, " fill=\"%s\"/>", outcome_color[o]);
    }
    char at[REPORT_FMT_MAX], until[REPORT_FMT_MAX];
    report_format_duration(from, at);
    report_format_duration(to, until);
    fprintf(out, "<title>%s\xE2\x80\x93%s \xC2\xB7 ", at, until);
    report_xml_put_text(out, row->name);
    fprintf(out,
            " \xC2\xB7 %" PRIu32 " operations: %" PRIu32 " ok, %" PRIu32 " rejected, %" PRIu32
            " failed, %" PRIu32 " unknown</title></g>\n",
            total, k->n[TL_OK], k->n[TL_REJECTED], k->n[TL_FAIL], k->n[TL_UNKNOWN]);
}

/* Operations per bucket, stacked by outcome, per row; a failed or unknown one is never hidden. */
static int tl_density(struct timeline *tl)
{
    const struct report_run *r = tl->r;
    struct tl_bucket *b = calloc(tl->rows * TL_BUCKETS, sizeof(*b));
    if (b == NULL) {
        return -ENOMEM;
    }
    uint32_t max = 1;
    for (size_t i = 0; i < r->event_count; i++) {
        const struct report_event *e = &r->events[i];
        if (!is_op(e->mark)) {
            continue;
        }
        size_t row = tl_row(tl, e->lane);
        struct tl_bucket *k = &b[row * TL_BUCKETS + tl_bucket_of(tl, e->at_us)];
        k->n[outcome_of(e->mark)]++;
        uint32_t total = k->n[0] + k->n[1] + k->n[2] + k->n[3];
        max = total > max ? total : max;
    }
    for (size_t row = 0; row < tl->rows; row++) {
        for (size_t k = 0; k < TL_BUCKETS; k++) {
            const struct tl_bucket *x = &b[row * TL_BUCKETS + k];
            if (x->n[0] + x->n[1] + x->n[2] + x->n[3] > 0) {
                tl_bar(tl, &tl->row[row], k, x, max);
            }
        }
    }
    free(b);
    /* each failed or unknown operation keeps a tick of its own above the bars */
    struct sampler s = {.total = tl->bad_ops, .budget = REPORT_TIMELINE_OPS_MAX};
    for (size_t i = 0; i < r->event_count; i++) {
        const struct report_event *e = &r->events[i];
        if ((e->mark != REPORT_OP_FAIL && e->mark != REPORT_OP_UNKNOWN) || !sampler_take(&s)) {
            continue;
        }
        const struct tl_row *row = &tl->row[tl_row(tl, e->lane)];
        tl_op_tick(tl, e, row->top + TL_BAD_TOP * 10, row->top + (TL_BAD_TOP + TL_BAD_HEIGHT) * 10);
    }
    tl->bad_drawn = s.taken;
    return 0;
}

/* ---- stories --------------------------------------------------------------------- */

/* How many expectations have a story: with more than one, a step is "A3", "B1"... */
static size_t tl_storied(const struct report_run *r)
{
    size_t n = 0;
    for (size_t e = 0; e < r->expectation_count; e++) {
        n += r->expectations[e].story_count > 0;
    }
    return n;
}

static void tl_story_mark(struct timeline *tl, const struct report_expectation *x, size_t e,
                          size_t k, const char *name)
{
    FILE *out = tl->out;
    const struct report_story_step *step = &x->story[k];
    size_t lane = tl_find_lane(tl->r, step->lane);
    struct tl_row *row = lane == SIZE_MAX ? NULL : &tl->row[tl->lane_row[lane]];
    int64_t *free_x = row != NULL ? &row->story_free : &tl->notes_free;
    int64_t x0 = tl_x(tl, step->at_us);
    int64_t cx = x0 < *free_x ? *free_x : x0; /* side by side, never on each other */
    int64_t cy = row != NULL ? row->top + 75 : (TL_AXIS_TOP + 8) * 10; /* above the labels */
    int64_t radius = strlen(name) > 1 ? 75 : 60;
    *free_x = cx + 2 * radius + 20;
    fprintf(out, "<g class=\"story-mark\" id=\"story-%zu-%zu\">", e + 1, k + 1);
    if (cx != x0) {
        fputs("<line", out);
        tl_attr(out, "x1", x0);
        tl_attr(out, "y1", cy);
        tl_attr(out, "x2", cx);
        tl_attr(out, "y2", cy);
        fputs(" stroke=\"#24292f\" stroke-width=\"0.6\"/>", out);
    }
    fputs("<circle", out);
    tl_attr(out, "cx", cx);
    tl_attr(out, "cy", cy);
    tl_attr(out, "r", radius);
    fputs(" fill=\"#ffffff\" stroke=\"#24292f\"/><text", out);
    tl_attr(out, "x", cx);
    tl_attr(out, "y", cy + 28);
    fprintf(out, " text-anchor=\"middle\" font-size=\"%s\" font-weight=\"700\">%s</text>",
            strlen(name) > 2 ? "6" : "7.5", name);
    char what[96];
    snprintf(what, sizeof what, "%s, step %s", x->invariant, name);
    tl_title(out, step->at_us, step->lane, what, step->text);
    fputs("</g>\n", out);
}

/* Numbered circles for each violation's story, id "story-E-K" (1-based): the page links here. */
static void tl_stories(struct timeline *tl)
{
    const struct report_run *r = tl->r;
    bool lettered = tl_storied(r) > 1;
    size_t letter = 0;
    for (size_t e = 0; e < r->expectation_count; e++) {
        const struct report_expectation *x = &r->expectations[e];
        for (size_t k = 0; k < x->story_count; k++) {
            char name[16];
            report_story_step_name(lettered ? letter : SIZE_MAX, k, name);
            tl_story_mark(tl, x, e, k, name);
        }
        letter += x->story_count > 0;
    }
}

/* ---- the whole ----------------------------------------------------------------- */

static void tl_note(const struct timeline *tl)
{
    char ops[REPORT_FMT_MAX], bucket[REPORT_FMT_MAX], drawn[REPORT_FMT_MAX], bad[REPORT_FMT_MAX];
    report_format_count(tl->ops, ops);
    report_format_duration(tl->end_us / TL_BUCKETS, bucket);
    report_format_count(tl->bad_drawn, drawn);
    report_format_count(tl->bad_ops, bad);
    fprintf(tl->out,
            "<text class=\"note\" x=\"%d\" y=\"%" PRId64 "\" font-size=\"11\">"
            "%s operations drawn as their density per %s (bar height: operations in that "
            "time); every failed or unknown one also has a tick above its row",
            TL_LABEL_WIDTH, tl_height(tl, true) - 5, ops, bucket);
    if (tl->bad_drawn < tl->bad_ops) {
        fprintf(tl->out, " (showing %s of %s, sampled evenly)", drawn, bad);
    }
    fputs(".</text>\n", tl->out);
}

static int tl_draw(struct timeline *tl)
{
    const struct report_run *r = tl->r;
    FILE *out = tl->out;
    fprintf(out,
            "<svg class=\"timeline\" viewBox=\"0 0 %d %" PRId64 "\" width=\"100%%\" role=\"img\" "
            "font-family=\"system-ui, sans-serif\">\n<title>Timeline of ",
            TL_WIDTH, tl_height(tl, tl->density));
    report_xml_put_text(out, r->drill_name);
    fputs("</title>\n", out);
    tl_rows(tl);
    tl_axis(tl);
    tl_partitions(tl);
    for (size_t lane = 0; lane < r->lane_count; lane++) {
        if (tl->row[tl->lane_row[lane]].node) {
            tl_states(tl, lane);
        }
    }
    for (size_t i = 0; i < r->fault_count; i++) {
        if (r->faults[i].armed_at_us >= 0) { /* a statement never armed has no band */
            tl_fault(tl, &r->faults[i]);
        }
    }
    for (size_t i = 0; i < r->event_count; i++) {
        if (is_global(&r->events[i])) {
            tl_global(tl, &r->events[i]);
        }
    }
    int rc = 0;
    if (tl->density) {
        rc = tl_density(tl);
    } else {
        tl_ticks(tl);
    }
    for (size_t i = 0; i < r->event_count; i++) {
        const struct report_event *e = &r->events[i];
        bool point = e->mark == REPORT_CRASH || e->mark == REPORT_RESTART ||
                     ((e->mark == REPORT_PARTITION || e->mark == REPORT_HEAL) && !is_global(e));
        if (point) {
            tl_point(tl, e);
        }
    }
    for (size_t i = 0; i < r->event_count; i++) {
        if (r->events[i].mark == REPORT_VIOLATION) {
            tl_violation(tl, &r->events[i]);
        }
    }
    tl_stories(tl);
    if (tl->density) {
        tl_note(tl);
    }
    fputs("</svg>\n", out);
    return rc;
}

int report_write_timeline(const struct report_run *r, FILE *out)
{
    assert(report_run_is_valid(r));
    assert(out != NULL);
    struct timeline tl;
    int rc = tl_init(&tl, r, out);
    if (rc == 0) {
        rc = tl_draw(&tl);
    }
    free(tl.row);
    free(tl.lane_row);
    int status = report_stream_status(out);
    return rc != 0 ? rc : status;
}
