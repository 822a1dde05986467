/*
 * check_catalog.c — tests faults/catalog.c: the fault-point names drills are
 * written against (DESIGN.md §3). Breaks the matcher with concrete names,
 * wildcard prefixes, near misses, and the errno table with the values SQLite
 * would retry forever. Depends on libfaults and Check only.
 */
#include "faults/faults.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tests/check_run.h"

/* The pattern with each placeholder replaced by a node name. */
static void instantiate(const char *pattern, char *out, size_t out_size)
{
    static const char *const names[] = {"<node>", "<from>", "<to>"};
    static const char *const values[] = {"primary", "client1", "mirror_2"};
    size_t len = 0;
    for (const char *p = pattern; *p != '\0';) {
        bool replaced = false;
        for (size_t k = 0; k < 3 && !replaced; k++) {
            size_t name_len = strlen(names[k]);
            if (strncmp(p, names[k], name_len) == 0) {
                len += (size_t)snprintf(out + len, out_size - len, "%s", values[k]);
                p += name_len;
                replaced = true;
            }
        }
        if (!replaced) {
            ck_assert_uint_lt(len + 1, out_size);
            out[len++] = *p++;
            out[len] = '\0';
        }
    }
}

START_TEST(every_pattern_matches_its_concrete_names)
{
    size_t count = 0;
    const struct faults_point *catalog = faults_catalog(&count);
    ck_assert_uint_ge(count, 19);
    for (size_t i = 0; i < count; i++) {
        char name[FAULTS_NAME_MAX];
        instantiate(catalog[i].pattern, name, sizeof name);
        ck_assert_msg(faults_lookup(name) == &catalog[i], "%s -> %s", catalog[i].pattern, name);
        ck_assert_ptr_nonnull(catalog[i].where);
        ck_assert_ptr_nonnull(catalog[i].description);
        ck_assert_str_ne(faults_family_name(catalog[i].family), "?");
    }
}
END_TEST

START_TEST(every_contract_name_is_in_the_catalog)
{
    static const struct {
        const char *name;
        enum faults_family family;
        int errno_default;
        bool takes_delay;
    } expected[] = {
        {"disk/primary/read", FAULTS_FAMILY_DISK, EIO, false},
        {"disk/primary/write", FAULTS_FAMILY_DISK, EIO, false},
        {"disk/mirror/fsync", FAULTS_FAMILY_DISK, EIO, false},
        {"disk/mirror/full", FAULTS_FAMILY_DISK, ENOSPC, false},
        {"disk/local3/slow", FAULTS_FAMILY_DISK, 0, true},
        {"net/client1/primary/drop", FAULTS_FAMILY_NET, 0, false},
        {"net/primary/secondary/delay", FAULTS_FAMILY_NET, 0, true},
        {"net/leader/replica2/duplicate", FAULTS_FAMILY_NET, 0, false},
        {"net/leader/replica2/reorder", FAULTS_FAMILY_NET, 0, false},
        {"crash/primary/mirror-between-commits", FAULTS_FAMILY_CRASH, 0, false},
        {"crash/primary/mirror-before-commit", FAULTS_FAMILY_CRASH, 0, false},
        {"crash/mirror/mirror-during-resync", FAULTS_FAMILY_CRASH, 0, false},
        {"crash/primary/checkout-mid-transaction", FAULTS_FAMILY_CRASH, 0, false},
        {"stake/predictor2/lie", FAULTS_FAMILY_STAKE, 0, false},
        {"posix/io/rw/pwrite", FAULTS_FAMILY_LIBC, EIO, false},
        {"posix/io/rw/write", FAULTS_FAMILY_LIBC, EIO, false},
        {"posix/io/sync/fdatasync", FAULTS_FAMILY_LIBC, EIO, false},
        {"posix/io/sync/fsync", FAULTS_FAMILY_LIBC, EIO, false},
        {"posix/io/oc/open", FAULTS_FAMILY_LIBC, EACCES, false},
    };
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        const struct faults_point *point = faults_lookup(expected[i].name);
        ck_assert_msg(point != NULL, "%s not found", expected[i].name);
        ck_assert_int_eq(point->family, expected[i].family);
        ck_assert_int_eq(point->errno_default, expected[i].errno_default);
        ck_assert_int_eq(point->delay_us_default > 0, expected[i].takes_delay);
    }
}
END_TEST

START_TEST(wildcard_prefixes_match_what_they_could_produce)
{
    static const struct {
        const char *name;
        const char *first_pattern;
    } prefixes[] = {
        {"*", "disk/<node>/read"},
        {"disk/*", "disk/<node>/read"},
        {"disk/primary/*", "disk/<node>/read"},
        {"disk/primary/f*", "disk/<node>/fsync"},
        {"disk/primary/full*", "disk/<node>/full"},
        {"disk/prim*", "disk/<node>/read"},
        {"net/*", "net/<from>/<to>/drop"},
        {"net/client1/primary/*", "net/<from>/<to>/drop"},
        {"net/client1/primary/re*", "net/<from>/<to>/reorder"},
        {"crash/primary/mirror-*", "crash/<node>/mirror-between-commits"},
        {"crash/primary/checkout*", "crash/<node>/checkout-mid-transaction"},
        {"stake/*", "stake/<node>/lie"},
        {"stake/predictor3/l*", "stake/<node>/lie"},
        {"posix/io/*", "posix/io/rw/pwrite"},
        {"posix/io/sync/*", "posix/io/sync/fdatasync"},
        {"po*", "posix/io/rw/pwrite"},
    };
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        const struct faults_point *point = faults_lookup(prefixes[i].name);
        ck_assert_msg(point != NULL, "%s not matched", prefixes[i].name);
        ck_assert_str_eq(point->pattern, prefixes[i].first_pattern);
    }
}
END_TEST

static const char *const rejected[] = {
    "disk/primary/wrte", /* the typo a drill makes */
    "disk/primary/writes",
    "disk/primary",
    "disk/primary/write/extra",
    "disk//write",        /* empty node */
    "disk/Primary/write", /* node names are lower case */
    "disk/pri.mary/write",
    "disk/primary/wr*te", /* '*' only at the end */
    "disk/primary/writex*",
    "disk/primary/write/*", /* nothing lies below a leaf */
    "net/a/drop",           /* net takes two nodes */
    "net/a/b/c/drop",
    "crash/primary/nowhere",
    "stake/predictor2",       /* the lie is the point, not the node */
    "stake/predictor2/truth", /* predictors only lie */
    "stake/a/b/lie",
    "posix/io/rw/read", /* not one of ours */
    "nope/*",
    "",
    "**",
    "/disk/primary/write",
    "disk/this-node-name-is-far-too-long-to-be-a-node/write",
};

START_TEST(unknown_names_are_rejected)
{
    ck_assert_msg(faults_lookup(rejected[_i]) == NULL, "%s matched", rejected[_i]);
}
END_TEST

START_TEST(overlong_names_are_rejected)
{
    char name[FAULTS_NAME_MAX + 8];
    memset(name, 'a', sizeof name);
    memcpy(name, "disk/", 5);
    name[sizeof name - 1] = '\0';
    ck_assert_ptr_null(faults_lookup(name));
    ck_assert_ptr_null(faults_lookup(NULL));
}
END_TEST

START_TEST(node_names_follow_the_component_rule)
{
    ck_assert(faults_is_node_name("primary"));
    ck_assert(faults_is_node_name("local_1-b"));
    ck_assert(faults_is_node_name("0"));
    ck_assert(!faults_is_node_name(""));
    ck_assert(!faults_is_node_name("a/b"));
    ck_assert(!faults_is_node_name("Primary"));
    ck_assert(!faults_is_node_name("a*"));
    ck_assert(!faults_is_node_name(NULL));
    char longest[FAULTS_NODE_MAX];
    memset(longest, 'n', sizeof longest - 1);
    longest[sizeof longest - 1] = '\0';
    ck_assert(faults_is_node_name(longest));
    char too_long[FAULTS_NODE_MAX + 1];
    memset(too_long, 'n', sizeof too_long - 1);
    too_long[sizeof too_long - 1] = '\0';
    ck_assert(!faults_is_node_name(too_long));
}
END_TEST

START_TEST(errno_names_and_numbers_parse)
{
    ck_assert_int_eq(faults_errno_parse("EIO"), EIO);
    ck_assert_int_eq(faults_errno_parse("ENOSPC"), ENOSPC);
    ck_assert_int_eq(faults_errno_parse("EDQUOT"), EDQUOT);
    ck_assert_int_eq(faults_errno_parse("EHOSTUNREACH"), EHOSTUNREACH);
    ck_assert_int_eq(faults_errno_parse("5"), 5);
    ck_assert_int_eq(faults_errno_parse("28"), 28);
    ck_assert_str_eq(faults_errno_name(EIO), "EIO");
    ck_assert_str_eq(faults_errno_name(ECONNREFUSED), "ECONNREFUSED");
    ck_assert_ptr_null(faults_errno_name(EINTR));
    static const char *const names[] = {
        "EIO",   "ENOSPC", "EDQUOT", "EROFS",     "EACCES",     "EPERM",        "ENOMEM",
        "EBADF", "EFBIG",  "ENOENT", "ETIMEDOUT", "ECONNRESET", "ECONNREFUSED", "EHOSTUNREACH"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        int value = faults_errno_parse(names[i]);
        ck_assert_int_gt(value, 0);
        ck_assert_str_eq(faults_errno_name(value), names[i]);
    }
}
END_TEST

static const char *const bad_errnos[] = {
    "EINTR", "EAGAIN", "EWOULDBLOCK", "4",  "11", /* SQLite retries these forever */
    "",      "EBOGUS", "eio",         "-5", "0",  "5x", " 5", "99999", "EIO ",
};

START_TEST(errnos_sqlite_would_retry_or_unknown_are_refused)
{
    ck_assert_msg(faults_errno_parse(bad_errnos[_i]) == -EINVAL, "'%s' accepted", bad_errnos[_i]);
    ck_assert_str_ne(faults_errmsg(), "");
}
END_TEST

START_TEST(refusing_eintr_says_why)
{
    ck_assert_int_eq(faults_errno_parse("EINTR"), -EINVAL);
    ck_assert_ptr_nonnull(strstr(faults_errmsg(), "retries"));
    ck_assert_ptr_null(faults_errno_name(EAGAIN));
}
END_TEST

START_TEST(family_names_are_the_printed_ones)
{
    ck_assert_str_eq(faults_family_name(FAULTS_FAMILY_DISK), "disk");
    ck_assert_str_eq(faults_family_name(FAULTS_FAMILY_NET), "net");
    ck_assert_str_eq(faults_family_name(FAULTS_FAMILY_CRASH), "crash");
    ck_assert_str_eq(faults_family_name(FAULTS_FAMILY_LIBC), "libc");
    ck_assert_str_eq(faults_family_name(FAULTS_FAMILY_STAKE), "stake");
}
END_TEST

static Suite *catalog_suite(void)
{
    Suite *suite = suite_create("catalog");
    TCase *tc = tcase_create("catalog");
    tcase_add_test(tc, every_pattern_matches_its_concrete_names);
    tcase_add_test(tc, every_contract_name_is_in_the_catalog);
    tcase_add_test(tc, wildcard_prefixes_match_what_they_could_produce);
    tcase_add_loop_test(tc, unknown_names_are_rejected, 0,
                        (int)(sizeof rejected / sizeof rejected[0]));
    tcase_add_test(tc, overlong_names_are_rejected);
    tcase_add_test(tc, node_names_follow_the_component_rule);
    tcase_add_test(tc, errno_names_and_numbers_parse);
    tcase_add_loop_test(tc, errnos_sqlite_would_retry_or_unknown_are_refused, 0,
                        (int)(sizeof bad_errnos / sizeof bad_errnos[0]));
    tcase_add_test(tc, refusing_eintr_says_why);
    tcase_add_test(tc, family_names_are_the_printed_ones);
    suite_add_tcase(suite, tc);
    return suite;
}

int main(void)
{
    return check_run(catalog_suite());
}
