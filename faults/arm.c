/*
 * arm.c — the libfiu glue: arms fault points with fiu_enable_external and
 * decides, in libfiu's callback, from the run's own seeded streams whether a
 * call fails; consults points for code under test (faults_check).
 *
 * Depends on libfiu and on the catalog; knows nothing of SQLite or of the
 * platform. Determinism rules (DESIGN.md §3): never fiu_enable_random, never
 * let libfiu choose an errno.
 *
 * Locking: `control_lock` serialises arm/disarm/init and is held across calls
 * into libfiu's control API; `state_lock` guards the table and is the only
 * lock the callback takes. libfiu calls the callback under its own read lock,
 * and fiu_enable takes that lock for writing, so state_lock is never held
 * while calling into libfiu: control_lock -> fiu lock -> state_lock is the
 * only order.
 */
#include "faults/faults.h"
#include "faults/internal.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <fiu-control.h>
#include <fiu.h>

/* One armed point: its spec, its own random stream and its counters. */
struct armed_point {
    bool in_use;
    char name[FAULTS_NAME_MAX];
    struct faults_arm_spec spec;
    struct faults_rng rng;
    uint64_t calls;
    uint64_t fired;
};

/*
 * The closed-run shortcut (faults_set_closed): when every point is armed
 * through faults_arm, a point nobody armed cannot fire, and asking libfiu
 * (a hash lookup under its read lock, for every disk call) can be skipped.
 * `armed_count` and `generation` change under state_lock and are read
 * without it; `generation` moves on every arm and disarm.
 */
static atomic_bool closed_run;
static atomic_uint_fast64_t armed_count;
static atomic_uint_fast64_t generation = 1;

static pthread_mutex_t control_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t state_lock = PTHREAD_MUTEX_INITIALIZER;
static struct armed_point armed[FAULTS_ARMED_MAX]; /* under state_lock */
static uint64_t run_seed;                          /* under state_lock */
static bool run_started;                           /* under control_lock */

/*
 * What the callback decided for the fiu_fail() running on this thread: the
 * callback only sees the enabled name (maybe a wildcard), so faults_check,
 * which knows the concrete name, picks the errno or the delay from this.
 */
struct arm_decision {
    bool fired;
    int err;
    int64_t delay_us;
};

static _Thread_local struct arm_decision last_decision;
static _Thread_local char errmsg[FAULTS_ERRMSG_MAX];

void faults_errmsg_set(const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    vsnprintf(errmsg, sizeof errmsg, fmt, args);
    va_end(args);
}

const char *faults_errmsg(void)
{
    return errmsg;
}

/* The slot armed under exactly `name`, or NULL; state_lock held. */
static struct armed_point *arm_find(const char *name)
{
    for (size_t i = 0; i < FAULTS_ARMED_MAX; i++) {
        if (armed[i].in_use && strcmp(armed[i].name, name) == 0) {
            return &armed[i];
        }
    }
    return NULL;
}

static struct armed_point *arm_find_free(void)
{
    for (size_t i = 0; i < FAULTS_ARMED_MAX; i++) {
        if (!armed[i].in_use) {
            return &armed[i];
        }
    }
    return NULL;
}

/* The per-call rule of faults_arm_spec; state_lock held. */
static bool arm_should_fire(struct armed_point *point)
{
    point->calls++;
    if (point->calls <= point->spec.after) {
        return false;
    }
    if (point->spec.count > 0 && point->fired >= point->spec.count) {
        return false;
    }
    double p = point->spec.p;
    if (p > 0 && p < 1 && !(faults_rng_unit(&point->rng) < p)) {
        return false;
    }
    point->fired++;
    return true;
}

/*
 * libfiu's external callback. `name` is the name the point was enabled
 * under (possibly a wildcard) and there is no user pointer, hence the lookup.
 * Runs under libfiu's read lock: must not call back into fiu_enable/disable.
 */
static int arm_decide(const char *name, int *failnum, void **failinfo, unsigned int *flags)
{
    (void)failnum;
    (void)failinfo;
    (void)flags;
    pthread_mutex_lock(&state_lock);
    struct armed_point *point = arm_find(name);
    bool fire = point != NULL && arm_should_fire(point);
    if (fire) {
        last_decision = (struct arm_decision){
            .fired = true, .err = point->spec.err, .delay_us = point->spec.delay_us};
    }
    pthread_mutex_unlock(&state_lock);
    return fire ? 1 : 0;
}

static int arm_check_spec(const char *name, const struct faults_arm_spec *spec)
{
    if (!(spec->p >= 0 && spec->p <= 1)) { /* also refuses NaN */
        faults_errmsg_set("fault %s: p=%g is not a probability in [0, 1]", name, spec->p);
        return -EINVAL;
    }
    if (spec->err < 0 || spec->err == EINTR || spec->err == EAGAIN || spec->err == EWOULDBLOCK) {
        faults_errmsg_set("fault %s: errno %d refused (SQLite retries EINTR/EAGAIN forever)", name,
                          spec->err);
        return -EINVAL;
    }
    if (spec->delay_us < 0) {
        faults_errmsg_set("fault %s: negative delay", name);
        return -EINVAL;
    }
    return 0;
}

/*
 * What travels as libfiu's failinfo: the errno (or delay) itself, so that a
 * plain fiu_fail() caller sees what faults_check would. 0 for a wildcard
 * armed without an errno: the concrete name's default is chosen at check.
 */
static intptr_t arm_failinfo(const struct faults_point *point, const struct faults_arm_spec *spec)
{
    if (point->delay_us_default > 0) {
        return (intptr_t)(spec->delay_us > 0 ? spec->delay_us : point->delay_us_default);
    }
    return spec->err;
}

/* Puts (name, spec) in the table with fresh counters; control_lock held. */
static int arm_store(const char *name, const struct faults_arm_spec *spec)
{
    pthread_mutex_lock(&state_lock);
    struct armed_point *point = arm_find(name);
    if (point == NULL) {
        point = arm_find_free();
    }
    if (point == NULL) {
        pthread_mutex_unlock(&state_lock);
        faults_errmsg_set("fault %s: more than %d points armed", name, FAULTS_ARMED_MAX);
        return -E2BIG;
    }
    if (!point->in_use) {
        atomic_fetch_add(&armed_count, 1);
    }
    *point = (struct armed_point){.in_use = true, .spec = *spec};
    snprintf(point->name, sizeof point->name, "%s", name);
    atomic_fetch_add(&generation, 1);
    faults_rng_seed(&point->rng, run_seed, name);
    pthread_mutex_unlock(&state_lock);
    return 0;
}

static void arm_forget(const char *name)
{
    pthread_mutex_lock(&state_lock);
    struct armed_point *point = arm_find(name);
    if (point != NULL) {
        point->in_use = false;
        atomic_fetch_sub(&armed_count, 1);
        atomic_fetch_add(&generation, 1);
    }
    pthread_mutex_unlock(&state_lock);
}

static bool arm_is_armed(const char *name)
{
    pthread_mutex_lock(&state_lock);
    bool found = arm_find(name) != NULL;
    pthread_mutex_unlock(&state_lock);
    return found;
}

int faults_arm(const char *name, const struct faults_arm_spec *spec)
{
    assert(spec != NULL);
    const struct faults_point *point = faults_lookup(name);
    if (point == NULL) {
        faults_errmsg_set("fault %s: no such point (see `faultdrill faults`)",
                          name != NULL ? name : "(null)");
        return -EINVAL;
    }
    int rc = arm_check_spec(name, spec);
    if (rc < 0) {
        return rc;
    }
    pthread_mutex_lock(&control_lock);
    if (!run_started) {
        faults_errmsg_set("fault %s: faults_init() must come first", name);
        rc = -EINVAL;
        goto out_unlock;
    }
    /* Re-arming (by us or over a fiu-ctrl enable): libfiu caches wildcard
     * lookups by pf pointer, and replacing an enabled wildcard in place would
     * leave that cache dangling; a disable first drops the cache. */
    fiu_disable(name);
    rc = arm_store(name, spec);
    if (rc < 0) {
        goto out_unlock;
    }
    if (fiu_enable_external(name, 1, (void *)arm_failinfo(point, spec), 0, arm_decide) != 0) {
        arm_forget(name);
        faults_errmsg_set("fault %s: fiu_enable_external failed", name);
        rc = -ENOMEM;
    }
out_unlock:
    pthread_mutex_unlock(&control_lock);
    return rc;
}

int faults_disarm(const char *name)
{
    if (name == NULL) {
        return -ENOENT;
    }
    pthread_mutex_lock(&control_lock);
    int rc = 0;
    if (!arm_is_armed(name)) {
        faults_errmsg_set("fault %s: not armed", name);
        rc = -ENOENT;
    } else {
        /* After fiu_disable returns no callback for it is running (it waits
         * for libfiu's readers), so the slot can go. */
        fiu_disable(name);
        arm_forget(name);
    }
    pthread_mutex_unlock(&control_lock);
    return rc;
}

/* Copies one armed name out (index order), or returns false past the end. */
static bool arm_name_at(size_t index, char *name)
{
    pthread_mutex_lock(&state_lock);
    bool in_use = armed[index].in_use;
    if (in_use) {
        memcpy(name, armed[index].name, FAULTS_NAME_MAX);
    }
    pthread_mutex_unlock(&state_lock);
    return in_use;
}

/* Disables every point armed through faults_arm; control_lock held. */
static void arm_disarm_all_locked(void)
{
    for (size_t i = 0; i < FAULTS_ARMED_MAX; i++) {
        char name[FAULTS_NAME_MAX];
        if (arm_name_at(i, name)) {
            fiu_disable(name);
            arm_forget(name);
        }
    }
}

void faults_disarm_all(void)
{
    pthread_mutex_lock(&control_lock);
    arm_disarm_all_locked();
    pthread_mutex_unlock(&control_lock);
}

int faults_init(uint64_t seed)
{
    pthread_mutex_lock(&control_lock);
    int rc = 0;
    if (fiu_init(0) != 0) {
        faults_errmsg_set("fiu_init failed");
        rc = -ENOMEM;
        goto out_unlock;
    }
    arm_disarm_all_locked();
    pthread_mutex_lock(&state_lock);
    run_seed = seed;
    pthread_mutex_unlock(&state_lock);
    run_started = true;
out_unlock:
    pthread_mutex_unlock(&control_lock);
    return rc;
}

int faults_stats(const char *name, uint64_t *calls, uint64_t *fired)
{
    if (name == NULL) {
        return -ENOENT;
    }
    pthread_mutex_lock(&state_lock);
    struct armed_point *point = arm_find(name);
    if (point != NULL) {
        if (calls != NULL) {
            *calls = point->calls;
        }
        if (fired != NULL) {
            *fired = point->fired;
        }
    }
    pthread_mutex_unlock(&state_lock);
    return point != NULL ? 0 : -ENOENT;
}

/* What a fired point injects when nobody said: the catalog's default. */
static int64_t arm_default_value(const struct faults_point *point)
{
    if (point != NULL && point->delay_us_default > 0) {
        return point->delay_us_default;
    }
    if (point != NULL && point->errno_default > 0) {
        return point->errno_default;
    }
    return EIO;
}

void faults_set_closed(bool closed)
{
    atomic_store(&closed_run, closed);
    atomic_fetch_add(&generation, 1);
}

uint64_t faults_generation(void)
{
    return atomic_load(&generation);
}

/* Whether the armed `pattern` can match some name that starts with prefix:
 * equal up to the shorter of the two, a trailing '*' matching the rest. */
static bool arm_may_match(const char *pattern, const char *prefix)
{
    size_t len = strlen(pattern);
    if (len > 0 && pattern[len - 1] == '*') {
        len--;
    }
    size_t prefix_len = strlen(prefix);
    return strncmp(pattern, prefix, len < prefix_len ? len : prefix_len) == 0;
}

bool faults_may_fire(const char *prefix)
{
    assert(prefix != NULL);
    if (!atomic_load(&closed_run)) {
        return true;
    }
    bool may = false;
    pthread_mutex_lock(&state_lock);
    for (size_t i = 0; i < FAULTS_ARMED_MAX && !may; i++) {
        may = armed[i].in_use && arm_may_match(armed[i].name, prefix);
    }
    pthread_mutex_unlock(&state_lock);
    return may;
}

int64_t faults_check(const char *name)
{
    assert(name != NULL);
    last_decision = (struct arm_decision){0};
    if (atomic_load(&closed_run) && atomic_load(&armed_count) == 0) {
        return 0; /* nothing armed, and nothing else arms: nothing fires */
    }
    if (fiu_fail(name) == 0) {
        return 0;
    }
    const struct faults_point *point = faults_lookup(name);
    bool takes_delay = point != NULL && point->delay_us_default > 0;
    int64_t value;
    if (last_decision.fired) {
        /* Armed by faults_arm: the spec of the arming, whatever its name. */
        value = takes_delay ? last_decision.delay_us : last_decision.err;
    } else {
        /* Enabled from outside (fiu-ctrl, a test's fiu_enable): failinfo. */
        value = (int64_t)(intptr_t)fiu_failinfo();
    }
    if (value <= 0) {
        value = arm_default_value(point);
    }
    if (!takes_delay && (value == EINTR || value == EAGAIN || value == EWOULDBLOCK)) {
        value = EIO; /* a fiu-ctrl failinfo=4 must not hang SQLite */
    }
    return value;
}
