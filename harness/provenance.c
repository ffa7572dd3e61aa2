#define _POSIX_C_SOURCE 200809L
#include "harness/ob_provenance.h"

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

void ob_hostname(char *out, size_t len) {
    if (gethostname(out, len) != 0) snprintf(out, len, "unknown");
    out[len - 1] = '\0';
}

void ob_cpu_model(char *out, size_t len) {
    snprintf(out, len, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0) continue;
        const char *value = strchr(line, ':');
        if (!value) break;
        value++;
        while (*value == ' ' || *value == '\t') value++;
        snprintf(out, len, "%s", value);
        out[strcspn(out, "\n")] = '\0';
        break;
    }
    fclose(f);
}

void ob_utc_now(char *out, size_t len) {
    time_t now = time(NULL);
    struct tm utc;
    gmtime_r(&now, &utc);
    strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &utc);
}

int64_t ob_peak_rss_bytes(void) {
    struct rusage usage;
    if (getrusage(RUSAGE_SELF, &usage) != 0) return -1;
    return (int64_t)usage.ru_maxrss * 1024; /* Linux reports kilobytes */
}
