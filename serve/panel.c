/*
 * panel.c — faults at run time. libfiu's remote control on the fifo
 * fiu-ctrl looks for by default (${TMPDIR:-/tmp}/fiu-ctrl-PID), so
 * `fiu-ctrl -c "enable name=disk/mirror/write,failinfo=5" PID` breaks the
 * mirror's disk live; and, only with --allow-faults, GET/POST /faults for
 * the front end's panel, which lists what either of them switched. The
 * panel enables a point unconditionally with an explicit errno as failinfo
 * (fiu_enable): never random, never an errno libfiu picks (DESIGN.md §3).
 */
#include <assert.h>
#include <errno.h>
#include <fiu-control.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "serve/internal.h"

static const char *const panel_kinds[] = {"read", "write", "fsync", "full", "slow"};

int panel_add(struct fault_panel *p, const char *name)
{
    if (p->count == SERVE_FAULTS_MAX)
        return -E2BIG;
    snprintf(p->points[p->count].name, FAULTS_NAME_MAX, "%s", name);
    p->count++;
    return 0;
}

void panel_init(struct fault_panel *p, const char *const *nodes, size_t count)
{
    memset(p, 0, sizeof(*p));
    pthread_mutex_init(&p->lock, NULL);
    for (size_t n = 0; n < count; n++) {
        for (size_t k = 0; k < sizeof(panel_kinds) / sizeof(panel_kinds[0]); k++) {
            char name[FAULTS_NAME_MAX];
            snprintf(name, sizeof(name), "disk/%s/%s", nodes[n], panel_kinds[k]);
            int rc = panel_add(p, name);
            assert(rc == 0);
            (void)rc;
        }
    }
}

void panel_release(struct fault_panel *p)
{
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < p->count; i++) {
        if (p->points[i].enabled)
            fiu_disable(p->points[i].name);
        p->points[i].enabled = false;
    }
    pthread_mutex_unlock(&p->lock);
}

/* ---- fiu-ctrl's fifo ----------------------------------------------------- */

/*
 * Our own end of fiu-ctrl's protocol (libfiu's fiu_rc_fifo does the same but
 * cannot tell us what it did): fiu-ctrl writes one command per line into
 * PREFIX-PID.in and reads the reply, an integer, from PREFIX-PID.out. Each
 * command runs through libfiu's own fiu_rc_string; an enable or disable of a
 * point also updates the panel's list, so /faults shows what fiu-ctrl did.
 */

/* The value of key=... in a fiu-ctrl command ("name=a/b,failinfo=5"). */
static bool command_param(const char *params, const char *key, char *out, size_t cap)
{
    size_t klen = strlen(key);
    for (const char *at = params; at != NULL && *at != '\0';) {
        const char *end = strchr(at, ',');
        size_t len = end != NULL ? (size_t)(end - at) : strlen(at);
        if (len > klen && strncmp(at, key, klen) == 0 && at[klen] == '=') {
            size_t n = len - klen - 1 < cap - 1 ? len - klen - 1 : cap - 1;
            memcpy(out, at + klen + 1, n);
            out[n] = '\0';
            return true;
        }
        at = end != NULL ? end + 1 : NULL;
    }
    return false;
}

static int find_point(struct fault_panel *p, const char *name)
{
    for (size_t i = 0; i < p->count; i++)
        if (strcmp(p->points[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* What a successful fiu-ctrl command changed, in the panel's list. */
static void panel_note(struct fault_panel *p, const char *cmd)
{
    char verb[32] = "", name[FAULTS_NAME_MAX] = "", info[32] = "";
    const char *space = strchr(cmd, ' ');
    if (space == NULL || (size_t)(space - cmd) >= sizeof(verb))
        return;
    memcpy(verb, cmd, (size_t)(space - cmd));
    if (!command_param(space + 1, "name", name, sizeof(name)))
        return;
    bool enable = strncmp(verb, "enable", 6) == 0;
    if (!enable && strcmp(verb, "disable") != 0)
        return;
    const struct faults_point *fp = faults_lookup(name);
    int64_t value = fp != NULL && fp->delay_us_default > 0 ? fp->delay_us_default : EIO;
    if (command_param(space + 1, "failinfo", info, sizeof(info)))
        value = strtoll(info, NULL, 10);
    pthread_mutex_lock(&p->lock);
    int at = -1;
    for (size_t i = 0; i < p->count; i++)
        if (strcmp(p->points[i].name, name) == 0)
            at = (int)i;
    if (at < 0 && enable && panel_add(p, name) == 0)
        at = (int)p->count - 1;
    if (at >= 0) {
        p->points[at].enabled = enable;
        p->points[at].value = value;
    }
    pthread_mutex_unlock(&p->lock);
}

/*
 * faultdrill's own commands on the same fifo (what `faultdrill run --live`
 * sends; fiu-ctrl -c passes them too): a point armed as a drill arms it,
 * through faults_arm (fiu_enable_external deciding from a seeded stream per
 * point, an explicit errno), which plain `enable` cannot say:
 *   faultdrill-arm name=N,failinfo=ERRNO|DELAY_US,p=P,count=C,after=A
 *   faultdrill-disarm name=N
 *   faultdrill-reached name=N / faultdrill-fired name=N   (the reply: the count)
 * Each replies as fiu_rc_string does: 0, or -1 when refused.
 */
static int drill_command(struct fault_panel *p, const char *line)
{
    char name[FAULTS_NAME_MAX] = "", v[32];
    const char *space = strchr(line, ' ');
    if (space == NULL || !command_param(space + 1, "name", name, sizeof(name)))
        return -1;
    size_t verb = (size_t)(space - line);
    if (verb == 14 && strncmp(line, "faultdrill-arm", verb) == 0) {
        pthread_mutex_lock(&p->lock);
        int at = find_point(p, name); /* only this process's points, and crash points */
        pthread_mutex_unlock(&p->lock);
        const struct faults_point *fp = faults_lookup(name);
        if (at < 0 && (fp == NULL || strncmp(name, "crash/", 6) != 0))
            return -1;
        struct faults_arm_spec spec = {.p = 1};
        int64_t info = 0;
        if (command_param(space + 1, "failinfo", v, sizeof(v)))
            info = strtoll(v, NULL, 10);
        if (fp != NULL && fp->delay_us_default > 0)
            spec.delay_us = info;
        else
            spec.err = (int)info;
        if (command_param(space + 1, "p", v, sizeof(v)))
            spec.p = strtod(v, NULL);
        if (command_param(space + 1, "count", v, sizeof(v)))
            spec.count = strtoull(v, NULL, 10);
        if (command_param(space + 1, "after", v, sizeof(v)))
            spec.after = strtoull(v, NULL, 10);
        if (spec.p <= 0 || spec.p > 1 || spec.err < 0 || spec.delay_us < 0 ||
            faults_arm(name, &spec) != 0)
            return -1;
        char note[FAULTS_NAME_MAX + 48];
        snprintf(note, sizeof(note), "enable name=%s,failinfo=%lld", name, (long long)info);
        panel_note(p, note);
        return 0;
    }
    if (verb == 17 && strncmp(line, "faultdrill-disarm", verb) == 0) {
        int rc = faults_disarm(name);
        char note[FAULTS_NAME_MAX + 16];
        snprintf(note, sizeof(note), "disable name=%s", name);
        panel_note(p, note);
        return rc == 0 || rc == -ENOENT ? 0 : -1;
    }
    bool reached = verb == 18 && strncmp(line, "faultdrill-reached", verb) == 0;
    if (reached || (verb == 16 && strncmp(line, "faultdrill-fired", verb) == 0)) {
        uint64_t calls = 0, fired = 0;
        if (faults_stats(name, &calls, &fired) != 0)
            return -1;
        uint64_t n = reached ? calls : fired;
        return n > INT32_MAX ? INT32_MAX : (int)n;
    }
    return -1;
}

struct fifo_ctl {
    struct fault_panel *panel;
    char in[SERVE_PATH_MAX], out[SERVE_PATH_MAX];
};

static void fifo_reply(const char *path, int rc)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC); /* waits for fiu-ctrl to read */
    if (fd < 0)
        return;
    char text[16];
    int n = snprintf(text, sizeof(text), "%d\n", rc);
    ssize_t w = write(fd, text, (size_t)n);
    (void)w; /* fiu-ctrl gone: nothing to tell */
    close(fd);
}

static void *fifo_main(void *arg)
{
    struct fifo_ctl *c = arg;
    char line[512];
    for (;;) {
        FILE *in = fopen(c->in, "re"); /* waits for a writer */
        if (in == NULL)
            return NULL;
        while (fgets(line, sizeof(line), in) != NULL) {
            line[strcspn(line, "\r\n")] = '\0';
            if (line[0] == '\0')
                continue;
            char *error = NULL;
            int rc;
            if (strncmp(line, "faultdrill-", 11) == 0) {
                rc = drill_command(c->panel, line);
            } else {
                rc = fiu_rc_string(line, &error);
                if (rc == 0)
                    panel_note(c->panel, line);
            }
            fifo_reply(c->out, rc);
        }
        fclose(in);
    }
}

int panel_start_fifo(struct fault_panel *p, char *path, size_t cap)
{
    static struct fifo_ctl ctl; /* one per process, as fiu-ctrl's PID naming */
    const char *tmp = getenv("TMPDIR");
    const char *dir = tmp != NULL && tmp[0] ? tmp : "/tmp";
    ctl.panel = p;
    snprintf(ctl.in, sizeof(ctl.in), "%s/fiu-ctrl-%d.in", dir, (int)getpid());
    snprintf(ctl.out, sizeof(ctl.out), "%s/fiu-ctrl-%d.out", dir, (int)getpid());
    snprintf(path, cap, "%s", ctl.in);
    unlink(ctl.in);
    unlink(ctl.out);
    if (mkfifo(ctl.in, 0600) != 0 || mkfifo(ctl.out, 0600) != 0)
        return -errno;
    pthread_t t;
    int rc = pthread_create(&t, NULL, fifo_main, &ctl);
    if (rc != 0)
        return -rc;
    pthread_detach(t);
    return 0;
}

void panel_stop_fifo(void)
{
    char in[SERVE_PATH_MAX], out[SERVE_PATH_MAX];
    const char *tmp = getenv("TMPDIR");
    const char *dir = tmp != NULL && tmp[0] ? tmp : "/tmp";
    snprintf(in, sizeof(in), "%s/fiu-ctrl-%d.in", dir, (int)getpid());
    snprintf(out, sizeof(out), "%s/fiu-ctrl-%d.out", dir, (int)getpid());
    unlink(in);
    unlink(out);
}

static bool panel_off(struct request *rq)
{
    if (rq->srv->opt.allow_faults)
        return false;
    http_reply_error(rq, 404, "not found",
                     "fault control over HTTP is off: start serve with --allow-faults "
                     "(fiu-ctrl works regardless)");
    return true;
}

static void render(struct request *rq)
{
    struct fault_panel *p = &rq->srv->panel;
    struct buf *b = &rq->w->out;
    buf_reset(b);
    buf_puts(b, "{\"pid\":");
    buf_i64(b, (int64_t)getpid());
    buf_puts(b, ",\"points\":[");
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < p->count; i++) {
        const struct faults_point *fp = faults_lookup(p->points[i].name);
        bool slow = fp != NULL && fp->delay_us_default > 0;
        buf_puts(b, i ? ",{\"name\":" : "{\"name\":");
        json_str(b, p->points[i].name);
        buf_puts(b, p->points[i].enabled ? ",\"enabled\":true" : ",\"enabled\":false");
        if (slow) {
            buf_puts(b, ",\"delayMs\":");
            buf_i64(b, (p->points[i].enabled ? p->points[i].value : fp->delay_us_default) / 1000);
        } else {
            int e = p->points[i].enabled ? (int)p->points[i].value
                                         : (fp != NULL ? fp->errno_default : EIO);
            const char *en = faults_errno_name(e);
            buf_puts(b, ",\"errno\":");
            json_str(b, en != NULL ? en : "EIO");
        }
        buf_puts(b, "}");
    }
    pthread_mutex_unlock(&p->lock);
    buf_puts(b, "]}");
    http_reply(rq, 200);
}

void panel_list(struct request *rq)
{
    if (!panel_off(rq))
        render(rq);
}

/* The failinfo of an enable: an errno, or a delay in us for slow points. */
static int parse_value(struct request *rq, const struct faults_point *fp, int64_t *value)
{
    if (fp->delay_us_default > 0) {
        int64_t ms = fp->delay_us_default / 1000;
        int rc = json_get_int(rq->json, "delayMs", 1, 60000, false, &ms, rq->detail);
        *value = ms * 1000;
        return rc < 0 ? rc : 0;
    }
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(rq->json, "errno");
    char text[32];
    if (e == NULL || cJSON_IsNull(e)) {
        *value = fp->errno_default > 0 ? fp->errno_default : EIO;
        return 0;
    }
    if (cJSON_IsString(e) && e->valuestring != NULL)
        snprintf(text, sizeof(text), "%s", e->valuestring);
    else if (cJSON_IsNumber(e))
        snprintf(text, sizeof(text), "%.0f", e->valuedouble);
    else
        text[0] = '\0';
    int err = faults_errno_parse(text);
    if (err <= 0) {
        snprintf(rq->detail, sizeof(rq->detail),
                 "errno must be a name like \"EIO\" or \"ENOSPC\" (not EINTR or EAGAIN)");
        return -EINVAL;
    }
    *value = err;
    return 0;
}

void panel_set(struct request *rq)
{
    if (panel_off(rq) || http_read_json(rq) < 0)
        return;
    struct fault_panel *p = &rq->srv->panel;
    const char *name = NULL, *action = NULL;
    int64_t value = 0;
    int rc = json_get_str(rq->json, "name", FAULTS_NAME_MAX - 1, true, &name, rq->detail);
    if (rc == 0)
        rc = json_get_str(rq->json, "action", 16, true, &action, rq->detail);
    int at = rc == 0 ? find_point(p, name) : -1;
    if (rc == 0 && at < 0) {
        snprintf(rq->detail, sizeof(rq->detail),
                 "'%.100s' is not a point of this server: GET /faults lists them", name);
        rc = -EINVAL;
    }
    bool enable = rc == 0 && strcmp(action, "enable") == 0;
    if (rc == 0 && !enable && strcmp(action, "disable") != 0) {
        snprintf(rq->detail, sizeof(rq->detail), "action must be enable or disable");
        rc = -EINVAL;
    }
    if (rc == 0 && enable)
        rc = parse_value(rq, faults_lookup(name), &value);
    if (rc < 0) {
        http_reply_error(rq, 400, "invalid fault", rq->detail);
        return;
    }
    pthread_mutex_lock(&p->lock);
    if (enable)
        rc = fiu_enable(name, 1, (void *)(intptr_t)value, 0);
    else
        fiu_disable(name); /* not enabled is fine: the panel's goal holds */
    p->points[at].enabled = enable && rc == 0;
    p->points[at].value = value;
    pthread_mutex_unlock(&p->lock);
    if (rc != 0) {
        http_reply_error(rq, 500, "libfiu refused", name);
        return;
    }
    render(rq);
}
