/* ob_bert_corpus: plain text read as documents of sentences, the input of
 * BERT's pretraining data.
 *
 * Sources:
 * - a text file (gzip-compressed or not): a line holding only whitespace
 *   ends a document, so paragraphs separated by blank lines are documents;
 * - a dictd dictionary, NAME.dict.dz (dictzip, which gzip reads) or
 *   NAME.dict, with its NAME.index beside it: every entry is a document.
 *   The index lists headword, offset and length (dictd's base-64 digits)
 *   into the uncompressed text; entries are read in offset order, each
 *   once however many headwords point at it, and the dictionary's own
 *   entries (headwords starting with "00-" or "00database") are skipped.
 *   This is how Debian's dict-gcide (/usr/share/dictd/gcide.dict.dz) is
 *   read: one document per dictionary entry, 126,236 of them;
 * - a directory: its *.txt, *.txt.gz and *.dict.dz files in name order
 *   (not its subdirectories).
 * Inside a document, lines are joined and whitespace runs become one
 * space; a sentence ends at '.', '!' or '?' followed by whitespace.
 */
#ifndef OB_BERT_CORPUS_H
#define OB_BERT_CORPUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "workloads/bert/ob_ranges.h"

typedef struct {
    char *text; /* every sentence, each NUL-terminated */
    size_t text_used;
    int64_t text_capacity;
    ob_ranges sentences; /* byte ranges of text, NUL included */
    ob_ranges docs;      /* ranges of sentences */
    int64_t max_docs;    /* reading stops after this many documents; 0 = no limit */
} ob_bert_corpus;

/* Adds the documents of a file or directory. Returns 0; 2 with one line
 * naming the path when it is missing, unreadable, corrupt or a directory
 * without text files; 1 when out of memory. */
int ob_bert_corpus_add(ob_bert_corpus *corpus, const char *path, char *err, size_t err_len);
const char *ob_bert_corpus_sentence(const ob_bert_corpus *corpus, int64_t s);
void ob_bert_corpus_free(ob_bert_corpus *corpus);

#endif
