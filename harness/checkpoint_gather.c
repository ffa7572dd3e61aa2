#include "harness/ob_checkpoint_gather.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Payloads travel as 32-bit words (the communicator's I32), so a tensor of
 * any dtype, and a name, is rounded up to whole words. */
static int64_t words_for(size_t bytes) { return (int64_t)((bytes + 3) / 4); }

static int broadcast_bytes(ob_comm *comm, void *buffer, size_t bytes, int root, char *err, size_t err_len) {
    if (ob_comm_broadcast(comm, buffer, words_for(bytes), OB_I32, root, OB_COMM_CONTROL) == 0) return 0;
    snprintf(err, err_len, "checkpoint: collecting the ranks' tensors failed: %s", ob_comm_error(comm));
    return 1;
}

/* What travels ahead of a tensor: enough to allocate and name it. */
typedef struct {
    int32_t name_bytes, dtype;
    int64_t numel;
} tensor_header;

static int keep(ob_checkpoint_gathered *out, char *name, const tensor_header *header, void *data) {
    ob_tensor *t = calloc(1, sizeof *t);
    ob_checkpoint_tensor *grown = realloc(out->items, (size_t)(out->count + 1) * sizeof *grown);
    if (!t || !grown) {
        free(t);
        return 1;
    }
    out->items = grown;
    *t = (ob_tensor){.dtype = (ob_dtype)header->dtype, .device = OB_CPU, .category = OB_MEM_WORKSPACE,
                     .ndim = 1, .shape = {header->numel}, .numel = header->numel, .data = data};
    out->items[out->count++] = (ob_checkpoint_tensor){.name = name, .tensor = t};
    return 0;
}

/* One tensor from `sender` (which passes it as `mine`); rank 0 keeps it. */
static int relay_tensor(ob_comm *comm, int sender, const ob_checkpoint_tensor *mine, ob_checkpoint_gathered *out,
                        char *err, size_t err_len) {
    bool sending = ob_comm_rank(comm) == sender;
    tensor_header header = {0};
    if (sending)
        header = (tensor_header){.name_bytes = (int32_t)strlen(mine->name) + 1, .dtype = (int32_t)mine->tensor->dtype,
                                 .numel = mine->tensor->numel};
    if (broadcast_bytes(comm, &header, sizeof header, sender, err, err_len)) return 1;
    size_t data_bytes = (size_t)header.numel * ob_dtype_size((ob_dtype)header.dtype);
    char *name = calloc((size_t)words_for((size_t)header.name_bytes), 4);
    void *data = calloc((size_t)words_for(data_bytes) + 1, 4); /* + 1: never calloc(0) */
    if (!name || !data) {
        free(name);
        free(data);
        snprintf(err, err_len, "checkpoint: out of memory collecting %lld bytes from rank %d",
                 (long long)data_bytes, sender);
        return 1;
    }
    if (sending) {
        memcpy(name, mine->name, (size_t)header.name_bytes);
        memcpy(data, mine->tensor->data, data_bytes);
    }
    int rc = broadcast_bytes(comm, name, (size_t)header.name_bytes, sender, err, err_len);
    if (!rc) rc = broadcast_bytes(comm, data, data_bytes, sender, err, err_len);
    if (!rc && ob_comm_rank(comm) == 0) {
        if (keep(out, name, &header, data) == 0) return 0;
        snprintf(err, err_len, "%s", "checkpoint: out of memory");
        rc = 1;
    }
    free(name);
    free(data);
    return rc;
}

int ob_checkpoint_gather(ob_comm *comm, const ob_checkpoint_tensor *local, int n_local, ob_checkpoint_gathered *out,
                         char *err, size_t err_len) {
    *out = (ob_checkpoint_gathered){0};
    int rc = 0;
    for (int sender = 1; sender < ob_comm_size(comm) && !rc; sender++) {
        int32_t count = ob_comm_rank(comm) == sender ? n_local : 0;
        rc = broadcast_bytes(comm, &count, sizeof count, sender, err, err_len);
        for (int i = 0; i < count && !rc; i++)
            rc = relay_tensor(comm, sender, ob_comm_rank(comm) == sender ? &local[i] : NULL, out, err, err_len);
    }
    if (rc) ob_checkpoint_gathered_free(out);
    return rc;
}

void ob_checkpoint_gathered_free(ob_checkpoint_gathered *gathered) {
    for (int i = 0; i < gathered->count; i++) {
        free((char *)gathered->items[i].name);
        free(gathered->items[i].tensor->data);
        free(gathered->items[i].tensor);
    }
    free(gathered->items);
    *gathered = (ob_checkpoint_gathered){0};
}
