/* ob_grow: the growable arrays of workloads/bert (strings, token ids,
 * ranges, pairs, examples) all grow the same way. */
#ifndef OB_GROW_H
#define OB_GROW_H

#include <stddef.h>
#include <stdint.h>

/* Makes the array at *items (a pointer to the array's pointer) hold at
 * least `needed` items of item_size bytes, doubling its capacity; 0, or 1
 * when out of memory (the array is then unchanged). */
int ob_grow(void *items, int64_t *capacity, int64_t needed, size_t item_size);

#endif
