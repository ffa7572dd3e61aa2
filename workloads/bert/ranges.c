#include "workloads/bert/ob_ranges.h"

#include <stdlib.h>

#include "workloads/bert/ob_grow.h"

int ob_ranges_close(ob_ranges *ranges, int64_t end) {
    if (ob_grow(&ranges->end, &ranges->capacity, ranges->count + 1, sizeof *ranges->end)) return 1;
    ranges->end[ranges->count++] = end;
    return 0;
}

void ob_ranges_free(ob_ranges *ranges) {
    free(ranges->end);
    *ranges = (ob_ranges){0};
}
