/* What a run records about where and when it ran. */
#ifndef OB_PROVENANCE_H
#define OB_PROVENANCE_H

#include <stddef.h>
#include <stdint.h>

void ob_hostname(char *out, size_t len);
/* "model name" from /proc/cpuinfo, or "unknown". */
void ob_cpu_model(char *out, size_t len);
/* ISO 8601 UTC, e.g. 2026-11-23T17:30:00Z. */
void ob_utc_now(char *out, size_t len);
/* Peak resident set size of this process in bytes (getrusage). */
int64_t ob_peak_rss_bytes(void);

#endif
