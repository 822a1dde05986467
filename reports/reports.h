/*
 * reports.h — libreports: what a finished drill run looks like to people and
 * to CI, and the writers for it: report.json, report.md, report.html (one
 * self-contained file with an inline SVG timeline), trace.log, JUnit XML,
 * and the one-line stdout summary. DESIGN.md §6 is the contract for the file
 * names and JSON keys.
 *
 * It knows nothing of the simulator: the runner fills a struct report_run
 * and hands it over. Depends on cJSON only.
 */
#ifndef FAULTDRILL_REPORTS_H
#define FAULTDRILL_REPORTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define REPORT_NAME_MAX 128
#define REPORT_TEXT_MAX 2048   /* an explanation */
#define REPORT_ERR_MAX 512

/* One step of a violation's causal story: a plain sentence at a time, on a lane. */
#define REPORT_STORY_MAX 14
struct report_story_step {
    int64_t at_us;
    char lane[64];                 /* where the timeline shows it ("" for none) */
    char text[256];                /* "order 60 acknowledged to client2 (op #284)" */
};

struct report_expectation {
    char invariant[48];
    bool expect_violated;          /* the drill said `violated` */
    bool observed_violated;
    bool ok;                       /* expectation met */
    int64_t first_violation_us;    /* -1: never violated */
    uint64_t checks;               /* times it was evaluated (checkpoints, end) */
    uint64_t witnesses;            /* what it judged: acknowledged writes looked up, reads
                                      compared... (the most in one evaluation) */
    bool unexercised;              /* not violated, but it judged nothing: not met */
    char witness_noun[64];         /* what a witness is, plural: "acknowledged writes" */
    char explanation[REPORT_TEXT_MAX]; /* what broke (names ops, rows, nodes, times),
                                          or, when it held, the invariant's summary */
    char paragraph[REPORT_TEXT_MAX];   /* what the invariant means (`faultdrill invariants`),
                                          quoted under the verdict; "" if none */
    size_t story_count;                /* when violated: the chain of events that led to it, */
    struct report_story_step story[REPORT_STORY_MAX]; /* in time order, the violation last */
};

struct report_fault {
    char name[REPORT_NAME_MAX];    /* as armed, e.g. "disk/primary/write" */
    char lane[64];                 /* the node it strikes (timeline lane), "" if none */
    int line;                      /* the drill line of its fault statement, 0: unknown */
    int64_t armed_at_us;           /* -1: never armed (the run ended first, or arming failed) */
    int64_t healed_at_us;          /* -1: still armed at the end */
    uint64_t reached;              /* calls that consulted the point while it was armed */
    uint64_t fired;                /* of those, the ones it failed (0: flagged "never fired") */
};

/* A figure the run measured (replication lag, lost writes...): name, number, unit. */
#define REPORT_METRICS_MAX 16
struct report_metric {
    char name[64];                 /* "replication_lag_p50_us" */
    int64_t value;
    char unit[16];                 /* "us", "writes", "changes" */
};

/* Outcomes (DESIGN §6): ok; rejected: a business rule said no (empty cart, insufficient
 * stock, duplicate email), the system worked; fail: the system could not do it; unknown:
 * no reply, or the node died with it in flight (it may or may not have been applied). */
struct report_op_count {
    char kind[32];                 /* "checkout", ... */
    uint64_t ok, fail, unknown;
    uint64_t rejected;
};

/* Why operations did not succeed: one row per outcome, kind and reason. */
#define REPORT_REASONS_MAX 32
struct report_reason {
    char outcome[12];              /* "rejected", "fail", "unknown" */
    char kind[32];                 /* "checkout" */
    char reason[96];               /* "the cart is empty" */
    uint64_t count;
};

enum report_mark {
    REPORT_OP_OK,
    REPORT_OP_FAIL,
    REPORT_OP_UNKNOWN,
    REPORT_CRASH,
    REPORT_RESTART,
    REPORT_CHECKPOINT,
    REPORT_VIOLATION,
    REPORT_PARTITION,              /* a partition begins (label names the sides) */
    REPORT_HEAL,
    REPORT_OP_REJECTED,            /* a business rule said no */
    REPORT_STATE,                  /* a node's state changed: state says to what, label why */
};

/* A node's state on its lane, from a REPORT_STATE mark until the next one. */
enum report_node_state {
    REPORT_STATE_UP,               /* in sync, online, serving */
    REPORT_STATE_LEADING,          /* a mirror half that leads while its partner is behind */
    REPORT_STATE_BEHIND,           /* a copy that lacks changes (lag, a degraded mirror half) */
    REPORT_STATE_DEGRADED,         /* a copy that failed and is out of the mirror */
    REPORT_STATE_FAILED,           /* refuses writes (a strict mirror with a failing copy) */
    REPORT_STATE_OFFLINE,          /* cut off on purpose (offline topology) */
    REPORT_STATE_DOWN,             /* crashed, not restarted yet */
    REPORT_STATE_COUNT,
};

/* One mark on the timeline: an operation tick, a crash, a violation... */
struct report_event {
    int64_t at_us;
    const char *lane;              /* node or client name (at most REPORT_LANE_MAX - 1 bytes) */
    enum report_mark mark;
    const char *label;             /* at most REPORT_LABEL_MAX - 1 bytes */
    enum report_node_state state;  /* REPORT_STATE only */
};
#define REPORT_LANE_MAX  64
#define REPORT_LABEL_MAX 160

struct report_run {
    char drill_name[REPORT_NAME_MAX];  /* file name without .drill */
    char drill_file[4096];
    char title[512];
    char about[2048];                  /* the about lines, joined by newlines */
    uint64_t seed;
    bool pass;                         /* every expectation met */
    bool live;                         /* run --live: real processes in real time (simulated_us
                                        * is the run's wall time; the trace is not reproducible,
                                        * its hash is no promise) */
    size_t expectation_count;
    struct report_expectation *expectations;
    size_t fault_count;
    struct report_fault *faults;
    size_t op_count;
    struct report_op_count *ops;
    uint64_t total_ops;
    size_t lane_count;
    char (*lanes)[64];                 /* nodes first, then clients */
    size_t node_lane_count;            /* lanes[0..node_lane_count) are nodes; 0: not said
                                          (a lane named clientN is a client) */
    size_t event_count;
    struct report_event *events;       /* in time order */
    void *event_text;                  /* owns the events' lane and label text when the
                                          simulator made them (sim_result_release frees it) */
    int64_t simulated_us;
    int64_t wall_ms;
    const char *trace;                 /* trace.log content: one line per event; NULL when
                                          a long run's trace is in trace_file instead */
    FILE *trace_file;                  /* the trace (trace_len bytes from its start) when not
                                          in memory; whoever made the run closes it */
    size_t trace_len;
    char trace_sha256[65];
    char replay[1024];                 /* the command that replays this run */
    size_t metric_count;               /* figures of the run, in the order measured */
    struct report_metric metrics[REPORT_METRICS_MAX];
    size_t reason_count;               /* why operations were rejected, failed or unknown, */
    struct report_reason reasons[REPORT_REASONS_MAX]; /* most frequent first */
    char run_error[REPORT_ERR_MAX];    /* non-empty: the drill could not run (exit 3); only
                                          drill_name, drill_file, seed and replay are set, and
                                          JUnit shows it as an <error> */
};

/*
 * Writes report.json, report.md, report.html and trace.log into dir (which
 * must exist). Returns 0 or -errno with a message in err.
 */
int report_write_dir(const struct report_run *r, const char *dir, char err[REPORT_ERR_MAX]);

/* Individual writers (report_write_dir calls them); each returns 0 or -errno. */
int report_write_json(const struct report_run *r, FILE *out);
int report_write_markdown(const struct report_run *r, FILE *out);
int report_write_html(const struct report_run *r, FILE *out);

/*
 * JUnit XML of several runs: a <testsuites> root, one <testsuite> per drill,
 * one <testcase> per drill x seed x expectation (name "invariant (expected
 * hold|violated)", classname "faultdrill.<drill>.seed-<N>"), a <failure>
 * carrying the explanation and the replay command when not met.
 */
int report_write_junit(const struct report_run *const *runs, size_t count, const char *path,
                       char err[REPORT_ERR_MAX]);

/*
 * The one-line summary, e.g.
 * "PASS  mirror-primary-disk-fails  seed=42  14 checks  1,204 ops  30s simulated in 38ms";
 * a failure adds, on following lines, each unmet expectation's explanation
 * and the replay command. verbose adds the about text and the fault list.
 */
void report_print_summary(const struct report_run *r, FILE *out, bool verbose);

/* ---- Added by the reports writer: pieces the writers share (the CLI may use them) ---- */

#define REPORT_FMT_MAX            32   /* a formatted duration or count, with its NUL */
#define REPORT_TIMELINE_OPS_MAX   5000 /* failed/unknown op ticks drawn; more are sampled */
#define REPORT_TIMELINE_TICKS_MAX 2500 /* more operations than this: drawn as density */
#define REPORT_TIMELINE_MARKS_MAX 2000 /* other marks drawn (crashes, checkpoints...) */

/*
 * True when r is well formed: every fixed-size string NUL-terminated, every
 * array present when its count is not zero, trace present when trace_len is
 * not zero, events in time order. The writers assert it.
 */
bool report_run_is_valid(const struct report_run *r);

/*
 * The name of step k (0-based) of a story on the timeline and in the page:
 * "3", or "B3" when several expectations have stories (story is their 0-based
 * rank among those; SIZE_MAX: only one has a story).
 */
void report_story_step_name(size_t story, size_t k, char out[16]);
/* A time as a story tells it: "2s", "2.008s" (milliseconds, rounded down). */
void report_format_story_time(int64_t us, char out[REPORT_FMT_MAX]);

/* The inline <svg> timeline of report.html alone; 0 or -errno. */
int report_write_timeline(const struct report_run *r, FILE *out);

/* "30s", "1.5s", "250ms", "1.5ms", "800us" (us >= 0); no locale, no floats. */
void report_format_duration(int64_t us, char out[REPORT_FMT_MAX]);
/* An expectation's observed verdict as the reports spell it: "violated", "held" or
 * "unexercised" (DESIGN.md §4: it judged nothing). */
const char *report_observed(const struct report_expectation *e);
/* "1,204": thousands separated by commas whatever the locale. */
void report_format_count(uint64_t n, char out[REPORT_FMT_MAX]);
/* The three counts of one kind of operation, formatted as report_format_count does. */
struct report_op_text {
    char ok[REPORT_FMT_MAX], fail[REPORT_FMT_MAX], unknown[REPORT_FMT_MAX];
    char rejected[REPORT_FMT_MAX];
};
void report_format_op(const struct report_op_count *c, struct report_op_text *out);

/*
 * s escaped for XML and HTML: & < > " ' become entities; in an attribute,
 * tab and line breaks become character references. Invalid UTF-8 and control
 * characters that XML 1.0 forbids become U+FFFD, so the document stays valid.
 */
void report_xml_put_text(FILE *out, const char *s);
void report_xml_put_attr(FILE *out, const char *s);

/* A malloc'd copy of s with invalid UTF-8 replaced by U+FFFD; NULL if out of memory. */
char *report_utf8_clean(const char *s);

/* After a writer: flushes out; 0, or -errno of the failed write (-EIO if unknown). */
int report_stream_status(FILE *out);

#endif /* FAULTDRILL_REPORTS_H */
