/* ob_ranges: consecutive ranges [0, end[0]), [end[0], end[1]), ... of some
 * array: the sentences of a text, the documents of a list of sentences. */
#ifndef OB_RANGES_H
#define OB_RANGES_H

#include <stdint.h>

typedef struct {
    int64_t *end;
    int64_t count, capacity;
} ob_ranges;

static inline int64_t ob_ranges_begin(const ob_ranges *ranges, int64_t i) { return i > 0 ? ranges->end[i - 1] : 0; }
static inline int64_t ob_ranges_end(const ob_ranges *ranges, int64_t i) { return ranges->end[i]; }
/* Where the next range would begin. */
static inline int64_t ob_ranges_next(const ob_ranges *ranges) { return ob_ranges_begin(ranges, ranges->count); }

/* Appends the range [ob_ranges_next(ranges), end); 0, or 1 when out of memory. */
int ob_ranges_close(ob_ranges *ranges, int64_t end);
void ob_ranges_free(ob_ranges *ranges);

#endif
