#include "harness/ob_checkpoint.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* The last byte is the format version: 2 added the /precision row count,
 * 3 the world size and per-rank tensors. */
#define FORMAT_VERSION 3
static const char magic[8] = {'O', 'B', 'C', 'K', 'P', 'T', 0, FORMAT_VERSION};
#define RANK_PREFIX "rank"

void ob_checkpoint_rank_name(char *out, size_t out_len, int rank, const char *name) {
    snprintf(out, out_len, RANK_PREFIX "%d/%s", rank, name);
}

/* True when name was stored for a rank other than `rank`. */
static bool other_ranks_tensor(const char *name, int rank) {
    int stored_rank, length = 0;
    if (sscanf(name, RANK_PREFIX "%d/%n", &stored_rank, &length) != 1 || length == 0) return false;
    return stored_rank != rank;
}

/* ---- writing: an in-memory buffer, then one write + rename ---- */

typedef struct {
    unsigned char *data;
    size_t length, capacity;
    bool failed;
} buffer;

static void put(buffer *b, const void *bytes, size_t n) {
    if (b->failed) return;
    if (b->length + n > b->capacity) {
        size_t capacity = b->capacity ? b->capacity : 1 << 16;
        while (capacity < b->length + n) capacity *= 2;
        unsigned char *grown = realloc(b->data, capacity);
        if (!grown) {
            b->failed = true;
            return;
        }
        b->data = grown;
        b->capacity = capacity;
    }
    memcpy(b->data + b->length, bytes, n);
    b->length += n;
}

static void put_u64(buffer *b, uint64_t v) { put(b, &v, sizeof v); }

static void put_string(buffer *b, const char *s) {
    uint64_t n = strlen(s);
    put_u64(b, n);
    put(b, s, n);
}

static int write_file(const char *path, const buffer *b, char *err, size_t err_len) {
    char temp[4096];
    snprintf(temp, sizeof temp, "%s.tmp", path);
    FILE *f = fopen(temp, "wb");
    if (!f) {
        snprintf(err, err_len, "checkpoint %s: cannot create: %s", temp, strerror(errno));
        return 2;
    }
    bool ok = fwrite(b->data, 1, b->length, f) == b->length;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(temp, path) != 0) {
        snprintf(err, err_len, "checkpoint %s: write failed: %s", path, strerror(errno));
        remove(temp);
        return 2;
    }
    return 0;
}

int ob_checkpoint_save(const char *path, const char *config_ini, const ob_checkpoint_state *state,
                       const ob_checkpoint_tensor *tensors, int n_tensors, char *err, size_t err_len) {
    buffer b = {0};
    put(&b, magic, sizeof magic);
    put_string(&b, config_ini);
    put(&b, state, sizeof *state);
    put_u64(&b, (uint64_t)n_tensors);
    for (int i = 0; i < n_tensors; i++) {
        const ob_tensor *t = tensors[i].tensor;
        put_string(&b, tensors[i].name);
        put_u64(&b, (uint64_t)t->dtype);
        put_u64(&b, (uint64_t)t->numel);
        put(&b, t->data, ob_tensor_bytes(t));
    }
    uint32_t crc = (uint32_t)crc32(0L, b.data, (uInt)b.length);
    put(&b, &crc, sizeof crc);
    int rc = 0;
    if (b.failed) {
        snprintf(err, err_len, "checkpoint %s: out of memory", path);
        rc = 1;
    } else {
        rc = write_file(path, &b, err, err_len);
    }
    free(b.data);
    return rc;
}

/* ---- reading: whole file, CRC first, then a bounds-checked cursor ---- */

typedef struct {
    const unsigned char *data;
    size_t length, offset;
    bool overrun;
} cursor;

static const void *take(cursor *c, size_t n) {
    if (c->overrun || n > c->length - c->offset) {
        c->overrun = true;
        return NULL;
    }
    const void *p = c->data + c->offset;
    c->offset += n;
    return p;
}

static uint64_t take_u64(cursor *c) {
    const void *p = take(c, sizeof(uint64_t));
    uint64_t v = 0;
    if (p) memcpy(&v, p, sizeof v);
    return v;
}

static int read_verified(const char *path, unsigned char **data, size_t *length, char *err, size_t err_len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, err_len, "checkpoint %s: cannot open: %s", path, strerror(errno));
        return 2;
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    *data = size > 0 ? malloc((size_t)size) : NULL;
    bool ok = *data && fread(*data, 1, (size_t)size, f) == (size_t)size;
    fclose(f);
    uint32_t stored_crc = 0;
    if (ok && size >= (long)(sizeof magic + sizeof stored_crc)) {
        *length = (size_t)size - sizeof stored_crc;
        memcpy(&stored_crc, *data + *length, sizeof stored_crc);
        ok = memcmp(*data, magic, sizeof magic) == 0 && crc32(0L, *data, (uInt)*length) == stored_crc;
    } else {
        ok = false;
    }
    if (!ok && size >= (long)sizeof magic && memcmp(*data, magic, sizeof magic - 1) == 0) {
        snprintf(err, err_len, "checkpoint %s: format version %d; this optbench reads version %d", path,
                 (*data)[sizeof magic - 1], FORMAT_VERSION);
        free(*data);
        *data = NULL;
        return 2;
    }
    if (!ok) {
        snprintf(err, err_len, "checkpoint %s: not an optbench checkpoint, or corrupt (bad magic or CRC)", path);
        free(*data);
        *data = NULL;
        return 2;
    }
    return 0;
}

static char *take_string(cursor *c) {
    uint64_t n = take_u64(c);
    const char *bytes = take(c, n);
    char *s = bytes ? malloc(n + 1) : NULL;
    if (s) {
        memcpy(s, bytes, n);
        s[n] = '\0';
    }
    return s;
}

int ob_checkpoint_read_config(const char *path, char **config_ini, char *err, size_t err_len) {
    unsigned char *data;
    size_t length;
    int rc = read_verified(path, &data, &length, err, err_len);
    if (rc) return rc;
    cursor c = {data, length, sizeof magic, false};
    *config_ini = take_string(&c);
    free(data);
    if (!*config_ini) {
        snprintf(err, err_len, "checkpoint %s: truncated config", path);
        return 2;
    }
    return 0;
}

static const ob_checkpoint_tensor *find_tensor(const ob_checkpoint_tensor *tensors, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (strcmp(tensors[i].name, name) == 0) return &tensors[i];
    return NULL;
}

/* How stored tensors meet the listed ones: a resume restores exactly the
 * run's state (every stored tensor of this rank must be listed); weights
 * take what is listed from any run, per-rank tensors from rank 0's copy. */
typedef enum { RESTORE_STATE, RESTORE_WEIGHTS } restore_mode;

/* The name a stored tensor is listed under, or NULL to skip it. */
static const char *listed_name(const char *name, int rank, restore_mode mode) {
    if (mode == RESTORE_STATE) return other_ranks_tensor(name, rank) ? NULL : name;
    int stored_rank, length = 0;
    if (sscanf(name, RANK_PREFIX "%d/%n", &stored_rank, &length) != 1 || length == 0) return name;
    return stored_rank == 0 ? name + length : NULL;
}

/* Copies stored tensors into their listed namesakes; every listed one must be found. */
static int restore_tensors(cursor *c, int rank, restore_mode mode, const ob_checkpoint_tensor *tensors,
                           int n_tensors, const char *path, char *err, size_t err_len) {
    uint64_t stored = take_u64(c);
    int matched = 0;
    for (uint64_t i = 0; i < stored && !c->overrun; i++) {
        char *name = take_string(c);
        uint64_t dtype = take_u64(c), numel = take_u64(c);
        const char *as = name ? listed_name(name, rank, mode) : NULL;
        const ob_checkpoint_tensor *target = as ? find_tensor(tensors, n_tensors, as) : NULL;
        if (name && dtype < OB_DTYPE_COUNT && (!as || (!target && mode == RESTORE_WEIGHTS))) {
            take(c, numel * ob_dtype_size((ob_dtype)dtype));
            free(name);
            continue;
        }
        bool fits = target && (uint64_t)target->tensor->dtype == dtype &&
                    (uint64_t)target->tensor->numel == numel;
        const void *bytes = fits ? take(c, ob_tensor_bytes(target->tensor)) : NULL;
        if (!bytes) {
            snprintf(err, err_len, "checkpoint %s: tensor %s does not match this run's model", path,
                     name ? name : "?");
            free(name);
            return 2;
        }
        memcpy(target->tensor->data, bytes, ob_tensor_bytes(target->tensor));
        matched++;
        free(name);
    }
    if (matched != n_tensors) {
        snprintf(err, err_len, "checkpoint %s: holds %d of this run's %d %s", path, matched, n_tensors,
                 mode == RESTORE_STATE ? "tensors" : "weights");
        return 2;
    }
    return 0;
}

/* Reads the state after the config; leaves c at the first tensor.
 * world_size 0: a run of any size wrote it. */
static int take_state(cursor *c, int world_size, ob_checkpoint_state *state, const char *path, char *err,
                      size_t err_len) {
    free(take_string(c));
    const void *stored_state = take(c, sizeof *state);
    if (!stored_state) {
        snprintf(err, err_len, "checkpoint %s: truncated", path);
        return 2;
    }
    memcpy(state, stored_state, sizeof *state);
    if (world_size > 0 && state->world_size != world_size) {
        snprintf(err, err_len, "checkpoint %s: written by a run of %d rank(s); resume it with as many, not %d",
                 path, state->world_size, world_size);
        return 2;
    }
    return 0;
}

/* The verified file in *data (the caller frees it) with c at its first
 * tensor and its state in *state. */
static int open_checkpoint(const char *path, int world_size, ob_checkpoint_state *state, unsigned char **data,
                           cursor *c, char *err, size_t err_len) {
    size_t length;
    int rc = read_verified(path, data, &length, err, err_len);
    if (rc) return rc;
    *c = (cursor){*data, length, sizeof magic, false};
    rc = take_state(c, world_size, state, path, err, err_len);
    if (rc) {
        free(*data);
        *data = NULL;
    }
    return rc;
}

int ob_checkpoint_check_world(const char *path, int world_size, char *err, size_t err_len) {
    unsigned char *data;
    cursor c;
    ob_checkpoint_state state;
    int rc = open_checkpoint(path, world_size, &state, &data, &c, err, err_len);
    if (!rc) free(data);
    return rc;
}

int ob_checkpoint_load(const char *path, int rank, int world_size, ob_checkpoint_state *state,
                       const ob_checkpoint_tensor *tensors, int n_tensors, char *err, size_t err_len) {
    unsigned char *data;
    cursor c;
    int rc = open_checkpoint(path, world_size, state, &data, &c, err, err_len);
    if (rc) return rc;
    rc = restore_tensors(&c, rank, RESTORE_STATE, tensors, n_tensors, path, err, err_len);
    free(data);
    return rc;
}

int ob_checkpoint_load_weights(const char *path, const ob_checkpoint_tensor *tensors, int n_tensors, char *err,
                               size_t err_len) {
    unsigned char *data;
    cursor c;
    ob_checkpoint_state state;
    int rc = open_checkpoint(path, 0, &state, &data, &c, err, err_len);
    if (rc) return rc;
    rc = restore_tensors(&c, 0, RESTORE_WEIGHTS, tensors, n_tensors, path, err, err_len);
    free(data);
    return rc;
}
