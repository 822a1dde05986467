/*
 * fuzz_drill.c — libFuzzer target for the drill parser (sim/drill.c): any
 * bytes are either a drill or a list of file:line:col errors, never a crash,
 * a leak or undefined behaviour. The oracle beyond the sanitizers: a refused
 * text has at least one error, each at a line and column inside the text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/drill.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* allocated once (400 KB): the parser resets both */
    static struct drill *d;
    static struct drill_errors *errs;
    if (d == NULL && ((d = calloc(1, sizeof(*d))) == NULL || (errs = calloc(1, sizeof(*errs))) == NULL))
        abort();
    int rc = drill_parse_text("fuzz.drill", (const char *)data, size, d, errs);
    if (rc != 0 && errs->count == 0) {
        fprintf(stderr, "fuzz_drill: refused (%d) with no error\n", rc);
        abort();
    }
    size_t lines = 1;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    for (size_t i = 0; rc != 0 && i < errs->count && i < DRILL_ERRORS_MAX; i++) {
        if (errs->e[i].line < 0 || (size_t)errs->e[i].line > lines + 1) {
            fprintf(stderr, "fuzz_drill: an error at line %d of %zu\n", (int)errs->e[i].line,
                    lines);
            abort();
        }
    }
    return 0;
}
