/*
 * live_stake.c — topology `stake` in `run --live`: the ledger is serve's
 * (`serve --stake` in the main node's process, on the file the simulator's
 * setup made and registered the predictors in), the predictors are this
 * runner's. Every round= a thread closes the open round (POST
 * /stake/rounds/close) and sends each predictor's prediction (POST
 * /stake/predictions): the same seeded draws, the same lies
 * (stake/predictorN/lie, armed in this process's libfiu as the simulator arms
 * it, since a predictor is this process), the same trace lines (ledger.c's
 * live part). At a judgement the runner opens the ledger's file and
 * stake-conserved judges it as in the simulator.
 *
 * A round's step runs LIVE_STAKE_AFTER_US after its time: the simulator plays
 * a drill's statements (a lie armed, a for= ending) before the ledger's step
 * of the same instant, and so does this.
 */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "platform/stake.h"
#include "sim/live_more.h"
#include "sim/world.h"

#define LIVE_STAKE_AFTER_US 30000     /* a step after the drill's statements of its instant */
#define LIVE_STAKE_TIMEOUT_MS 2000    /* a ledger request unanswered by then: lost */
#define LIVE_STAKE_BODY_MAX (1u << 20)

struct live_stake {
    struct live_stake_io io;
    pthread_t thread;
    atomic_bool stop;
    CURL *h;
    struct live_body body;           /* the last reply */
    struct stake_round_result result; /* large: off the stack */
    struct ledger_live_prediction preds[DRILL_PREDICTORS_MAX];
};

/* ---- what runs live ------------------------------------------------------ */

bool live_stake_point(const char *name)
{
    return strncmp(name, "stake/", 6) == 0;
}

int live_stake_arm(const struct drill_event *e, char *why, size_t len)
{
    int err = faults_arm(e->name, &e->spec);
    if (err)
        snprintf(why, len, "%s", faults_errmsg());
    return err;
}

void live_stake_disarm(struct world_fault *f)
{
    faults_stats(f->name, &f->reached, &f->fired);
    faults_disarm(f->name);
}

/* ---- HTTP ---------------------------------------------------------------- */

/* POST base+path with a JSON body (NULL: none): the status (0: no answer), the reply
 * parsed in *out (NULL when it is not JSON); why says what went wrong. */
static long post(struct live_stake *w, const char *base, const char *path, const char *json,
                 cJSON **out, char *why, size_t len)
{
    char url[128];
    snprintf(url, sizeof(url), "%s%s", base, path);
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    live_body_reset(&w->body);
    curl_easy_setopt(w->h, CURLOPT_URL, url);
    curl_easy_setopt(w->h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(w->h, CURLOPT_POSTFIELDS, json != NULL ? json : "");
    CURLcode cc = curl_easy_perform(w->h);
    curl_slist_free_all(hdr);
    long status = 0;
    *out = NULL;
    if (cc != CURLE_OK) {
        snprintf(why, len, "%s", curl_easy_strerror(cc));
        return 0;
    }
    curl_easy_getinfo(w->h, CURLINFO_RESPONSE_CODE, &status);
    if (!w->body.cut && w->body.data != NULL)
        *out = cJSON_Parse(w->body.data);
    const cJSON *detail = cJSON_GetObjectItemCaseSensitive(*out, "detail");
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(*out, "error");
    snprintf(why, len, "%ld %s%s%s", status, cJSON_IsString(error) ? error->valuestring : "",
             cJSON_IsString(detail) ? ": " : "", cJSON_IsString(detail) ? detail->valuestring : "");
    return status;
}

static int64_t num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? (int64_t)llround(v->valuedouble) : 0;
}

static bool truth(const cJSON *o, const char *key)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, key));
}

/* serve's close reply, as the platform's result (the ledger's own numbers). */
static void round_of(const cJSON *j, struct stake_round_result *r)
{
    memset(r, 0, sizeof(*r));
    r->round = num(j, "round");
    r->has_consensus = truth(j, "hasConsensus");
    r->consensus = num(j, "consensus");
    r->total_stake = num(j, "totalStake");
    r->slashed_total = num(j, "slashedTotal");
    r->treasury = num(j, "treasury");
    r->excluded_count = (size_t)num(j, "excludedCount");
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(j, "entries"))
    {
        if (r->entry_count == STAKE_PREDICTORS_MAX)
            break;
        r->entries[r->entry_count++] = (struct stake_round_entry){
            .predictor_id = num(e, "predictorId"),
            .prediction = num(e, "prediction"),
            .stake = num(e, "stake"),
            .weight_ppm = num(e, "weightPpm"),
            .error = num(e, "error"),
            .slashed = num(e, "slashed"),
            .balance = num(e, "balance"),
            .eligible = truth(e, "eligible"),
            .excluded = truth(e, "excluded"),
        };
    }
}

/* ---- a step: close the round the last predictions went to, predict -------- */

static void close_round(struct live_stake *w, const char *base)
{
    struct sim *s = w->io.s;
    cJSON *j = NULL;
    char why[400];
    long status = base[0] ? post(w, base, "/stake/rounds/close", NULL, &j, why, sizeof(why)) : 0;
    if (status == 200 && j != NULL)
        round_of(j, &w->result);
    cJSON_Delete(j);
    pthread_mutex_lock(w->io.lock);
    w->io.tick(w->io.ctx);
    if (!base[0])
        world_trace(s, "ledger", "down: no round closed (its process is not running)");
    else if (status != 200)
        world_trace(s, "ledger", "round not closed: %s; its predictions stay, retried next round",
                    why);
    else
        ledger_live_closed(s, &w->result);
    pthread_mutex_unlock(w->io.lock);
}

static void send_predictions(struct live_stake *w, const char *base, int count)
{
    struct sim *s = w->io.s;
    for (int k = 0; k < count; k++) {
        const struct ledger_live_prediction *p = &w->preds[k];
        char json[128], why[400];
        snprintf(json, sizeof(json), "{\"predictorId\":%" PRId64 ",\"prediction\":%" PRId64 "}",
                 p->id, p->value);
        cJSON *j = NULL;
        long status = base[0] ? post(w, base, "/stake/predictions", json, &j, why, sizeof(why))
                              : 0;
        int64_t round = num(j, "round");
        cJSON_Delete(j);
        pthread_mutex_lock(w->io.lock);
        w->io.tick(w->io.ctx);
        if (status == 201)
            ledger_live_recorded(s, p, round);
        else if (status == 409)
            world_trace(s, "ledger", "prediction %" PRId64 " of predictor%d refused: %s",
                        p->value, p->predictor, why);
        else
            world_trace(s, "ledger", "prediction of predictor%d lost: %s", p->predictor,
                        base[0] ? why : "the ledger's process is not running");
        pthread_mutex_unlock(w->io.lock);
    }
}

static void *stake_main(void *arg)
{
    struct live_stake *w = arg;
    struct sim *s = w->io.s;
    int64_t every = ledger_live_round_us(s);
    int64_t end = s->drill->duration_us;
    for (int64_t at = every, step = 0; every > 0 && at < end; at += every, step++) {
        while (!atomic_load(&w->stop) && w->io.now(w->io.ctx) < at + LIVE_STAKE_AFTER_US) {
            struct timespec d = {.tv_sec = 0, .tv_nsec = 5 * 1000 * 1000};
            nanosleep(&d, NULL);
        }
        if (atomic_load(&w->stop))
            break;
        char base[64] = "";
        pthread_mutex_lock(w->io.lock);
        w->io.tick(w->io.ctx);
        if (w->io.ledger(w->io.ctx, base) != 1)
            base[0] = '\0';
        pthread_mutex_unlock(w->io.lock);
        if (step > 0)
            close_round(w, base);
        pthread_mutex_lock(w->io.lock);
        w->io.tick(w->io.ctx);
        int count = ledger_live_step(s, w->preds, DRILL_PREDICTORS_MAX);
        pthread_mutex_unlock(w->io.lock);
        send_predictions(w, base, count);
    }
    return NULL;
}

struct live_stake *live_stake_start(const struct live_stake_io *io)
{
    struct live_stake *w = calloc(1, sizeof(*w));
    CURL *h = w != NULL ? curl_easy_init() : NULL;
    if (h == NULL) {
        free(w);
        return NULL;
    }
    w->io = *io;
    w->h = h;
    w->body.max = LIVE_STAKE_BODY_MAX;
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, live_body_collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &w->body);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)LIVE_STAKE_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L); /* no idle connection delays a stop */
    if (pthread_create(&w->thread, NULL, stake_main, w) != 0) {
        curl_easy_cleanup(h);
        free(w);
        return NULL;
    }
    return w;
}

void live_stake_stop(struct live_stake *w)
{
    if (w == NULL)
        return;
    atomic_store(&w->stop, true);
    pthread_join(w->thread, NULL);
    struct sim *s = w->io.s;
    pthread_mutex_lock(w->io.lock);
    for (size_t i = 0; i < s->fault_count; i++) /* the lies armed to the end: their counts */
        if (s->faults[i].armed && live_stake_point(s->faults[i].name))
            faults_stats(s->faults[i].name, &s->faults[i].reached, &s->faults[i].fired);
    pthread_mutex_unlock(w->io.lock);
    curl_easy_cleanup(w->h);
    free(w->body.data);
    free(w);
}
