/* ob_string_table: interned byte strings with dense ids 0, 1, 2, ... in
 * the order they were first added. The WordPiece vocabulary (token <->
 * id) and the trainer's table of distinct words are both one of these.
 *
 * Strings are stored back to back, NUL-terminated, in one buffer; an open
 * addressing hash (linear probing, at most half full) maps bytes to ids.
 */
#ifndef OB_STRING_TABLE_H
#define OB_STRING_TABLE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int64_t offset; /* into bytes */
    uint32_t length;
} ob_string_entry;

typedef struct {
    char *bytes; /* every string, each followed by a NUL */
    int64_t bytes_used, bytes_capacity;
    ob_string_entry *entries; /* by id */
    int32_t count;
    int64_t capacity;
    int32_t *slots; /* id, or -1 for an empty slot; n_slots is a power of two */
    size_t n_slots;
} ob_string_table;

/* An empty table; nothing is allocated until the first add. */
#define OB_STRING_TABLE_EMPTY                                                                                          \
    { 0 }

/* The id of the string (added when new), or -1 when out of memory.
 * Strings are byte sequences and may not contain NUL. */
int32_t ob_string_table_add(ob_string_table *table, const char *bytes, size_t length);
/* The id of the string, or -1 when it is not in the table. */
int32_t ob_string_table_find(const ob_string_table *table, const char *bytes, size_t length);
const char *ob_string_table_at(const ob_string_table *table, int32_t id);
size_t ob_string_table_length(const ob_string_table *table, int32_t id);
void ob_string_table_free(ob_string_table *table);

#endif
