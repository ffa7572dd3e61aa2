/* ob_fail: the harness's one-line error convention. */
#ifndef OB_FAIL_H
#define OB_FAIL_H

#include <stddef.h>

/* Formats one line into err (when err is not NULL and err_len > 0) and
 * returns 2, the exit code for bad input, so callers write
 * `return ob_fail(err, err_len, "what: expected ...", ...);`. */
int ob_fail(char *err, size_t err_len, const char *format, ...) __attribute__((format(printf, 3, 4)));

#endif
