/*
 * text.c — the small text pieces every writer of libreports shares: durations
 * and counts formatted for people, XML/HTML escaping, UTF-8 cleaning for
 * JSON, the stream check that ends a writer, and the well-formedness check of
 * a struct report_run that the writers assert.
 *
 * Integer arithmetic only, never the locale: a report must read the same on
 * every machine. Depends on libc only.
 */
#include "reports/reports.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define US_PER_MS 1000
#define US_PER_S  1000000

/* U+FFFD REPLACEMENT CHARACTER, in UTF-8. */
static const char utf8_replacement[] = "\xEF\xBF\xBD";

static bool is_terminated(const char *s, size_t size)
{
    return memchr(s, '\0', size) != NULL;
}

bool report_run_is_valid(const struct report_run *r)
{
    if (r == NULL || !is_terminated(r->drill_name, sizeof r->drill_name) ||
        !is_terminated(r->drill_file, sizeof r->drill_file) ||
        !is_terminated(r->title, sizeof r->title) || !is_terminated(r->about, sizeof r->about) ||
        !is_terminated(r->trace_sha256, sizeof r->trace_sha256) ||
        !is_terminated(r->replay, sizeof r->replay)) {
        return false;
    }
    if ((r->expectation_count > 0 && r->expectations == NULL) ||
        (r->fault_count > 0 && r->faults == NULL) || (r->op_count > 0 && r->ops == NULL) ||
        (r->lane_count > 0 && r->lanes == NULL) || (r->event_count > 0 && r->events == NULL) ||
        (r->trace_len > 0 && r->trace == NULL && r->trace_file == NULL) || r->simulated_us < 0) {
        return false;
    }
    for (size_t i = 0; i < r->expectation_count; i++) {
        const struct report_expectation *e = &r->expectations[i];
        if (!is_terminated(e->invariant, sizeof e->invariant) ||
            !is_terminated(e->explanation, sizeof e->explanation) ||
            !is_terminated(e->witness_noun, sizeof e->witness_noun) ||
            (e->unexercised && e->observed_violated) ||
            !is_terminated(e->paragraph, sizeof e->paragraph) || e->story_count > REPORT_STORY_MAX) {
            return false;
        }
        for (size_t k = 0; k < e->story_count; k++) {
            if (!is_terminated(e->story[k].lane, sizeof e->story[k].lane) ||
                !is_terminated(e->story[k].text, sizeof e->story[k].text)) {
                return false;
            }
        }
    }
    for (size_t i = 0; i < r->fault_count; i++) {
        const struct report_fault *f = &r->faults[i];
        if (!is_terminated(f->name, sizeof f->name) || !is_terminated(f->lane, sizeof f->lane)) {
            return false;
        }
    }
    for (size_t i = 0; i < r->op_count; i++) {
        if (!is_terminated(r->ops[i].kind, sizeof r->ops[i].kind)) {
            return false;
        }
    }
    if (r->reason_count > REPORT_REASONS_MAX) {
        return false;
    }
    for (size_t i = 0; i < r->reason_count; i++) {
        const struct report_reason *x = &r->reasons[i];
        if (!is_terminated(x->outcome, sizeof x->outcome) ||
            !is_terminated(x->kind, sizeof x->kind) || !is_terminated(x->reason, sizeof x->reason)) {
            return false;
        }
    }
    for (size_t i = 0; i < r->lane_count; i++) {
        if (!is_terminated(r->lanes[i], sizeof r->lanes[i])) {
            return false;
        }
    }
    for (size_t i = 0; i < r->event_count; i++) {
        const struct report_event *e = &r->events[i];
        if (e->lane == NULL || e->label == NULL || strlen(e->lane) >= REPORT_LANE_MAX ||
            strlen(e->label) >= REPORT_LABEL_MAX ||
            (i > 0 && e->at_us < r->events[i - 1].at_us) ||
            (e->mark == REPORT_STATE && (unsigned)e->state >= REPORT_STATE_COUNT)) {
            return false;
        }
    }
    return true;
}

/* "<whole><unit>" or "<whole>.<fraction><unit>" with the fraction's trailing zeros dropped. */
static void format_fixed(int64_t value, int64_t scale, int digits, const char *unit,
                         char out[REPORT_FMT_MAX])
{
    int64_t whole = value / scale;
    int64_t fraction = value % scale;
    if (fraction == 0) {
        snprintf(out, REPORT_FMT_MAX, "%" PRId64 "%s", whole, unit);
        return;
    }
    while (fraction % 10 == 0) {
        fraction /= 10;
        digits--;
    }
    snprintf(out, REPORT_FMT_MAX, "%" PRId64 ".%0*" PRId64 "%s", whole, digits, fraction, unit);
}

void report_format_duration(int64_t us, char out[REPORT_FMT_MAX])
{
    assert(us >= 0);
    if (us == 0) {
        snprintf(out, REPORT_FMT_MAX, "0s");
    } else if (us >= US_PER_S) {
        format_fixed(us, US_PER_S, 6, "s", out);
    } else if (us >= US_PER_MS) {
        format_fixed(us, US_PER_MS, 3, "ms", out);
    } else {
        snprintf(out, REPORT_FMT_MAX, "%" PRId64 "us", us);
    }
}

const char *report_observed(const struct report_expectation *e)
{
    return e->observed_violated ? "violated" : e->unexercised ? "unexercised" : "held";
}

void report_format_count(uint64_t n, char out[REPORT_FMT_MAX])
{
    char digits[24];
    int len = snprintf(digits, sizeof digits, "%" PRIu64, n);
    assert(len > 0 && (size_t)len < sizeof digits);
    size_t o = 0;
    for (int i = 0; i < len; i++) {
        if (i > 0 && (len - i) % 3 == 0) {
            out[o++] = ',';
        }
        out[o++] = digits[i];
    }
    assert(o < REPORT_FMT_MAX);
    out[o] = '\0';
}

/*
 * Length of the valid UTF-8 sequence at p (1 to 4), or 0 when p does not
 * start one: a stray continuation byte, an overlong form, a surrogate, a code
 * point above U+10FFFF, or a sequence cut short (a NUL is not a continuation
 * byte, so this never reads past the end of the string).
 */
static size_t utf8_sequence_len(const unsigned char *p, uint32_t *code_point)
{
    static const uint32_t min_for_len[] = {0, 0, 0x80, 0x800, 0x10000};
    size_t len;
    uint32_t cp;
    if (p[0] < 0x80) {
        *code_point = p[0];
        return 1;
    } else if ((p[0] & 0xE0) == 0xC0) {
        len = 2;
        cp = p[0] & 0x1Fu;
    } else if ((p[0] & 0xF0) == 0xE0) {
        len = 3;
        cp = p[0] & 0x0Fu;
    } else if ((p[0] & 0xF8) == 0xF0) {
        len = 4;
        cp = p[0] & 0x07u;
    } else {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (p[i] & 0x3Fu);
    }
    if (cp < min_for_len[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        return 0;
    }
    *code_point = cp;
    return len;
}

char *report_utf8_clean(const char *s)
{
    size_t len = strlen(s);
    char *clean = malloc(len * (sizeof utf8_replacement - 1) + 1);
    if (clean == NULL) {
        return NULL;
    }
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p != '\0') {
        uint32_t cp;
        size_t n = utf8_sequence_len(p, &cp);
        if (n == 0) {
            memcpy(clean + o, utf8_replacement, sizeof utf8_replacement - 1);
            o += sizeof utf8_replacement - 1;
            p++;
        } else {
            memcpy(clean + o, p, n);
            o += n;
            p += n;
        }
    }
    clean[o] = '\0';
    return clean;
}

/* XML 1.0 allows tab, LF, CR and everything from U+0020 except U+FFFE and U+FFFF. */
static bool is_xml_char(uint32_t cp)
{
    return cp == '\t' || cp == '\n' || cp == '\r' || (cp >= 0x20 && cp != 0xFFFE && cp != 0xFFFF);
}

/* What stands for cp in XML, or NULL when cp stands for itself. */
static const char *xml_entity(uint32_t cp, bool attribute)
{
    switch (cp) {
    case '&':
        return "&amp;";
    case '<':
        return "&lt;";
    case '>':
        return "&gt;";
    case '"':
        return "&quot;";
    case '\'':
        return "&#39;";
    /* An attribute value would turn raw tabs and line breaks into spaces. */
    case '\t':
        return attribute ? "&#9;" : NULL;
    case '\n':
        return attribute ? "&#10;" : NULL;
    case '\r':
        return attribute ? "&#13;" : NULL;
    default:
        return NULL;
    }
}

static void xml_put(FILE *out, const char *s, bool attribute)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p != '\0') {
        uint32_t cp;
        size_t n = utf8_sequence_len(p, &cp);
        if (n == 0 || !is_xml_char(cp)) {
            fputs(utf8_replacement, out);
            p += n == 0 ? 1 : n;
            continue;
        }
        const char *entity = xml_entity(cp, attribute);
        if (entity != NULL) {
            fputs(entity, out);
        } else {
            fwrite(p, 1, n, out);
        }
        p += n;
    }
}

void report_xml_put_text(FILE *out, const char *s)
{
    xml_put(out, s, false);
}

void report_xml_put_attr(FILE *out, const char *s)
{
    xml_put(out, s, true);
}

int report_stream_status(FILE *out)
{
    errno = 0;
    if (fflush(out) != 0 || ferror(out)) {
        return errno != 0 ? -errno : -EIO;
    }
    return 0;
}

void report_format_op(const struct report_op_count *c, struct report_op_text *out)
{
    report_format_count(c->ok, out->ok);
    report_format_count(c->fail, out->fail);
    report_format_count(c->unknown, out->unknown);
    report_format_count(c->rejected, out->rejected);
}

void report_story_step_name(size_t story, size_t k, char out[16])
{
    if (story == SIZE_MAX) {
        snprintf(out, 16, "%zu", k + 1);
    } else {
        snprintf(out, 16, "%c%zu", (char)('A' + (int)(story % 26)), k + 1);
    }
}

void report_format_story_time(int64_t us, char out[REPORT_FMT_MAX])
{
    report_format_duration(us < 0 ? 0 : us / 1000 * 1000, out);
}
