#define _POSIX_C_SOURCE 200809L /* strdup */

#include "workloads/data/ob_image_list.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define MAX_PATH_LEN 4096

/* A growing array of owned strings. */
typedef struct {
    char **items;
    int64_t count, capacity;
} name_array;

static void name_array_free(name_array *names) {
    for (int64_t i = 0; i < names->count; i++) free(names->items[i]);
    free(names->items);
    *names = (name_array){0};
}

static bool name_array_push(name_array *names, const char *name) {
    if (names->count == names->capacity) {
        int64_t capacity = names->capacity ? 2 * names->capacity : 64;
        char **grown = realloc(names->items, (size_t)capacity * sizeof *grown);
        if (!grown) return false;
        names->items = grown;
        names->capacity = capacity;
    }
    char *copy = strdup(name);
    if (!copy) return false;
    names->items[names->count++] = copy;
    return true;
}

static int compare_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_jpeg_name(const char *name) {
    const char *dot = strrchr(name, '.');
    return dot && (strcasecmp(dot, ".jpeg") == 0 || strcasecmp(dot, ".jpg") == 0);
}

static bool is_folder(const char *dir, const char *name) {
    char path[MAX_PATH_LEN];
    struct stat info;
    int len = snprintf(path, sizeof path, "%s/%s", dir, name);
    return len > 0 && len < (int)sizeof path && stat(path, &info) == 0 && S_ISDIR(info.st_mode);
}

/* The entries of dir that are folders (want_folders) or JPEG names, sorted.
 * Hidden entries are skipped. */
static int list_sorted(const char *dir, bool want_folders, name_array *out, char *err, size_t err_len) {
    *out = (name_array){0};
    DIR *listing = opendir(dir);
    if (!listing) {
        snprintf(err, err_len, "%s: cannot read the folder: expected %s", dir,
                 want_folders
                     ? "a folder of class folders <wnid>/NAME.JPEG (ImageNet layout: DIR/train/ and DIR/val/)"
                     : "a class folder of .JPEG images");
        return 2;
    }
    bool ok = true;
    for (struct dirent *entry; ok && (entry = readdir(listing));) {
        const char *name = entry->d_name;
        if (name[0] == '.') continue;
        bool wanted = want_folders ? is_folder(dir, name) : is_jpeg_name(name);
        if (wanted) ok = name_array_push(out, name);
    }
    closedir(listing);
    if (!ok) {
        name_array_free(out);
        snprintf(err, err_len, "%s: out of memory listing the folder", dir);
        return 2;
    }
    if (out->count) qsort(out->items, (size_t)out->count, sizeof *out->items, compare_names);
    return 0;
}

int ob_class_list_scan(const char *dir, ob_class_list *out, char *err, size_t err_len) {
    *out = (ob_class_list){0};
    name_array names;
    int status = list_sorted(dir, true, &names, err, err_len);
    if (status) return status;
    if (names.count == 0 || names.count > INT32_MAX) {
        snprintf(err, err_len,
                 "%s: %" PRId64
                 " class folders: expected 1 or more (ImageNet layout "
                 "DIR/train/<wnid>/NAME.JPEG)",
                 dir, names.count);
        name_array_free(&names);
        return 2;
    }
    out->names = names.items;
    out->count = (int)names.count;
    return 0;
}

void ob_class_list_free(ob_class_list *list) {
    name_array names = {list->names, list->count, list->count};
    name_array_free(&names);
    *list = (ob_class_list){0};
}

static bool reserve_bytes(void **buffer, size_t *capacity, size_t needed) {
    if (needed <= *capacity) return true;
    size_t grown_capacity = *capacity ? *capacity : 4096;
    while (grown_capacity < needed) grown_capacity *= 2;
    void *grown = realloc(*buffer, grown_capacity);
    if (!grown) return false;
    *buffer = grown;
    *capacity = grown_capacity;
    return true;
}

/* Growth state of an ob_image_list while it is being filled. */
typedef struct {
    size_t text_used, text_capacity, index_capacity, label_capacity;
} list_builder;

static bool list_append(ob_image_list *list, list_builder *b, const char *class_name, const char *file,
                        int32_t label) {
    size_t len = strlen(class_name) + 1 + strlen(file) + 1;
    int64_t n = list->count + 1;
    bool ok = reserve_bytes((void **)&list->text, &b->text_capacity, b->text_used + len) &&
              reserve_bytes((void **)&list->text_at, &b->index_capacity, (size_t)n * sizeof *list->text_at) &&
              reserve_bytes((void **)&list->label, &b->label_capacity, (size_t)n * sizeof *list->label);
    if (!ok) return false;
    snprintf(list->text + b->text_used, len, "%s/%s", class_name, file);
    list->text_at[list->count] = (int64_t)b->text_used;
    list->label[list->count] = label;
    b->text_used += len;
    list->count = n;
    list->bytes = b->text_capacity + b->index_capacity + b->label_capacity;
    return true;
}

static int class_index(const ob_class_list *classes, const char *name) {
    char *const *found =
        bsearch(&name, classes->names, (size_t)classes->count, sizeof *classes->names, compare_names);
    return found ? (int)(found - classes->names) : -1;
}

/* Appends split_dir/class_name's images, stopping at `limit` in all (0 = none). */
static int append_class(const char *split_dir, const char *class_name, int32_t label, int64_t limit,
                        ob_image_list *list, list_builder *b, char *err, size_t err_len) {
    char dir[MAX_PATH_LEN];
    int len = snprintf(dir, sizeof dir, "%s/%s", split_dir, class_name);
    if (len < 0 || len >= (int)sizeof dir) {
        snprintf(err, err_len, "%s/%s: path too long: expected under %d characters", split_dir, class_name,
                 MAX_PATH_LEN);
        return 2;
    }
    name_array files;
    int status = list_sorted(dir, false, &files, err, err_len);
    if (status) return status;
    if (files.count == 0) {
        snprintf(err, err_len, "%s: no images: expected .JPEG files (.jpeg, .jpg) in every class folder",
                 dir);
        status = 2;
    }
    for (int64_t i = 0; !status && i < files.count && !(limit && list->count >= limit); i++) {
        if (!list_append(list, b, class_name, files.items[i], label)) {
            snprintf(err, err_len, "%s: out of memory listing the images", dir);
            status = 2;
        }
    }
    name_array_free(&files);
    return status;
}

int ob_image_list_scan(const char *split_dir, const ob_class_list *classes, int64_t limit, ob_image_list *out,
                       char *err, size_t err_len) {
    *out = (ob_image_list){0};
    name_array folders;
    int status = list_sorted(split_dir, true, &folders, err, err_len);
    if (!status && folders.count == 0) {
        snprintf(err, err_len, "%s: no class folders: expected <wnid>/NAME.JPEG inside", split_dir);
        status = 2;
    }
    list_builder builder = {0};
    for (int64_t i = 0; !status && i < folders.count && !(limit && out->count >= limit); i++) {
        int label = class_index(classes, folders.items[i]);
        if (label < 0) {
            snprintf(err, err_len,
                     "%s/%s: not a class of the training set: expected the class folders of "
                     "train/ only",
                     split_dir, folders.items[i]);
            status = 2;
        } else {
            status = append_class(split_dir, folders.items[i], label, limit, out, &builder, err, err_len);
        }
    }
    name_array_free(&folders);
    if (status) ob_image_list_free(out);
    return status;
}

void ob_image_list_free(ob_image_list *list) {
    free(list->text);
    free(list->text_at);
    free(list->label);
    *list = (ob_image_list){0};
}
