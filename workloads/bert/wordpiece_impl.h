/* Internal to workloads/bert: what the trainer (wordpiece_train.c) needs to
 * hand its tokens to a vocabulary (wordpiece.c). */
#ifndef OB_WORDPIECE_IMPL_H
#define OB_WORDPIECE_IMPL_H

#include "workloads/bert/ob_string_table.h"
#include "workloads/bert/ob_wordpiece.h"

/* In the order of their ids in a trained vocabulary. */
#define OB_WORDPIECE_SPECIAL_NAMES                                                                                     \
    { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]" }

/* A vocabulary owning tokens (emptied in the caller's table). Returns 0,
 * 1 when out of memory, or 2 when a special token is missing, naming
 * `source` (a file, or "trained vocabulary"). */
int ob_wordpiece_adopt(ob_string_table *tokens, const char *source, ob_wordpiece **out, char *err, size_t err_len);

#endif
