/* Directories a suite writes into. */
#define _POSIX_C_SOURCE 200809L /* mkdir */

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "harness/ob_suite.h"

int ob_suite_make_dirs(const char *path, bool parent_only, char *err, size_t err_len) {
    char dir[OB_SUITE_PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir) {
        snprintf(err, err_len, "%s: path too long", path);
        return 2;
    }
    if (parent_only) {
        char *slash = strrchr(dir, '/');
        if (!slash) return 0;
        *slash = '\0';
    }
    if (dir[0] == '\0') return 0;
    /* Each prefix ending before a '/', then the whole: mkdir -p. */
    for (char *p = dir + 1;; p++) {
        bool at_end = *p == '\0';
        if (*p != '/' && !at_end) continue;
        *p = '\0';
        if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
            snprintf(err, err_len, "cannot create directory %s: %s", dir, strerror(errno));
            return 2;
        }
        if (at_end) return 0;
        *p = '/';
    }
}
