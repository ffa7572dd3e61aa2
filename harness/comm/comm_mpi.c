/* The MPI back end (built with OB_WITH_MPI). Every communicator is a
 * duplicate of MPI_COMM_WORLD, or split from one, so optbench's traffic
 * never matches messages of other code in the process; each returns errors
 * (MPI_ERRORS_RETURN) instead of aborting, and they become ob_comm_error
 * lines with MPI's own error string.
 *
 * MPI counts are int: a longer buffer goes in chunks of at most
 * OB_COMM_MPI_MAX_COUNT elements (INT_MAX; the tests build a copy with a
 * tiny limit so that the chunked paths run on small buffers).
 *
 * Whether this process's MPI was initialized by optbench is kept in the
 * world communicator (mpi_impl.finalize), not in a global: freeing that world
 * finalizes MPI, so a process holds one world at a time. */
#include "harness/comm/comm_impl.h"

#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef OB_COMM_MPI_MAX_COUNT
#define OB_COMM_MPI_MAX_COUNT INT_MAX
#endif

typedef struct {
    MPI_Comm comm;
    bool finalize; /* the world communicator whose creation called MPI_Init_thread */
} mpi_impl;

static MPI_Comm handle(const ob_comm *comm) { return ((const mpi_impl *)comm->impl)->comm; }

/* MPI_INT32_T rather than MPI_INT: OB_I32 is 32 bits by definition. */
static MPI_Datatype mpi_type(ob_dtype dtype) {
    switch (dtype) {
    case OB_F32: return MPI_FLOAT;
    case OB_F64: return MPI_DOUBLE;
    case OB_F16:
    case OB_BF16: return MPI_UINT16_T; /* moved, never summed (comm.c) */
    default: return MPI_INT32_T; /* comm.c lets only these and I32 through */
    }
}

/* The next chunk of a transfer with `left` elements to go. */
static int chunk(int64_t left) { return left < OB_COMM_MPI_MAX_COUNT ? (int)left : OB_COMM_MPI_MAX_COUNT; }

/* "<call>: <MPI's error string>" into err. */
static void error_line(char *err, size_t err_len, const char *call, int code) {
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) snprintf(text, sizeof text, "MPI error code %d", code);
    snprintf(err, err_len, "%s: %s", call, text);
}

/* Sets comm's error line for a failed MPI call; returns 1 to pass on. */
static int failed(ob_comm *comm, const char *call, int code) {
    error_line(comm->error, sizeof comm->error, call, code);
    return 1;
}

/* In place, so buffer is both input and result; chunk by chunk, since the
 * elementwise reduction does not care how the vector is cut. */
static int mpi_allreduce(ob_comm *comm, void *buffer, int64_t count, ob_dtype dtype, ob_comm_reduction reduction) {
    size_t element = ob_dtype_size(dtype);
    MPI_Op op = reduction == OB_COMM_SUM ? MPI_SUM : MPI_MAX;
    for (int64_t done = 0; done < count;) {
        int n = chunk(count - done);
        int rc = MPI_Allreduce(MPI_IN_PLACE, (char *)buffer + done * element, n, mpi_type(dtype), op, handle(comm));
        if (rc != MPI_SUCCESS) return failed(comm, "MPI_Allreduce", rc);
        done += n;
    }
    return 0;
}

/* Broadcasts elements [offset, offset + count) of buffer from root. */
static int broadcast_range(ob_comm *comm, char *buffer, int64_t offset, int64_t count, ob_dtype dtype, int root) {
    size_t element = ob_dtype_size(dtype);
    for (int64_t done = 0; done < count;) {
        int n = chunk(count - done);
        int rc = MPI_Bcast(buffer + (offset + done) * element, n, mpi_type(dtype), root, handle(comm));
        if (rc != MPI_SUCCESS) return failed(comm, "MPI_Bcast", rc);
        done += n;
    }
    return 0;
}

static int mpi_broadcast(ob_comm *comm, void *buffer, int64_t count, ob_dtype dtype, int root) {
    return broadcast_range(comm, buffer, 0, count, dtype, root);
}

/* One MPI_Allgather when count fits an int. A longer block would need a
 * count of size*count in the receive buffer's terms, so then every rank
 * places its own block and each block is broadcast from its owner instead:
 * the same result, one root at a time. */
static int mpi_allgather(ob_comm *comm, const void *send, void *recv, int64_t count, ob_dtype dtype) {
    if (count <= OB_COMM_MPI_MAX_COUNT) {
        int rc = MPI_Allgather(send, (int)count, mpi_type(dtype), recv, (int)count, mpi_type(dtype), handle(comm));
        return rc == MPI_SUCCESS ? 0 : failed(comm, "MPI_Allgather", rc);
    }
    size_t element = ob_dtype_size(dtype);
    memmove((char *)recv + comm->rank * count * element, send, (size_t)count * element);
    for (int root = 0; root < comm->size; root++)
        if (broadcast_range(comm, recv, root * count, count, dtype, root)) return 1;
    return 0;
}

/* One MPI_Reduce_scatter_block when count fits an int; otherwise block r
 * of everyone's send is summed onto rank r by MPI_Reduce, chunk by chunk. */
static int mpi_reduce_scatter_sum(ob_comm *comm, const void *send, void *recv, int64_t count, ob_dtype dtype) {
    if (count <= OB_COMM_MPI_MAX_COUNT) {
        int rc = MPI_Reduce_scatter_block(send, recv, (int)count, mpi_type(dtype), MPI_SUM, handle(comm));
        return rc == MPI_SUCCESS ? 0 : failed(comm, "MPI_Reduce_scatter_block", rc);
    }
    size_t element = ob_dtype_size(dtype);
    for (int root = 0; root < comm->size; root++) {
        for (int64_t done = 0; done < count;) {
            int n = chunk(count - done);
            const char *block = (const char *)send + (root * count + done) * element;
            void *result = root == comm->rank ? (char *)recv + done * element : NULL;
            int rc = MPI_Reduce(block, result, n, mpi_type(dtype), MPI_SUM, root, handle(comm));
            if (rc != MPI_SUCCESS) return failed(comm, "MPI_Reduce", rc);
            done += n;
        }
    }
    return 0;
}

/* Not counted by comm.c: it carries no payload and has no category. */
static int mpi_barrier(ob_comm *comm) {
    int rc = MPI_Barrier(handle(comm));
    return rc == MPI_SUCCESS ? 0 : failed(comm, "MPI_Barrier", rc);
}

/* Wraps an MPI communicator in an ob_comm on ops, after making it return
 * errors; parent NULL makes the world. On failure the MPI communicator is
 * freed and err holds the line. */
static int wrap(const ob_comm_ops *ops, MPI_Comm mpi_comm, ob_comm *parent, bool finalize, ob_comm **out,
                char *err, size_t err_len) {
    int rank = 0, size = 0, rc = MPI_Comm_set_errhandler(mpi_comm, MPI_ERRORS_RETURN);
    if (rc == MPI_SUCCESS) rc = MPI_Comm_rank(mpi_comm, &rank);
    if (rc == MPI_SUCCESS) rc = MPI_Comm_size(mpi_comm, &size);
    if (rc != MPI_SUCCESS) {
        error_line(err, err_len, "MPI communicator set-up", rc);
        MPI_Comm_free(&mpi_comm);
        return 1;
    }
    mpi_impl *impl = malloc(sizeof *impl);
    *out = impl ? ob_comm_new(ops, rank, size, parent, impl) : NULL;
    if (!*out) {
        snprintf(err, err_len, "communicator: out of memory");
        free(impl);
        MPI_Comm_free(&mpi_comm);
        return 1;
    }
    impl->comm = mpi_comm;
    impl->finalize = finalize;
    return 0;
}

/* MPI_Comm_split: same color, one communicator, ordered by (key, rank). */
static int mpi_split(ob_comm *comm, int color, int key, ob_comm **out) {
    MPI_Comm split;
    int rc = MPI_Comm_split(handle(comm), color, key, &split);
    if (rc != MPI_SUCCESS) return failed(comm, "MPI_Comm_split", rc);
    return wrap(comm->ops, split, comm, false, out, comm->error, sizeof comm->error);
}

/* MPI_Abort on MPI_COMM_WORLD, whatever comm is: the header promises every
 * rank of the job, not just comm's group. MPI_Abort does not return in
 * practice; should it, this process at least ends as promised. */
static void mpi_abort(ob_comm *comm, int code) {
    (void)comm;
    MPI_Abort(MPI_COMM_WORLD, code);
    exit(code);
}

/* Frees the MPI communicator; the world that started MPI also ends it.
 * Errors are not reportable here (comm is going away) and are ignored. */
static void mpi_free(ob_comm *comm) {
    mpi_impl *impl = comm->impl;
    MPI_Comm_free(&impl->comm);
    if (impl->finalize) MPI_Finalize();
    free(impl);
}

static const ob_comm_ops mpi_ops = {
    .name = "mpi",
    .allreduce = mpi_allreduce,
    .broadcast = mpi_broadcast,
    .allgather = mpi_allgather,
    .reduce_scatter_sum = mpi_reduce_scatter_sum,
    .barrier = mpi_barrier,
    .split = mpi_split,
    .abort = mpi_abort,
    .free = mpi_free,
};

/* The world once MPI runs: FUNNELED is the thread level optbench needs
 * (OpenMP threads compute, only the main thread calls MPI), and the world is
 * a duplicate of MPI_COMM_WORLD. MPI_COMM_WORLD itself is set to return
 * errors too, so that no MPI failure in the process aborts the job. */
static int make_world(bool finalize, ob_comm **out, char *err, size_t err_len) {
    int provided = 0, rc = MPI_Query_thread(&provided);
    if (rc == MPI_SUCCESS && provided < MPI_THREAD_FUNNELED) {
        snprintf(err, err_len, "MPI provides thread level %d, below the MPI_THREAD_FUNNELED (%d) optbench needs",
                 provided, MPI_THREAD_FUNNELED);
        return 1;
    }
    MPI_Comm world = MPI_COMM_NULL;
    if (rc == MPI_SUCCESS) rc = MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    if (rc == MPI_SUCCESS) rc = MPI_Comm_dup(MPI_COMM_WORLD, &world);
    if (rc != MPI_SUCCESS) {
        error_line(err, err_len, "MPI world communicator", rc);
        return 1;
    }
    return wrap(&mpi_ops, world, NULL, finalize, out, err, err_len);
}

/* Initializes MPI unless the process already did (then it is not ours to
 * finalize); MPI cannot start again once finalized. */
int ob_comm_mpi_world(ob_comm **out, char *err, size_t err_len) {
    int initialized = 0, finalized = 0, provided = 0;
    MPI_Finalized(&finalized);
    if (finalized) {
        snprintf(err, err_len, "MPI was already finalized in this process and cannot start again");
        return 1;
    }
    MPI_Initialized(&initialized);
    if (!initialized) {
        int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
        if (rc != MPI_SUCCESS) {
            error_line(err, err_len, "MPI_Init_thread", rc);
            return 1;
        }
    }
    if (make_world(!initialized, out, err, err_len) == 0) return 0;
    if (!initialized) MPI_Finalize();
    return 1;
}
