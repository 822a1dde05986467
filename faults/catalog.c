/*
 * catalog.c — the fault-point catalog (DESIGN.md §3, a contract): every point
 * a drill, a test or fiu-ctrl may name, as data, with the matcher that says
 * which entry a concrete name belongs to, and the errno table drills use.
 *
 * Pure data and string matching: no libfiu, no SQLite, no global state that
 * changes. The platform's crash points are listed here because drills name
 * them; the platform itself never includes this file.
 */
#include "faults/faults.h"
#include "faults/internal.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Components of the longest pattern ("posix/io/sync/fdatasync"), with room. */
#define CATALOG_COMPONENTS_MAX 8
/* Largest errno number a drill may give; Linux's are all below 134. */
#define CATALOG_ERRNO_NUMBER_MAX 4095

#define DISK_WHERE "faults/vfs.c, the SQLite VFS of the node"
#define NET_WHERE  "the simulated network, per message on the directed link"

static const struct faults_point catalog[] = {
    /* disk: consulted by the node's VFS on every call of that kind */
    {.pattern = "disk/<node>/read",
     .family = FAULTS_FAMILY_DISK,
     .where = DISK_WHERE ", xRead",
     .errno_default = EIO,
     .description = "A read of the node's database, WAL or journal fails (SQLITE_IOERR_READ)."},
    {.pattern = "disk/<node>/write",
     .family = FAULTS_FAMILY_DISK,
     .where = DISK_WHERE ", xWrite",
     .errno_default = EIO,
     .description = "A write to the node's database, WAL or journal fails (SQLITE_IOERR_WRITE)."},
    {.pattern = "disk/<node>/fsync",
     .family = FAULTS_FAMILY_DISK,
     .where = DISK_WHERE ", xSync",
     .errno_default = EIO,
     .description = "An fsync of the node's files fails and syncs nothing (SQLITE_IOERR_FSYNC)."},
    {.pattern = "disk/<node>/full",
     .family = FAULTS_FAMILY_DISK,
     .where = DISK_WHERE ", xWrite",
     .errno_default = ENOSPC,
     .description = "The node's disk is full: a write fails with ENOSPC (SQLITE_FULL)."},
    {.pattern = "disk/<node>/slow",
     .family = FAULTS_FAMILY_DISK,
     .where = DISK_WHERE ", xRead/xWrite/xSync",
     .errno_default = 0,
     .description = "Each read, write or sync of the node takes `delay=` longer.",
     .delay_us_default = FAULTS_DELAY_US_DEFAULT},

    /* net: consulted per message by the host's transport */
    {.pattern = "net/<from>/<to>/drop",
     .family = FAULTS_FAMILY_NET,
     .where = NET_WHERE,
     .errno_default = 0,
     .description = "A message from <from> to <to> is lost."},
    {.pattern = "net/<from>/<to>/delay",
     .family = FAULTS_FAMILY_NET,
     .where = NET_WHERE,
     .errno_default = 0,
     .description = "A message from <from> to <to> arrives `delay=` later.",
     .delay_us_default = FAULTS_DELAY_US_DEFAULT},
    {.pattern = "net/<from>/<to>/duplicate",
     .family = FAULTS_FAMILY_NET,
     .where = NET_WHERE,
     .errno_default = 0,
     .description = "A message from <from> to <to> is delivered twice."},
    {.pattern = "net/<from>/<to>/reorder",
     .family = FAULTS_FAMILY_NET,
     .where = NET_WHERE,
     .errno_default = 0,
     .description = "A message from <from> to <to> is overtaken by the next one on the link."},

    /* crash: fiu_do_on points inside the platform; the node dies there */
    {.pattern = "crash/<node>/mirror-between-commits",
     .family = FAULTS_FAMILY_CRASH,
     .where = "platform/mirror.c, in the mirror's write path, after the primary committed "
              "and before the mirror commits (hosts that commit the copies one after the "
              "other: the simulator; serve overlaps them)",
     .errno_default = 0,
     .description = "The node dies with the write committed on the primary only."},
    {.pattern = "crash/<node>/mirror-before-commit",
     .family = FAULTS_FAMILY_CRASH,
     .where = "platform/mirror.c, after both copies wrote, before either committed",
     .errno_default = 0,
     .description = "The node dies with the write pending on both copies, committed on none."},
    {.pattern = "crash/<node>/mirror-during-resync",
     .family = FAULTS_FAMILY_CRASH,
     .where = "platform/mirror.c, between two resync batches applied to the behind copy",
     .errno_default = 0,
     .description = "The node dies halfway through bringing the behind copy up to date."},
    {.pattern = "crash/<node>/checkout-mid-transaction",
     .family = FAULTS_FAMILY_CRASH,
     .where = "platform/shop.c, inside the checkout transaction, after stock was "
              "decremented, before commit",
     .errno_default = 0,
     .description = "The node dies inside a checkout, with stock decremented but not committed."},
    {.pattern = "crash/<node>/sync-between-row-and-queue",
     .family = FAULTS_FAMILY_CRASH,
     .where = "platform/shop.c, queue=separate only: after the change committed, before its "
              "sync-queue rows are written in a second transaction",
     .errno_default = 0,
     .description = "The node dies with a committed row that has no sync-queue entry (the naive "
                    "mode's bug: nobody will ever sync it)."},
    {.pattern = "crash/<node>/sync-after-push",
     .family = FAULTS_FAMILY_CRASH,
     .where = "platform/sync.c, after central accepted a push, before the local marks the rows "
              "SYNCED",
     .errno_default = 0,
     .description = "The node dies between the push and its bookkeeping: the next push resends "
                    "and central must take it idempotently."},

    /* stake: consulted by the host's predictors, once per prediction (faults_check) */
    {.pattern = "stake/<node>/lie",
     .family = FAULTS_FAMILY_STAKE,
     .where = "the host's stake predictor <node>, each time it makes a prediction (sim/ledger.c)",
     .errno_default = 0,
     .description = "The predictor submits a prediction far from the truth (more than twice the "
                    "tolerance off), so the ledger should slash it."},

    /* libc: libfiu's POSIX preload names, `faultdrill serve` under fiu-run -x */
    {.pattern = "posix/io/rw/pwrite",
     .family = FAULTS_FAMILY_LIBC,
     .where = "libc pwrite(2), through fiu-run -x (serve only)",
     .errno_default = EIO,
     .description = "pwrite fails; SQLite writes its pages with pwrite."},
    {.pattern = "posix/io/rw/write",
     .family = FAULTS_FAMILY_LIBC,
     .where = "libc write(2), through fiu-run -x (serve only)",
     .errno_default = EIO,
     .description = "write fails (logs, HTTP replies; SQLite itself uses pwrite)."},
    {.pattern = "posix/io/sync/fdatasync",
     .family = FAULTS_FAMILY_LIBC,
     .where = "libc fdatasync(2), through fiu-run -x (serve only)",
     .errno_default = EIO,
     .description = "fdatasync fails; this is the call SQLite's commits make on Linux."},
    {.pattern = "posix/io/sync/fsync",
     .family = FAULTS_FAMILY_LIBC,
     .where = "libc fsync(2), through fiu-run -x (serve only)",
     .errno_default = EIO,
     .description = "fsync fails; SQLite uses it for directories, not for commits."},
    {.pattern = "posix/io/oc/open",
     .family = FAULTS_FAMILY_LIBC,
     .where = "libc open(2), through fiu-run -x (serve only)",
     .errno_default = EACCES,
     .description = "open fails, so a database, WAL or journal cannot be opened."},
};

#define CATALOG_COUNT (sizeof catalog / sizeof catalog[0])

struct errno_entry {
    const char *name;
    int value;
};

/* EINTR and EAGAIN are absent on purpose: SQLite retries them forever. */
static const struct errno_entry errno_table[] = {
    {"EIO", EIO},
    {"ENOSPC", ENOSPC},
    {"EDQUOT", EDQUOT},
    {"EROFS", EROFS},
    {"EACCES", EACCES},
    {"EPERM", EPERM},
    {"ENOMEM", ENOMEM},
    {"EBADF", EBADF},
    {"EFBIG", EFBIG},
    {"ENOENT", ENOENT},
    {"ETIMEDOUT", ETIMEDOUT},
    {"ECONNRESET", ECONNRESET},
    {"ECONNREFUSED", ECONNREFUSED},
    {"EHOSTUNREACH", EHOSTUNREACH},
};

#define ERRNO_TABLE_COUNT (sizeof errno_table / sizeof errno_table[0])

const struct faults_point *faults_catalog(size_t *count)
{
    assert(count != NULL);
    *count = CATALOG_COUNT;
    return catalog;
}

const char *faults_family_name(enum faults_family family)
{
    switch (family) {
    case FAULTS_FAMILY_DISK:
        return "disk";
    case FAULTS_FAMILY_NET:
        return "net";
    case FAULTS_FAMILY_CRASH:
        return "crash";
    case FAULTS_FAMILY_LIBC:
        return "libc";
    case FAULTS_FAMILY_STAKE:
        return "stake";
    }
    assert(!"faults_family_name: unknown family");
    return "?";
}

static bool catalog_is_node_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* Whether [text, text + len) is made of node characters and fits a node. */
static bool catalog_is_node_text(const char *text, size_t len)
{
    if (len >= FAULTS_NODE_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (!catalog_is_node_char(text[i])) {
            return false;
        }
    }
    return true;
}

bool faults_is_node_name(const char *node)
{
    if (node == NULL) {
        return false;
    }
    size_t len = strnlen(node, FAULTS_NODE_MAX);
    return len > 0 && catalog_is_node_text(node, len);
}

/*
 * Whether the name component `comp` can stand where the pattern component
 * `pat` is. A partial component is the cut end of a prefix: it only has to
 * be the start of something the pattern component could be.
 */
static bool catalog_component_matches(const char *pat, size_t pat_len, const char *comp,
                                      size_t comp_len, bool partial)
{
    bool is_placeholder = pat_len >= 2 && pat[0] == '<' && pat[pat_len - 1] == '>';
    if (is_placeholder) {
        return (partial || comp_len > 0) && catalog_is_node_text(comp, comp_len);
    }
    if (partial) {
        return comp_len <= pat_len && memcmp(pat, comp, comp_len) == 0;
    }
    return comp_len == pat_len && memcmp(pat, comp, comp_len) == 0;
}

/* Whether `pattern` produces name[0, len), or (prefix) a name starting so. */
static bool catalog_pattern_matches(const char *pattern, const char *name, size_t len, bool prefix)
{
    const char *pat = pattern;
    const char *comp = name;
    const char *name_end = name + len;
    for (int i = 0; i < CATALOG_COMPONENTS_MAX; i++) {
        const char *pat_slash = strchr(pat, '/');
        size_t pat_len = pat_slash != NULL ? (size_t)(pat_slash - pat) : strlen(pat);
        const char *comp_slash = memchr(comp, '/', (size_t)(name_end - comp));
        if (comp_slash == NULL) {
            /* The name's last component: a prefix may stop anywhere in the
             * pattern, a full name must use up the pattern too. */
            size_t comp_len = (size_t)(name_end - comp);
            if (prefix) {
                return catalog_component_matches(pat, pat_len, comp, comp_len, true);
            }
            return pat_slash == NULL &&
                   catalog_component_matches(pat, pat_len, comp, comp_len, false);
        }
        if (pat_slash == NULL ||
            !catalog_component_matches(pat, pat_len, comp, (size_t)(comp_slash - comp), false)) {
            return false;
        }
        pat = pat_slash + 1;
        comp = comp_slash + 1;
    }
    return false;
}

const struct faults_point *faults_lookup(const char *name)
{
    if (name == NULL) {
        return NULL;
    }
    size_t len = strnlen(name, FAULTS_NAME_MAX);
    if (len == 0 || len >= FAULTS_NAME_MAX) {
        return NULL;
    }
    /* libfiu supports '*' only as the last character. */
    const char *star = strchr(name, '*');
    bool prefix = star != NULL;
    if (prefix && star != name + len - 1) {
        return NULL;
    }
    size_t match_len = prefix ? len - 1 : len;
    for (size_t i = 0; i < CATALOG_COUNT; i++) {
        if (catalog_pattern_matches(catalog[i].pattern, name, match_len, prefix)) {
            return &catalog[i];
        }
    }
    return NULL;
}

/* A decimal errno number, or -EINVAL. */
static int catalog_errno_number(const char *text)
{
    char *end = NULL;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-' || text[0] == '+' ||
        value <= 0 || value > CATALOG_ERRNO_NUMBER_MAX) {
        faults_errmsg_set("errno %s: not a number in 1..%d", text, CATALOG_ERRNO_NUMBER_MAX);
        return -EINVAL;
    }
    return (int)value;
}

int faults_errno_parse(const char *text)
{
    if (text == NULL || text[0] == '\0') {
        faults_errmsg_set("errno: empty");
        return -EINVAL;
    }
    int value = -EINVAL;
    if (text[0] >= '0' && text[0] <= '9') {
        value = catalog_errno_number(text);
    } else if (strcmp(text, "EINTR") == 0 || strcmp(text, "EAGAIN") == 0 ||
               strcmp(text, "EWOULDBLOCK") == 0) {
        value = EINTR; /* refused below, with the reason */
    } else {
        for (size_t i = 0; i < ERRNO_TABLE_COUNT; i++) {
            if (strcmp(errno_table[i].name, text) == 0) {
                value = errno_table[i].value;
            }
        }
        if (value < 0) {
            faults_errmsg_set("errno %s: unknown name (EIO, ENOSPC, EDQUOT, EROFS, ...)", text);
        }
    }
    if (value == EINTR || value == EAGAIN || value == EWOULDBLOCK) {
        faults_errmsg_set("errno %s: refused, SQLite retries it forever", text);
        return -EINVAL;
    }
    return value;
}

const char *faults_errno_name(int err)
{
    for (size_t i = 0; i < ERRNO_TABLE_COUNT; i++) {
        if (errno_table[i].value == err) {
            return errno_table[i].name;
        }
    }
    return NULL;
}
