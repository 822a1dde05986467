/*
 * stake.c — `serve --stake`: the platform's stake ledger (platform/stake.h)
 * beside any topology's shop, in DATA/ledger.sqlite on node `ledger`'s fault
 * VFS (so `fiu-ctrl -c "enable name=disk/ledger/write,failinfo=5" PID`
 * breaks its disk), with JSON routes:
 *
 *   POST /stake/predictors   {name, deposit}            register, 201
 *   POST /stake/predictions  {predictorId, prediction[, round]}  submit, 201
 *   POST /stake/rounds/close                             close the open round, 200
 *   GET  /stake/rounds/:n                                a closed round
 *   GET  /stake/status                                   stakes, weights, treasury, slashed
 *
 * Every rule (consensus, weights, slashing, exclusion, conservation) is the
 * platform's: this file parses, calls and prints. The ledger object is not
 * thread-safe: one mutex serialises every call, and the large results live
 * in the host (civetweb's worker stacks are small).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform/stake.h"
#include "serve/internal.h"

struct stake_host {
    pthread_mutex_t lock;
    stake_ledger *ledger;
    char path[SERVE_PATH_MAX];
    /* scratch, under lock */
    struct stake_round_result result;
    struct stake_audit audit;
    struct stake_predictor list[STAKE_PREDICTORS_MAX];
};

/* --stake-config: tolerance=N,slash=PPM|P%,min-stake=N,predictors=N. */
int stake_parse_config(const char *spec, struct stake_config *cfg, char *why, size_t len)
{
    *cfg = (struct stake_config){.tolerance = STAKE_DEFAULT_TOLERANCE,
                                 .slash_ppm = STAKE_DEFAULT_SLASH_PPM,
                                 .min_stake = STAKE_DEFAULT_MIN_STAKE,
                                 .max_predictors = STAKE_PREDICTORS_MAX};
    char copy[256];
    if (snprintf(copy, sizeof(copy), "%s", spec) >= (int)sizeof(copy)) {
        snprintf(why, len, "too long");
        return -EINVAL;
    }
    char *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        char *end = NULL;
        if (eq == NULL) {
            snprintf(why, len, "'%s' is not KEY=VALUE", item);
            return -EINVAL;
        }
        *eq = '\0';
        errno = 0;
        long long v = strtoll(eq + 1, &end, 10);
        bool percent = end != NULL && strcmp(end, "%") == 0 && strcmp(item, "slash") == 0;
        if (errno != 0 || end == eq + 1 || (*end != '\0' && !percent) || v < 0) {
            snprintf(why, len, "%s=%s: not a whole number", item, eq + 1);
            return -EINVAL;
        }
        if (strcmp(item, "tolerance") == 0 && v <= 2 * STAKE_PREDICTION_MAX)
            cfg->tolerance = v;
        else if (strcmp(item, "slash") == 0 && (percent ? v <= 100 : v <= STAKE_PPM))
            cfg->slash_ppm = percent ? v * (STAKE_PPM / 100) : v;
        else if (strcmp(item, "min-stake") == 0 && v >= 1 && v <= STAKE_DEPOSIT_MAX)
            cfg->min_stake = v;
        else if (strcmp(item, "predictors") == 0 && v >= 1 && v <= STAKE_PREDICTORS_MAX)
            cfg->max_predictors = v;
        else {
            snprintf(why, len, "%s=%s: unknown key or out of range (tolerance 0..%lld, slash "
                               "0..%d ppm or 0..100%%, min-stake 1..%lld, predictors 1..%d)",
                     item, eq + 1, 2 * STAKE_PREDICTION_MAX, STAKE_PPM, STAKE_DEPOSIT_MAX,
                     STAKE_PREDICTORS_MAX);
            return -EINVAL;
        }
    }
    return 0;
}

int stake_host_start(struct server *srv)
{
    const struct serve_options *o = &srv->opt;
    struct stake_host *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return -ENOMEM;
    pthread_mutex_init(&h->lock, NULL);
    snprintf(h->path, sizeof(h->path), "%s/ledger.sqlite", o->data_dir);
    struct faults_host fh = host_faults();
    int err = faults_vfs_register("ledger", &fh);
    if (err) {
        fprintf(stderr, "faultdrill serve: cannot set up the ledger's fault VFS: %s\n",
                faults_errmsg());
        pthread_mutex_destroy(&h->lock);
        free(h);
        return err;
    }
    struct stake_config cfg;
    char why[256] = "";
    if (o->stake_config != NULL) {
        err = stake_parse_config(o->stake_config, &cfg, why, sizeof(why));
        if (err)
            fprintf(stderr, "faultdrill serve: --stake-config: %s\n", why);
    } else {
        /* an existing ledger keeps its own; a new one takes the defaults */
        FILE *f = fopen(h->path, "rb");
        if (f != NULL)
            fclose(f);
        stake_parse_config("", &cfg, why, sizeof(why));
        if (f != NULL) {
            char msg[STAKE_ERRMSG_MAX];
            err = stake_open(h->path, faults_vfs_name("ledger"), NULL, &h->ledger, msg);
            if (err)
                fprintf(stderr, "faultdrill serve: cannot open the stake ledger %s: %s\n",
                        h->path, msg);
            goto out;
        }
    }
    if (!err) {
        char msg[STAKE_ERRMSG_MAX];
        err = stake_open(h->path, faults_vfs_name("ledger"), &cfg, &h->ledger, msg);
        if (err)
            fprintf(stderr, "faultdrill serve: cannot open the stake ledger %s: %s\n", h->path,
                    msg);
    }
out:
    if (err) {
        pthread_mutex_destroy(&h->lock);
        free(h);
        return err;
    }
    srv->stake = h;
    return 0;
}

void stake_host_stop(struct server *srv)
{
    struct stake_host *h = srv->stake;
    if (h == NULL)
        return;
    stake_close(h->ledger);
    pthread_mutex_destroy(&h->lock);
    free(h);
    srv->stake = NULL;
}

/* ---- replies -------------------------------------------------------------- */

static struct stake_host *host_of(struct request *rq)
{
    struct stake_host *h = rq->srv->stake;
    if (h == NULL) {
        snprintf(rq->detail, sizeof(rq->detail), "start serve with --stake to host the ledger");
        http_reply_error(rq, 404, "no stake ledger here", rq->detail);
    }
    return h;
}

/* A ledger error: its status, and the ledger's own words. Under lock. */
static void reply_ledger_error(struct request *rq, struct stake_host *h, int rc)
{
    int status = rc == -EINVAL || rc == -ERANGE             ? 400
                 : rc == -ENOENT                            ? 404
                 : rc == -EEXIST || rc == -EPERM || rc == -E2BIG ? 409
                 : rc == -EIO || rc == -ENOSPC || rc == -EBUSY || rc == -EROFS ||
                         rc == -EBADMSG
                     ? 503
                     : 500;
    const char *error = rc == -EINPROGRESS ? "outcome unknown"
                        : status == 503    ? "the ledger's disk failed: nothing was changed"
                        : status == 404    ? "not found"
                        : status == 409    ? "refused by the ledger"
                        : status == 400    ? "invalid stake request"
                                           : "ledger error";
    snprintf(rq->detail, sizeof(rq->detail), "%s", stake_errmsg(h->ledger));
    http_reply_error(rq, status, error, rq->detail);
}

static void put_i64(struct buf *b, const char *key, int64_t v)
{
    buf_puts(b, ",\"");
    buf_puts(b, key);
    buf_puts(b, "\":");
    buf_i64(b, v);
}

static void put_predictor(struct buf *b, const struct stake_predictor *p, int64_t weight_ppm)
{
    buf_puts(b, "{\"id\":");
    buf_i64(b, p->id);
    buf_puts(b, ",\"name\":");
    json_str(b, p->name);
    put_i64(b, "deposit", p->deposit);
    put_i64(b, "balance", p->balance);
    put_i64(b, "slashed", p->deposit - p->balance);
    if (weight_ppm >= 0)
        put_i64(b, "weightPpm", weight_ppm);
    put_i64(b, "registeredRound", p->registered_round);
    buf_puts(b, p->excluded ? ",\"excluded\":true" : ",\"excluded\":false");
    put_i64(b, "excludedRound", p->excluded_round);
    buf_puts(b, "}");
}

static void put_round(struct buf *b, const struct stake_round_result *r)
{
    buf_puts(b, "{\"round\":");
    buf_i64(b, r->round);
    buf_puts(b, r->has_consensus ? ",\"hasConsensus\":true" : ",\"hasConsensus\":false");
    buf_puts(b, ",\"consensus\":");
    r->has_consensus ? buf_i64(b, r->consensus) : buf_puts(b, "null");
    put_i64(b, "totalStake", r->total_stake);
    put_i64(b, "slashedTotal", r->slashed_total);
    put_i64(b, "treasury", r->treasury);
    put_i64(b, "excludedCount", (int64_t)r->excluded_count);
    buf_puts(b, ",\"entries\":[");
    for (size_t k = 0; k < r->entry_count; k++) {
        const struct stake_round_entry *e = &r->entries[k];
        buf_puts(b, k > 0 ? ",{\"predictorId\":" : "{\"predictorId\":");
        buf_i64(b, e->predictor_id);
        put_i64(b, "prediction", e->prediction);
        put_i64(b, "stake", e->stake);
        put_i64(b, "weightPpm", e->weight_ppm);
        put_i64(b, "error", e->error);
        put_i64(b, "slashed", e->slashed);
        put_i64(b, "balance", e->balance);
        buf_puts(b, e->eligible ? ",\"eligible\":true" : ",\"eligible\":false");
        buf_puts(b, e->excluded ? ",\"excluded\":true}" : ",\"excluded\":false}");
    }
    buf_puts(b, "]}");
}

/* ---- routes --------------------------------------------------------------- */

/* Under h->lock: the round in h->result, or the ledger's error rc. */
static void reply_round(struct request *rq, struct stake_host *h, int rc)
{
    if (rc) {
        reply_ledger_error(rq, h, rc);
        return;
    }
    buf_reset(&rq->w->out);
    put_round(&rq->w->out, &h->result);
    http_reply(rq, 200);
}

void stake_register_route(struct request *rq)
{
    struct stake_host *h = host_of(rq);
    if (h == NULL || http_read_json(rq) < 0)
        return;
    const char *name = NULL;
    int64_t deposit = 0;
    int rc = json_get_str(rq->json, "name", STAKE_NAME_MAX, true, &name, rq->detail);
    if (rc >= 0)
        rc = json_get_int(rq->json, "deposit", 1, STAKE_DEPOSIT_MAX, true, &deposit, rq->detail);
    if (rc < 0) {
        http_reply_error(rq, 400, "invalid predictor", rq->detail);
        return;
    }
    pthread_mutex_lock(&h->lock);
    int64_t id = 0;
    struct stake_predictor p;
    rc = stake_register(h->ledger, name, deposit, &id);
    if (!rc)
        rc = stake_predictor_get(h->ledger, id, &p);
    if (rc) {
        reply_ledger_error(rq, h, rc);
    } else {
        buf_reset(&rq->w->out);
        put_predictor(&rq->w->out, &p, -1);
        http_reply(rq, 201);
    }
    pthread_mutex_unlock(&h->lock);
}

void stake_submit_route(struct request *rq)
{
    struct stake_host *h = host_of(rq);
    if (h == NULL || http_read_json(rq) < 0)
        return;
    int64_t id = 0, prediction = 0, round = 0;
    int rc = json_get_int(rq->json, "predictorId", 1, INT32_MAX, true, &id, rq->detail);
    if (rc >= 0)
        rc = json_get_int(rq->json, "prediction", -STAKE_PREDICTION_MAX, STAKE_PREDICTION_MAX,
                          true, &prediction, rq->detail);
    if (rc >= 0)
        rc = json_get_int(rq->json, "round", 1, INT32_MAX, false, &round, rq->detail);
    if (rc < 0) {
        http_reply_error(rq, 400, "invalid prediction", rq->detail);
        return;
    }
    pthread_mutex_lock(&h->lock);
    rc = round > 0 ? 0 : stake_current_round(h->ledger, &round);
    if (!rc)
        rc = stake_submit(h->ledger, round, id, prediction);
    if (rc) {
        reply_ledger_error(rq, h, rc);
    } else {
        struct buf *b = &rq->w->out;
        buf_reset(b);
        buf_puts(b, "{\"round\":");
        buf_i64(b, round);
        put_i64(b, "predictorId", id);
        put_i64(b, "prediction", prediction);
        buf_puts(b, "}");
        http_reply(rq, 201);
    }
    pthread_mutex_unlock(&h->lock);
}

void stake_close_route(struct request *rq)
{
    struct stake_host *h = host_of(rq);
    if (h == NULL)
        return;
    pthread_mutex_lock(&h->lock);
    int64_t round = 0;
    int rc = stake_current_round(h->ledger, &round);
    if (!rc)
        rc = stake_close_round(h->ledger, round, &h->result);
    reply_round(rq, h, rc);
    pthread_mutex_unlock(&h->lock);
}

void stake_round_route(struct request *rq)
{
    struct stake_host *h = host_of(rq);
    if (h == NULL)
        return;
    char *end = NULL;
    errno = 0;
    long long round = strtoll(rq->args[0], &end, 10);
    if (errno != 0 || end == rq->args[0] || *end != '\0' || round < 1) {
        snprintf(rq->detail, sizeof(rq->detail), "a round is a whole number from 1, not '%s'",
                 rq->args[0]);
        http_reply_error(rq, 400, "invalid round", rq->detail);
        return;
    }
    pthread_mutex_lock(&h->lock);
    int rc = stake_round_get(h->ledger, round, &h->result);
    reply_round(rq, h, rc);
    pthread_mutex_unlock(&h->lock);
}

void stake_status_route(struct request *rq)
{
    struct stake_host *h = host_of(rq);
    if (h == NULL)
        return;
    pthread_mutex_lock(&h->lock);
    int64_t round = 0;
    int rc = stake_current_round(h->ledger, &round);
    if (!rc)
        rc = stake_audit(h->ledger, &h->audit);
    int n = rc ? rc : stake_list(h->ledger, h->list, STAKE_PREDICTORS_MAX);
    if (n < 0) {
        reply_ledger_error(rq, h, n);
        pthread_mutex_unlock(&h->lock);
        return;
    }
    const struct stake_audit *a = &h->audit;
    struct stake_config cfg;
    stake_get_config(h->ledger, &cfg);
    struct buf *b = &rq->w->out;
    buf_reset(b);
    buf_puts(b, "{\"round\":");
    buf_i64(b, round);
    buf_puts(b, ",\"config\":{\"tolerance\":");
    buf_i64(b, cfg.tolerance);
    put_i64(b, "slashPpm", cfg.slash_ppm);
    put_i64(b, "minStake", cfg.min_stake);
    put_i64(b, "maxPredictors", cfg.max_predictors);
    buf_puts(b, "}");
    put_i64(b, "deposits", a->deposits);
    put_i64(b, "balances", a->balances);
    put_i64(b, "treasury", a->treasury);
    buf_puts(b, stake_audit_is_ok(a) ? ",\"conserved\":true" : ",\"conserved\":false");
    put_i64(b, "roundsClosed", a->rounds_closed);
    put_i64(b, "eligible", a->eligible);
    put_i64(b, "eligibleStake", a->eligible_stake);
    buf_puts(b, ",\"predictors\":[");
    for (int i = 0; i < n && i < STAKE_PREDICTORS_MAX; i++) {
        int64_t w = 0;
        for (size_t k = 0; k < a->weight_count; k++)
            if (a->weights[k].predictor_id == h->list[i].id)
                w = a->weights[k].weight_ppm;
        if (i > 0)
            buf_puts(b, ",");
        put_predictor(b, &h->list[i], w);
    }
    buf_puts(b, "],\"slashed\":[");
    bool first = true;
    for (int i = 0; i < n && i < STAKE_PREDICTORS_MAX; i++) {
        if (h->list[i].balance == h->list[i].deposit)
            continue;
        buf_puts(b, first ? "" : ",");
        json_str(b, h->list[i].name);
        first = false;
    }
    buf_puts(b, "]}");
    pthread_mutex_unlock(&h->lock);
    http_reply(rq, 200);
}
