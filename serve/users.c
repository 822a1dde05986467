/*
 * users.c — /users: create {name, email}, update by email {name?, newEmail?},
 * and get by email (the front end's "sign in"). A duplicate email is 409.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "serve/internal.h"

struct user_args {
    const char *email;
    struct shop_user u;
};

static int user_read(shop *s, void *arg)
{
    struct user_args *a = arg;
    return shop_user_get_by_email(s, a->email, &a->u);
}

static void reply_user(struct request *rq, const char *email, int status)
{
    struct user_args a = {.email = email};
    int rc = worker_read(rq, user_read, &a);
    if (rc < 0) {
        http_reply_platform(rq, rc, rq->detail);
        return;
    }
    buf_reset(&rq->w->out);
    json_user(&rq->w->out, &a.u);
    http_reply(rq, status);
}

void users_create(struct request *rq)
{
    struct write_job job = {.kind = JOB_USER_CREATE};
    if (http_read_json(rq) < 0)
        return;
    int rc = json_get_str(rq->json, "name", SHOP_NAME_MAX, true, &job.name, rq->detail);
    if (rc >= 0)
        rc = json_get_str(rq->json, "email", SHOP_EMAIL_MAX, true, &job.email, rq->detail);
    if (rc < 0) {
        http_reply_error(rq, 400, "invalid user", rq->detail);
        return;
    }
    if (http_submit(rq, &job) < 0)
        return;
    if (job.rc < 0) {
        http_reply_platform(rq, (int)job.rc, job.detail);
        return;
    }
    struct shop_user u = {.id = job.rc};
    snprintf(u.name, sizeof(u.name), "%s", job.name);
    snprintf(u.email, sizeof(u.email), "%s", job.email);
    buf_reset(&rq->w->out);
    json_user(&rq->w->out, &u);
    http_reply(rq, 201);
}

void users_update(struct request *rq)
{
    struct write_job job = {.kind = JOB_USER_UPDATE, .email = rq->args[0]};
    if (http_read_json(rq) < 0)
        return;
    int rc = json_get_str(rq->json, "name", SHOP_NAME_MAX, false, &job.name, rq->detail);
    if (rc >= 0)
        rc = json_get_str(rq->json, "newEmail", SHOP_EMAIL_MAX, false, &job.new_email,
                          rq->detail);
    if (rc >= 0 && job.name == NULL && job.new_email == NULL) {
        snprintf(rq->detail, sizeof(rq->detail), "give a name, a newEmail or both");
        rc = -EINVAL;
    }
    if (rc < 0) {
        http_reply_error(rq, 400, "invalid user", rq->detail);
        return;
    }
    if (http_submit(rq, &job) < 0)
        return;
    if (job.rc < 0) {
        http_reply_platform(rq, (int)job.rc, job.detail);
        return;
    }
    reply_user(rq, job.new_email != NULL ? job.new_email : job.email, 200);
}

void users_get(struct request *rq)
{
    reply_user(rq, rq->args[0], 200);
}
