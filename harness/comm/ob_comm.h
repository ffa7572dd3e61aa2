/* ob_comm: the communicator every distributed part of optbench talks through.
 *
 * One interface, two implementations chosen at run time: MPI (built when
 * OB_WITH_MPI is on and used when the process was started by mpirun/srun)
 * and "self", a one-rank communicator whose collectives are copies (or
 * nothing). The CUDA issue adds NCCL behind the same calls.
 *
 * Every call is counted per (op, category): bytes, calls and seconds, so
 * that /comm needs no guessing and `optbench plan` can predict it. The byte
 * convention (what `optbench plan` predicts too) is the size of the op's
 * payload at this rank:
 *   allreduce:       count * element size
 *   broadcast:       count * element size (root and receivers alike)
 *   allgather:       size * count * element size (the gathered result)
 *   reduce_scatter:  size * count * element size (the reduced input)
 * A one-rank communicator counts calls and seconds but 0 bytes: nothing
 * leaves the process.
 *
 * Sub-communicators (ob_comm_split) add to their parent's counters, so one
 * table per process holds everything. Not thread-safe: one thread calls.
 */
#ifndef OB_COMM_H
#define OB_COMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nn/ob_tensor.h"

typedef struct ob_comm ob_comm;

typedef enum {
    OB_COMM_ALLREDUCE = 0,
    OB_COMM_BROADCAST,
    OB_COMM_ALLGATHER,
    OB_COMM_REDUCE_SCATTER,
    OB_COMM_OP_COUNT
} ob_comm_op;

/* What the bytes were for (the /comm `category` column). */
typedef enum {
    OB_COMM_GRADS = 0,      /* data-parallel gradient averaging */
    OB_COMM_FACTORS,        /* K-FAC factor all-reduce */
    OB_COMM_INVERSES,       /* K-FAC eigen-decompositions / inverses to grad workers */
    OB_COMM_PRECOND_GRADS,  /* preconditioned gradients to grad receivers */
    OB_COMM_BATCHNORM,      /* synchronized batch-norm statistics */
    OB_COMM_EVAL,           /* evaluation sums, training loss */
    OB_COMM_CONTROL,        /* set-up, log rows to rank 0, stop flags */
    OB_COMM_CATEGORY_COUNT
} ob_comm_category;

typedef struct {
    int64_t bytes, calls;
    double seconds;
} ob_comm_stat;

const char *ob_comm_op_name(ob_comm_op op);
const char *ob_comm_category_name(ob_comm_category category);

/* True when this process was started by an MPI launcher (mpirun, srun with
 * PMIx): then ob_comm_world uses MPI, otherwise the one-rank communicator,
 * so a plain `optbench run` never pays MPI's start-up. */
bool ob_comm_launched_by_mpi(void);

/* The world communicator. With MPI this calls MPI_Init (once per process;
 * MPI errors return instead of aborting). Returns 0, or nonzero with one
 * line in err (e.g. started by mpirun but built without MPI). */
int ob_comm_world(ob_comm **out, char *err, size_t err_len);
#ifdef OB_WITH_NCCL
/* The NCCL world (built with OB_WITH_NCCL): the world ob_comm_world would
 * make (MPI when launched, else one rank), with NCCL on top for collectives
 * on device memory; host buffers still take the world beneath (comm_nccl.c).
 * Each rank takes GPU (node-local rank) % (visible GPUs). Returns 0, or
 * nonzero with one line in err, e.g. "NCCL communicator: no CUDA device
 * visible (...)". */
int ob_comm_nccl_world(ob_comm **out, char *err, size_t err_len);
#endif
/* Frees a communicator; freeing the world one finalizes MPI. NULL is a no-op.
 * Sub-communicators must be freed before their parent. */
void ob_comm_free(ob_comm *comm);

int ob_comm_rank(const ob_comm *comm);
int ob_comm_size(const ob_comm *comm);
/* "mpi", "self" or "nccl" */
const char *ob_comm_backend_name(const ob_comm *comm);

/* Collective over comm: the ranks with the same color form one new
 * communicator, ordered by key (ties by parent rank), as MPI_Comm_split. */
int ob_comm_split(ob_comm *comm, int color, int key, ob_comm **out);

/* Collectives: dtype F32, F64 or I32; every call is collective over comm.
 * Each returns 0, or nonzero with ob_comm_error set. */
int ob_comm_allreduce_sum(ob_comm *comm, void *buffer, int64_t count, ob_dtype dtype, ob_comm_category category);
int ob_comm_allreduce_max(ob_comm *comm, void *buffer, int64_t count, ob_dtype dtype, ob_comm_category category);
int ob_comm_broadcast(ob_comm *comm, void *buffer, int64_t count, ob_dtype dtype, int root,
                      ob_comm_category category);
/* recv holds size*count elements; rank r's block lands at r*count. */
int ob_comm_allgather(ob_comm *comm, const void *send, void *recv, int64_t count, ob_dtype dtype,
                      ob_comm_category category);
/* send holds size*count elements; recv (count) gets the sum over ranks of
 * block `rank` of everyone's send. */
int ob_comm_reduce_scatter_sum(ob_comm *comm, const void *send, void *recv, int64_t count, ob_dtype dtype,
                               ob_comm_category category);
int ob_comm_barrier(ob_comm *comm);

/* Counters of this process (shared by a world communicator and all its
 * sub-communicators). */
ob_comm_stat ob_comm_stats(const ob_comm *comm, ob_comm_op op, ob_comm_category category);
void ob_comm_reset_stats(ob_comm *comm);

const char *ob_comm_error(const ob_comm *comm);

/* Ends every rank of the job with exit code `code` (MPI_Abort; exit on one
 * rank). Only the run driver calls it, when one rank failed mid-run and the
 * others would wait for it forever at their next collective. */
void ob_comm_abort(ob_comm *comm, int code);

#endif
