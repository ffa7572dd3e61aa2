#include "harness/ob_fail.h"

#include <stdarg.h>
#include <stdio.h>

int ob_fail(char *err, size_t err_len, const char *format, ...) {
    if (err && err_len > 0) {
        va_list args;
        va_start(args, format);
        vsnprintf(err, err_len, format, args);
        va_end(args);
    }
    return 2;
}
