/*
 * check_run.h — the main() every Check test program shares: run the suite
 * as CK_ENV says (CK_FORK, CK_VERBOSITY), exit non-zero on any failure.
 * Tests only.
 */
#ifndef FAULTDRILL_CHECK_RUN_H
#define FAULTDRILL_CHECK_RUN_H

#include <check.h>
#include <stdlib.h>

static inline int check_run(Suite *suite)
{
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_ENV);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
