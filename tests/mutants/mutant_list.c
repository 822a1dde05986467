/*
 * mutant_list.c — prints the planted bugs of platform/mutants.h, one per
 * line as "name<TAB>what it breaks", for tests/mutants/run.sh.
 */
#include <stdio.h>

#include "platform/mutants.h"

int main(void)
{
    for (int m = MUTANT_NONE + 1; m < MUTANT_COUNT; m++)
        printf("%s\t%s\n", mutant_name((enum mutant)m), mutant_about((enum mutant)m));
    return 0;
}
