#include "workloads/bert/ob_grow.h"

#include <stdlib.h>
#include <string.h>

#define FIRST_CAPACITY 16

int ob_grow(void *items, int64_t *capacity, int64_t needed, size_t item_size) {
    if (needed <= *capacity) return 0;
    int64_t grown = *capacity > 0 ? *capacity : FIRST_CAPACITY;
    while (grown < needed) grown *= 2;
    void *array;
    memcpy(&array, items, sizeof array);
    void *bigger = realloc(array, (size_t)grown * item_size);
    if (!bigger) return 1;
    memcpy(items, &bigger, sizeof bigger);
    *capacity = grown;
    return 0;
}
