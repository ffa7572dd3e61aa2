#include "workloads/bert/ob_string_table.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "workloads/bert/ob_grow.h"

#define FIRST_SLOTS 64

/* FNV-1a: short keys, no alignment needs, good enough spread for probing. */
static uint64_t hash_bytes(const char *bytes, size_t length) {
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < length; i++) {
        h ^= (unsigned char)bytes[i];
        h *= 1099511628211ull;
    }
    return h;
}

static bool holds(const ob_string_table *table, int32_t id, const char *bytes, size_t length) {
    const ob_string_entry *entry = &table->entries[id];
    return entry->length == length && memcmp(table->bytes + entry->offset, bytes, length) == 0;
}

/* The slot holding the string, or the empty slot where it belongs. */
static size_t slot_of(const ob_string_table *table, const char *bytes, size_t length) {
    size_t mask = table->n_slots - 1;
    size_t slot = (size_t)hash_bytes(bytes, length) & mask;
    while (table->slots[slot] >= 0 && !holds(table, table->slots[slot], bytes, length)) slot = (slot + 1) & mask;
    return slot;
}

static int grow_slots(ob_string_table *table) {
    size_t n_slots = table->n_slots ? table->n_slots * 2 : FIRST_SLOTS;
    int32_t *slots = malloc(n_slots * sizeof *slots);
    if (!slots) return -1;
    memset(slots, 0xff, n_slots * sizeof *slots); /* all -1 */
    free(table->slots);
    table->slots = slots;
    table->n_slots = n_slots;
    for (int32_t id = 0; id < table->count; id++)
        slots[slot_of(table, table->bytes + table->entries[id].offset, table->entries[id].length)] = id;
    return 0;
}

int32_t ob_string_table_add(ob_string_table *table, const char *bytes, size_t length) {
    if (length > UINT32_MAX || table->count == INT32_MAX) return -1;
    if ((size_t)table->count * 2 >= table->n_slots && grow_slots(table) != 0) return -1;
    size_t slot = slot_of(table, bytes, length);
    if (table->slots[slot] >= 0) return table->slots[slot];
    int64_t end = table->bytes_used + (int64_t)length + 1;
    if (ob_grow(&table->bytes, &table->bytes_capacity, end, 1) ||
        ob_grow(&table->entries, &table->capacity, table->count + 1, sizeof *table->entries))
        return -1;
    int32_t id = table->count++;
    table->entries[id] = (ob_string_entry){table->bytes_used, (uint32_t)length};
    memcpy(table->bytes + table->bytes_used, bytes, length);
    table->bytes[end - 1] = '\0';
    table->bytes_used = end;
    table->slots[slot] = id;
    return id;
}

int32_t ob_string_table_find(const ob_string_table *table, const char *bytes, size_t length) {
    if (table->n_slots == 0) return -1;
    return table->slots[slot_of(table, bytes, length)];
}

const char *ob_string_table_at(const ob_string_table *table, int32_t id) {
    return table->bytes + table->entries[id].offset;
}

size_t ob_string_table_length(const ob_string_table *table, int32_t id) { return table->entries[id].length; }

void ob_string_table_free(ob_string_table *table) {
    free(table->bytes);
    free(table->entries);
    free(table->slots);
    *table = (ob_string_table)OB_STRING_TABLE_EMPTY;
}
