/* The back-end-independent part of ob_comm: names, argument checks, the
 * per-(op, category) counters every collective adds to, the choice of back
 * end for the world, and "self", the one-rank back end. */
#define _POSIX_C_SOURCE 200809L
#include "harness/comm/comm_impl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const op_names[OB_COMM_OP_COUNT] = {"allreduce", "broadcast", "allgather", "reduce_scatter"};
static const char *const category_names[OB_COMM_CATEGORY_COUNT] = {
    "grads", "factors", "inverses", "precond_grads", "batchnorm", "eval", "control"};

const char *ob_comm_op_name(ob_comm_op op) { return op_names[op]; }
const char *ob_comm_category_name(ob_comm_category category) { return category_names[category]; }

/* The launchers' own variables: Open MPI's mpirun sets OMPI_COMM_WORLD_SIZE,
 * PMIx launchers (srun --mpi=pmix, prterun) PMIX_RANK, Hydra/PMI-1/2
 * launchers (MPICH's mpiexec, srun --mpi=pmi2) PMI_RANK. */
bool ob_comm_launched_by_mpi(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
}

/* vsnprintf truncates to the buffer: the line stays one line, maybe shorter. */
void ob_comm_set_error(ob_comm *comm, const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    vsnprintf(comm->error, sizeof comm->error, fmt, args);
    va_end(args);
}

/* One stats table per world: calloc'ed zeros here, borrowed by every
 * communicator split from it. */
ob_comm *ob_comm_new(const ob_comm_ops *ops, int rank, int size, ob_comm *parent, void *impl) {
    ob_comm *comm = calloc(1, sizeof *comm);
    if (!comm) return NULL;
    if (parent) {
        comm->stats = parent->stats;
    } else {
        comm->stats = calloc(1, sizeof *comm->stats);
        if (!comm->stats) {
            free(comm);
            return NULL;
        }
        comm->owns_stats = true;
    }
    comm->ops = ops;
    comm->rank = rank;
    comm->size = size;
    comm->impl = impl;
    return comm;
}

/* ---- self: one rank, so every collective is the identity (or a copy) ---- */

/* The sum or max over one rank is the rank's own value: nothing to do. */
static int self_allreduce(ob_comm *comm, void *buffer, int64_t count, ob_dtype dtype,
                          ob_comm_reduction reduction) {
    (void)comm, (void)buffer, (void)count, (void)dtype, (void)reduction;
    return 0;
}

/* The root (rank 0) already holds the data. */
static int self_broadcast(ob_comm *comm, void *buffer, int64_t count, ob_dtype dtype, int root) {
    (void)comm, (void)buffer, (void)count, (void)dtype, (void)root;
    return 0;
}

/* recv = [send]: one block. memmove, since a caller may pass the same buffer. */
static int self_allgather(ob_comm *comm, const void *send, void *recv, int64_t count, ob_dtype dtype) {
    (void)comm;
    if (count > 0) memmove(recv, send, (size_t)count * ob_dtype_size(dtype));
    return 0;
}

/* recv = block 0 of send, summed over the one rank. */
static int self_reduce_scatter_sum(ob_comm *comm, const void *send, void *recv, int64_t count, ob_dtype dtype) {
    (void)comm;
    if (count > 0) memmove(recv, send, (size_t)count * ob_dtype_size(dtype));
    return 0;
}

/* One rank is always in step with itself. */
static int self_barrier(ob_comm *comm) {
    (void)comm;
    return 0;
}

/* Whatever the color, the one rank forms a one-rank communicator. */
static int self_split(ob_comm *comm, int color, int key, ob_comm **out) {
    (void)color, (void)key;
    *out = ob_comm_new(comm->ops, 0, 1, comm, NULL);
    if (!*out) {
        ob_comm_set_error(comm, "ob_comm_split: out of memory");
        return 1;
    }
    return 0;
}

/* The job is this process. */
static void self_abort(ob_comm *comm, int code) {
    (void)comm;
    exit(code);
}

static void self_free(ob_comm *comm) { (void)comm; }

static const ob_comm_ops self_ops = {
    .name = "self",
    .allreduce = self_allreduce,
    .broadcast = self_broadcast,
    .allgather = self_allgather,
    .reduce_scatter_sum = self_reduce_scatter_sum,
    .barrier = self_barrier,
    .split = self_split,
    .abort = self_abort,
    .free = self_free,
};

/* ---- the world ---- */

/* MPI only when a launcher started us, so that a plain run never pays for
 * (or depends on) MPI start-up; a launched run without MPI built in would
 * silently run N independent copies, so that is an error. */
int ob_comm_world(ob_comm **out, char *err, size_t err_len) {
    *out = NULL;
    if (ob_comm_launched_by_mpi()) {
#ifdef OB_WITH_MPI
        return ob_comm_mpi_world(out, err, err_len);
#else
        snprintf(err, err_len, "started by an MPI launcher but this optbench was built without MPI (OB_WITH_MPI=OFF)");
        return 1;
#endif
    }
    *out = ob_comm_new(&self_ops, 0, 1, NULL, NULL);
    if (!*out) {
        snprintf(err, err_len, "communicator: out of memory");
        return 1;
    }
    return 0;
}

/* The back end's handle first (for MPI's world that finalizes MPI), then the
 * stats table if this is the world, then the struct. */
void ob_comm_free(ob_comm *comm) {
    if (!comm) return;
    comm->ops->free(comm);
    if (comm->owns_stats) free(comm->stats);
    free(comm);
}

int ob_comm_rank(const ob_comm *comm) { return comm->rank; }
int ob_comm_size(const ob_comm *comm) { return comm->size; }
const char *ob_comm_backend_name(const ob_comm *comm) { return comm->ops->name; }
const char *ob_comm_error(const ob_comm *comm) { return comm->error; }

/* Colors are >= 0: MPI reserves negative ones (MPI_UNDEFINED). */
int ob_comm_split(ob_comm *comm, int color, int key, ob_comm **out) {
    *out = NULL;
    if (color < 0) {
        ob_comm_set_error(comm, "ob_comm_split: color %d is negative (colors are >= 0)", color);
        return 1;
    }
    return comm->ops->split(comm, color, key, out);
}

int ob_comm_barrier(ob_comm *comm) { return comm->ops->barrier(comm); }

/* The header's one exception to errors-as-return-codes: the run driver's
 * way out when a rank can no longer meet the others. */
void ob_comm_abort(ob_comm *comm, int code) { comm->ops->abort(comm, code); }

/* ---- collectives: checks, then the back end, timed and counted ---- */

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The checks every collective shares. blocks is how many count-sized blocks
 * the largest buffer holds (size for allgather's recv and reduce_scatter's
 * send, else 1), so that its byte size is known to fit in int64; sums: a
 * reduction, which the storage formats f16 and bf16 cannot take. */
static int check_args(ob_comm *comm, const char *fn, const void *a, const void *b, int64_t count,
                      int64_t blocks, ob_dtype dtype, ob_comm_category category, bool sums) {
    if ((unsigned)category >= OB_COMM_CATEGORY_COUNT) {
        ob_comm_set_error(comm, "%s: category %d is not an ob_comm_category", fn, (int)category);
        return 1;
    }
    /* f16 and bf16 are storage formats: moved (broadcast, all-gather), never summed */
    bool moved_only = ob_dtype_is_half(dtype);
    if ((dtype != OB_F32 && dtype != OB_F64 && dtype != OB_I32 && !moved_only) || (moved_only && sums)) {
        ob_comm_set_error(comm, "%s: dtype %s is not supported (f32, f64 or i32%s)", fn,
                          (unsigned)dtype < OB_DTYPE_COUNT ? ob_dtype_name(dtype) : "(invalid)",
                          sums ? "" : "; f16 and bf16 are moved too");
        return 1;
    }
    if (count < 0) {
        ob_comm_set_error(comm, "%s: count %lld is negative", fn, (long long)count);
        return 1;
    }
    if (count > INT64_MAX / blocks / (int64_t)ob_dtype_size(dtype)) {
        ob_comm_set_error(comm, "%s: count %lld x %lld blocks overflows the byte size", fn, (long long)count,
                          (long long)blocks);
        return 1;
    }
    if (count > 0 && (!a || !b)) {
        ob_comm_set_error(comm, "%s: NULL buffer for %lld elements", fn, (long long)count);
        return 1;
    }
    return 0;
}

/* Adds one call to (op, category). payload follows the header's convention;
 * a one-rank communicator moves nothing, so it counts 0 bytes. */
static void record(ob_comm *comm, ob_comm_op op, ob_comm_category category, int64_t payload, double started) {
    ob_comm_stat *s = &(*comm->stats)[op][category];
    s->calls++;
    s->seconds += now_seconds() - started;
    if (comm->size > 1) s->bytes += payload;
}

/* Sum and max share checks, dispatch and counting; fn names the public call. */
static int allreduce(ob_comm *comm, const char *fn, void *buffer, int64_t count, ob_dtype dtype,
                     ob_comm_reduction reduction, ob_comm_category category) {
    if (check_args(comm, fn, buffer, buffer, count, 1, dtype, category, true)) return 1;
    double started = now_seconds();
    if (comm->ops->allreduce(comm, buffer, count, dtype, reduction)) return 1;
    record(comm, OB_COMM_ALLREDUCE, category, count * (int64_t)ob_dtype_size(dtype), started);
    return 0;
}

int ob_comm_allreduce_sum(ob_comm *comm, void *buffer, int64_t count, ob_dtype dtype, ob_comm_category category) {
    return allreduce(comm, "ob_comm_allreduce_sum", buffer, count, dtype, OB_COMM_SUM, category);
}

int ob_comm_allreduce_max(ob_comm *comm, void *buffer, int64_t count, ob_dtype dtype, ob_comm_category category) {
    return allreduce(comm, "ob_comm_allreduce_max", buffer, count, dtype, OB_COMM_MAX, category);
}

int ob_comm_broadcast(ob_comm *comm, void *buffer, int64_t count, ob_dtype dtype, int root,
                      ob_comm_category category) {
    const char *fn = "ob_comm_broadcast";
    if (check_args(comm, fn, buffer, buffer, count, 1, dtype, category, false)) return 1;
    if (root < 0 || root >= comm->size) {
        ob_comm_set_error(comm, "%s: root %d is not a rank of this communicator (size %d)", fn, root, comm->size);
        return 1;
    }
    double started = now_seconds();
    if (comm->ops->broadcast(comm, buffer, count, dtype, root)) return 1;
    record(comm, OB_COMM_BROADCAST, category, count * (int64_t)ob_dtype_size(dtype), started);
    return 0;
}

int ob_comm_allgather(ob_comm *comm, const void *send, void *recv, int64_t count, ob_dtype dtype,
                      ob_comm_category category) {
    if (check_args(comm, "ob_comm_allgather", send, recv, count, comm->size, dtype, category, false)) return 1;
    double started = now_seconds();
    if (comm->ops->allgather(comm, send, recv, count, dtype)) return 1;
    record(comm, OB_COMM_ALLGATHER, category, comm->size * count * (int64_t)ob_dtype_size(dtype), started);
    return 0;
}

int ob_comm_reduce_scatter_sum(ob_comm *comm, const void *send, void *recv, int64_t count, ob_dtype dtype,
                               ob_comm_category category) {
    if (check_args(comm, "ob_comm_reduce_scatter_sum", send, recv, count, comm->size, dtype, category, true))
        return 1;
    double started = now_seconds();
    if (comm->ops->reduce_scatter_sum(comm, send, recv, count, dtype)) return 1;
    record(comm, OB_COMM_REDUCE_SCATTER, category, comm->size * count * (int64_t)ob_dtype_size(dtype), started);
    return 0;
}

/* ---- counters ---- */

/* Through any communicator of a world: they all point at one table. */
ob_comm_stat ob_comm_stats(const ob_comm *comm, ob_comm_op op, ob_comm_category category) {
    return (*comm->stats)[op][category];
}

void ob_comm_reset_stats(ob_comm *comm) { memset(comm->stats, 0, sizeof *comm->stats); }
