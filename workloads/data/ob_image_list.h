/* ob_image_list: the files of an ImageNet-style folder split,
 * SPLIT_DIR/<class>/<file>.JPEG, in a fixed order: classes by name, files
 * by name within a class (byte order, strcmp), so every machine lists the
 * same dataset. Only names are held (a class-relative path per image and
 * its label), never pixels. */
#ifndef OB_IMAGE_LIST_H
#define OB_IMAGE_LIST_H

#include <stddef.h>
#include <stdint.h>

/* Sorted names; an ob_image_list's labels index into it. */
typedef struct {
    char **names;
    int count;
} ob_class_list;

typedef struct {
    char *text;       /* "<class>/<file>\0" after one another */
    int64_t *text_at; /* where image i's path starts in text */
    int32_t *label;   /* image i's class index */
    int64_t count;
    size_t bytes; /* held by text, text_at and label */
} ob_image_list;

/* The subfolders of dir (hidden ones skipped), sorted. Returns 0, or 2
 * with one line in err naming dir when it is not a readable folder or has
 * no subfolders. */
int ob_class_list_scan(const char *dir, ob_class_list *out, char *err, size_t err_len);
void ob_class_list_free(ob_class_list *list);

/* Lists split_dir/<class>/ *.JPEG (also .jpeg and .jpg in any case) for
 * every subfolder of split_dir, which must each be one of `classes`; the
 * first `limit` images (0 = all) are kept. Returns 0, or 2 with one line in
 * err naming the path: an unknown class folder, or one without images. */
int ob_image_list_scan(const char *split_dir, const ob_class_list *classes, int64_t limit, ob_image_list *out,
                       char *err, size_t err_len);
void ob_image_list_free(ob_image_list *list);

static inline const char *ob_image_list_path(const ob_image_list *list, int64_t i) {
    return list->text + list->text_at[i];
}

#endif
