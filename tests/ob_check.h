/* Counting assertions shared by the C tests: each failed check prints where
 * and what, and report_checks() prints the "N passed, M failed" line every
 * test ends with and gives the exit status. */
#ifndef OB_CHECK_H
#define OB_CHECK_H

#include <stdbool.h>
#include <stdio.h>

static int checks_passed, checks_failed;

/* A named check: `what` says what failed. */
static inline void check(bool ok, const char *what) {
    if (ok) {
        checks_passed++;
    } else {
        checks_failed++;
        printf("FAIL: %s\n", what);
    }
}

/* An expression check: the failure names the file, line and expression. */
#define CHECK(cond)                                                            \
    do {                                                                       \
        if (cond) {                                                            \
            checks_passed++;                                                   \
        } else {                                                               \
            checks_failed++;                                                   \
            fprintf(stderr, "%s:%d: FAILED: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                      \
    } while (0)

static inline int report_checks(void) {
    printf("%d passed, %d failed\n", checks_passed, checks_failed);
    return checks_failed != 0;
}

#endif
