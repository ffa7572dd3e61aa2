/* The NCCL back end (built with OB_WITH_NCCL). An NCCL communicator keeps
 * the MPI (or, for one unlaunched process, "self") communicator it was made
 * from underneath, and each collective takes one of two paths by where its
 * buffers live:
 *   device memory (cudaMalloc'ed or managed): NCCL, on this communicator's
 *     own stream, synchronized before returning, so that the call is
 *     complete on return as ob_comm.h promises for every back end;
 *   host memory (control messages, evaluation sums, log rows): the
 *     communicator beneath.
 * Every rank of a call must pass the same kind of memory (NCCL and MPI do
 * not meet), and one call may not mix them. Barriers, and the ranks of a
 * split, come from the communicator beneath.
 *
 * The stream is a blocking one (cudaStreamCreate): it waits for work queued
 * on the legacy default stream, so a buffer filled there is ready; work on
 * other streams must be synchronized by the caller before the call. */
#include "harness/comm/comm_impl.h"

#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ncclCommSplit, which sub-communicators (KAISA's groups) need, is 2.18's. */
#if NCCL_VERSION_CODE < NCCL_VERSION(2, 18, 0)
#error "the NCCL communicator needs NCCL 2.18 or newer (ncclCommSplit)"
#endif

/* The unique id travels as I32 elements, the smallest dtype ob_comm moves. */
_Static_assert(sizeof(ncclUniqueId) % sizeof(int32_t) == 0, "ncclUniqueId is not a whole number of int32s");
#define UNIQUE_ID_INT32S ((int64_t)(sizeof(ncclUniqueId) / sizeof(int32_t)))

typedef struct {
    ncclComm_t nccl;
    cudaStream_t stream;
    ob_comm *beneath; /* MPI or self: host buffers, barriers, split ranks */
} nccl_impl;

static nccl_impl *impl_of(const ob_comm *comm) { return comm->impl; }

/* ---- error lines ---- */

static void nccl_line(char *err, size_t err_len, const char *call, ncclResult_t rc) {
    snprintf(err, err_len, "%s: %s", call, ncclGetErrorString(rc));
}

static void cuda_line(char *err, size_t err_len, const char *call, cudaError_t rc) {
    snprintf(err, err_len, "%s: %s", call, cudaGetErrorString(rc));
}

/* Set comm's error line for a failed call; return 1 to pass on. */
static int nccl_failed(ob_comm *comm, const char *call, ncclResult_t rc) {
    nccl_line(comm->error, sizeof comm->error, call, rc);
    return 1;
}

static int cuda_failed(ob_comm *comm, const char *call, cudaError_t rc) {
    cuda_line(comm->error, sizeof comm->error, call, rc);
    return 1;
}

/* A call on the communicator beneath returned rc: its error line becomes
 * comm's. Returns rc. */
static int beneath_result(ob_comm *comm, int rc) {
    if (rc) ob_comm_set_error(comm, "%s", impl_of(comm)->beneath->error);
    return rc;
}

/* ---- which path a call takes ---- */

/* A call's path. ROUTE_NONE (nothing to move) and ROUTE_FAILED (comm's
 * error is set) end the call: the op returns path == ROUTE_FAILED. */
typedef enum { ROUTE_NONE, ROUTE_FAILED, ROUTE_HOST, ROUTE_DEVICE } route;

/* Whether p is memory a GPU reads directly (device or managed). NULL, which
 * comm.c lets through only for empty buffers, is host memory. */
static int is_device_memory(ob_comm *comm, const void *p, bool *device) {
    *device = false;
    if (!p) return 0;
    struct cudaPointerAttributes attributes;
    cudaError_t rc = cudaPointerGetAttributes(&attributes, p);
    if (rc != cudaSuccess) return cuda_failed(comm, "cudaPointerGetAttributes", rc);
    *device = attributes.type == cudaMemoryTypeDevice || attributes.type == cudaMemoryTypeManaged;
    return 0;
}

/* The path for a call on buffers a and b (the same pointer for in-place
 * ops). An empty call moves nothing and takes no path: ranks could disagree
 * on where an empty (even NULL) buffer lives, and then meet on neither. */
static route route_of(ob_comm *comm, const char *op, const void *a, const void *b, int64_t count) {
    if (count == 0) return ROUTE_NONE;
    bool a_device, b_device;
    if (is_device_memory(comm, a, &a_device) || is_device_memory(comm, b, &b_device)) return ROUTE_FAILED;
    if (a_device != b_device) {
        ob_comm_set_error(comm, "%s: mixed host and device buffers (send in %s memory, recv in %s memory)", op,
                          a_device ? "device" : "host", b_device ? "device" : "host");
        return ROUTE_FAILED;
    }
    return a_device ? ROUTE_DEVICE : ROUTE_HOST;
}

static ncclDataType_t nccl_type(ob_dtype dtype) {
    switch (dtype) {
    case OB_F32: return ncclFloat32;
    case OB_F64: return ncclFloat64;
    case OB_F16: return ncclFloat16;
    case OB_BF16: return ncclBfloat16;
    default: return ncclInt32; /* comm.c lets only these and I32 through */
    }
}

/* An NCCL call was enqueued with result rc: on success, wait for it. */
static int complete(ob_comm *comm, const char *call, ncclResult_t rc) {
    if (rc != ncclSuccess) return nccl_failed(comm, call, rc);
    cudaError_t synced = cudaStreamSynchronize(impl_of(comm)->stream);
    return synced == cudaSuccess ? 0 : cuda_failed(comm, "cudaStreamSynchronize", synced);
}

/* ---- collectives: NCCL on device buffers, the communicator beneath on
 * host ones (its op, unchecked and uncounted: comm.c did both) ---- */

static int nccl_allreduce(ob_comm *comm, void *buffer, int64_t count, ob_dtype dtype, ob_comm_reduction reduction) {
    nccl_impl *impl = impl_of(comm);
    ncclRedOp_t op = reduction == OB_COMM_SUM ? ncclSum : ncclMax;
    route path = route_of(comm, "ob_comm_allreduce", buffer, buffer, count);
    if (path == ROUTE_DEVICE)
        return complete(comm, "ncclAllReduce",
                        ncclAllReduce(buffer, buffer, (size_t)count, nccl_type(dtype), op, impl->nccl, impl->stream));
    if (path == ROUTE_HOST)
        return beneath_result(comm, impl->beneath->ops->allreduce(impl->beneath, buffer, count, dtype, reduction));
    return path == ROUTE_FAILED;
}

static int nccl_broadcast(ob_comm *comm, void *buffer, int64_t count, ob_dtype dtype, int root) {
    nccl_impl *impl = impl_of(comm);
    route path = route_of(comm, "ob_comm_broadcast", buffer, buffer, count);
    if (path == ROUTE_DEVICE)
        return complete(comm, "ncclBroadcast", ncclBroadcast(buffer, buffer, (size_t)count, nccl_type(dtype), root,
                                                             impl->nccl, impl->stream));
    if (path == ROUTE_HOST)
        return beneath_result(comm, impl->beneath->ops->broadcast(impl->beneath, buffer, count, dtype, root));
    return path == ROUTE_FAILED;
}

static int nccl_allgather(ob_comm *comm, const void *send, void *recv, int64_t count, ob_dtype dtype) {
    nccl_impl *impl = impl_of(comm);
    route path = route_of(comm, "ob_comm_allgather", send, recv, count);
    if (path == ROUTE_DEVICE)
        return complete(comm, "ncclAllGather",
                        ncclAllGather(send, recv, (size_t)count, nccl_type(dtype), impl->nccl, impl->stream));
    if (path == ROUTE_HOST)
        return beneath_result(comm, impl->beneath->ops->allgather(impl->beneath, send, recv, count, dtype));
    return path == ROUTE_FAILED;
}

static int nccl_reduce_scatter_sum(ob_comm *comm, const void *send, void *recv, int64_t count, ob_dtype dtype) {
    nccl_impl *impl = impl_of(comm);
    route path = route_of(comm, "ob_comm_reduce_scatter_sum", send, recv, count);
    if (path == ROUTE_DEVICE)
        return complete(comm, "ncclReduceScatter", ncclReduceScatter(send, recv, (size_t)count, nccl_type(dtype),
                                                                     ncclSum, impl->nccl, impl->stream));
    if (path == ROUTE_HOST)
        return beneath_result(comm, impl->beneath->ops->reduce_scatter_sum(impl->beneath, send, recv, count, dtype));
    return path == ROUTE_FAILED;
}

/* Every NCCL call has completed on return, so the ranks are in step once
 * the communicator beneath is. */
static int nccl_barrier(ob_comm *comm) { return beneath_result(comm, ob_comm_barrier(impl_of(comm)->beneath)); }

/* ---- communicators ---- */

static const ob_comm_ops nccl_ops;

/* Wraps an NCCL communicator and the matching one beneath (whose rank and
 * size it takes) in an ob_comm with its own stream; parent NULL makes a
 * world. Takes ownership of nccl and beneath: on failure both are released
 * and err holds the line. */
static int wrap(ncclComm_t nccl, ob_comm *beneath, ob_comm *parent, ob_comm **out, char *err, size_t err_len) {
    int nccl_rank = -1;
    ncclResult_t nrc = ncclCommUserRank(nccl, &nccl_rank);
    cudaStream_t stream = NULL;
    cudaError_t crc = cudaSuccess;
    nccl_impl *impl = NULL;
    if (nrc != ncclSuccess) {
        nccl_line(err, err_len, "ncclCommUserRank", nrc);
    } else if (nccl_rank != beneath->rank) {
        /* Both order ranks by (key, parent rank); a difference is a bug. */
        snprintf(err, err_len, "NCCL communicator: NCCL rank %d differs from rank %d of the %s communicator beneath",
                 nccl_rank, beneath->rank, beneath->ops->name);
    } else if ((crc = cudaStreamCreate(&stream)) != cudaSuccess) {
        cuda_line(err, err_len, "cudaStreamCreate", crc);
    } else if (!(impl = malloc(sizeof *impl)) ||
               !(*out = ob_comm_new(&nccl_ops, beneath->rank, beneath->size, parent, impl))) {
        snprintf(err, err_len, "communicator: out of memory");
    } else {
        *impl = (nccl_impl){.nccl = nccl, .stream = stream, .beneath = beneath};
        return 0;
    }
    free(impl);
    if (stream) cudaStreamDestroy(stream);
    ncclCommDestroy(nccl);
    ob_comm_free(beneath);
    return 1;
}

/* The matching split beneath and in NCCL: both order the new ranks by
 * (key, parent rank), as ob_comm_split promises. */
static int nccl_split(ob_comm *comm, int color, int key, ob_comm **out) {
    nccl_impl *impl = impl_of(comm);
    ob_comm *beneath = NULL;
    if (ob_comm_split(impl->beneath, color, key, &beneath)) return beneath_result(comm, 1);
    ncclComm_t nccl = NULL;
    ncclResult_t rc = ncclCommSplit(impl->nccl, color, key, &nccl, NULL);
    if (rc != ncclSuccess) {
        ob_comm_free(beneath);
        return nccl_failed(comm, "ncclCommSplit", rc);
    }
    return wrap(nccl, beneath, comm, out, comm->error, sizeof comm->error);
}

/* NCCL first: it stops this rank's kernels that may wait on peers, which
 * the MPI abort beneath cannot reach; then that ends the job. */
static void nccl_abort(ob_comm *comm, int code) {
    nccl_impl *impl = impl_of(comm);
    ncclCommAbort(impl->nccl);
    ob_comm_abort(impl->beneath, code);
}

/* Errors are not reportable here (comm is going away) and are ignored. The
 * world's communicator beneath finalizes MPI, so it goes last. */
static void nccl_free(ob_comm *comm) {
    nccl_impl *impl = impl_of(comm);
    ncclCommDestroy(impl->nccl);
    cudaStreamDestroy(impl->stream);
    ob_comm_free(impl->beneath);
    free(impl);
}

static const ob_comm_ops nccl_ops = {
    .name = "nccl",
    .allreduce = nccl_allreduce,
    .broadcast = nccl_broadcast,
    .allgather = nccl_allgather,
    .reduce_scatter_sum = nccl_reduce_scatter_sum,
    .barrier = nccl_barrier,
    .split = nccl_split,
    .abort = nccl_abort,
    .free = nccl_free,
};

/* ---- the world ---- */

/* A non-negative integer environment variable, if set and well formed. */
static bool env_rank(const char *name, int *out) {
    const char *text = getenv(name);
    if (!text || !*text) return false;
    char *end = NULL;
    long value = strtol(text, &end, 10);
    if (*end || value < 0 || value > INT32_MAX) return false;
    *out = (int)value;
    return true;
}

/* This process's rank among those on its node: the launcher's variable
 * (Open MPI's mpirun, then Slurm's srun), else the rank in MPI's
 * shared-memory split of the world. One unlaunched process is rank 0. */
static int local_rank(const ob_comm *beneath, int *out, char *err, size_t err_len) {
    *out = 0;
    if (beneath->size == 1 || env_rank("OMPI_COMM_WORLD_LOCAL_RANK", out) || env_rank("SLURM_LOCALID", out))
        return 0;
    MPI_Comm node;
    int rc = MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    if (rc == MPI_SUCCESS) {
        rc = MPI_Comm_rank(node, out);
        MPI_Comm_free(&node);
    }
    if (rc != MPI_SUCCESS) snprintf(err, err_len, "NCCL communicator: MPI error %d finding the node-local rank", rc);
    return rc != MPI_SUCCESS;
}

/* Sets this rank's GPU: its local rank modulo the visible devices, which
 * is one GPU per rank when a node runs as many ranks as it has GPUs, and
 * still right when the launcher gives each rank one device through
 * CUDA_VISIBLE_DEVICES. */
static int choose_device(const ob_comm *beneath, char *err, size_t err_len) {
    int devices = 0, local = 0;
    cudaError_t rc = cudaGetDeviceCount(&devices);
    if (rc != cudaSuccess || devices == 0) {
        snprintf(err, err_len, "NCCL communicator: no CUDA device visible (cudaGetDeviceCount: %s)",
                 rc != cudaSuccess ? cudaGetErrorString(rc) : "0 devices");
        return 1;
    }
    if (local_rank(beneath, &local, err, err_len)) return 1;
    rc = cudaSetDevice(local % devices);
    if (rc != cudaSuccess) cuda_line(err, err_len, "cudaSetDevice", rc);
    return rc != cudaSuccess;
}

/* Every rank sets its GPU and rank 0 makes the unique id; the ranks agree
 * (an allreduce of failures) before the id is broadcast, so that one rank's
 * failure (a node without GPUs, say) fails every rank instead of leaving
 * the others waiting in ncclCommInitRank. */
static int prepare(ob_comm *beneath, ncclUniqueId *id, char *err, size_t err_len) {
    int32_t failed = choose_device(beneath, err, err_len);
    if (!failed && beneath->rank == 0) {
        ncclResult_t rc = ncclGetUniqueId(id);
        if (rc != ncclSuccess) nccl_line(err, err_len, "ncclGetUniqueId", rc);
        failed = rc != ncclSuccess;
    }
    int32_t own_failure = failed;
    if (beneath->ops->allreduce(beneath, &failed, 1, OB_I32, OB_COMM_MAX) ||
        beneath->ops->broadcast(beneath, id, UNIQUE_ID_INT32S, OB_I32, 0)) {
        snprintf(err, err_len, "NCCL communicator set-up: %s", beneath->error);
        return 1;
    }
    if (failed && !own_failure) snprintf(err, err_len, "NCCL communicator: another rank failed to set up");
    return failed;
}

/* The world beneath first (MPI when launched), so that every rank reaches
 * the agreement in prepare whatever fails on it. */
int ob_comm_nccl_world(ob_comm **out, char *err, size_t err_len) {
    *out = NULL;
    ob_comm *beneath = NULL;
    if (ob_comm_world(&beneath, err, err_len)) return 1;
    ncclUniqueId id;
    memset(&id, 0, sizeof id);
    if (prepare(beneath, &id, err, err_len)) {
        ob_comm_free(beneath);
        return 1;
    }
    ncclComm_t nccl = NULL;
    ncclResult_t rc = ncclCommInitRank(&nccl, beneath->size, id, beneath->rank);
    if (rc != ncclSuccess) {
        nccl_line(err, err_len, "ncclCommInitRank", rc);
        ob_comm_free(beneath);
        return 1;
    }
    return wrap(nccl, beneath, NULL, out, err, err_len);
}
