/* Internal to optimizers/precision/: the position of a name in a table of
 * names, shared by the formats', quantizers' and policies' parse functions. */
#ifndef OB_NAME_TABLE_H
#define OB_NAME_TABLE_H

#include <string.h>

/* Index of `name` in names[0..count), or -1 (also for NULL). */
static inline int ob_name_table_find(const char *const *names, int count, const char *name) {
    for (int i = 0; name && i < count; i++)
        if (strcmp(name, names[i]) == 0) return i;
    return -1;
}

#endif
