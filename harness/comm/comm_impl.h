/* What a communicator back end implements behind ob_comm (internal: only
 * harness/comm's own sources include this). comm.c checks every argument,
 * times and counts every call, and dispatches through the ops table; a back
 * end only moves data, and reports a failure with ob_comm_set_error. */
#ifndef OB_COMM_IMPL_H
#define OB_COMM_IMPL_H

#include "harness/comm/ob_comm.h"

typedef enum { OB_COMM_SUM = 0, OB_COMM_MAX } ob_comm_reduction;

/* Arguments arrive checked: dtype is F32/F64/I32, count >= 0, buffers are
 * non-NULL when count > 0, 0 <= root < size. Each returns 0, or nonzero
 * after ob_comm_set_error. */
typedef struct {
    const char *name;
    int (*allreduce)(ob_comm *comm, void *buffer, int64_t count, ob_dtype dtype, ob_comm_reduction reduction);
    int (*broadcast)(ob_comm *comm, void *buffer, int64_t count, ob_dtype dtype, int root);
    int (*allgather)(ob_comm *comm, const void *send, void *recv, int64_t count, ob_dtype dtype);
    int (*reduce_scatter_sum)(ob_comm *comm, const void *send, void *recv, int64_t count, ob_dtype dtype);
    int (*barrier)(ob_comm *comm);
    /* color >= 0; the new communicator comes from ob_comm_new(..., comm, ...). */
    int (*split)(ob_comm *comm, int color, int key, ob_comm **out);
    /* Ends every rank of the job with exit status code; does not return. */
    void (*abort)(ob_comm *comm, int code);
    /* Releases impl (and, for MPI's world, MPI itself); comm.c frees the rest. */
    void (*free)(ob_comm *comm);
} ob_comm_ops;

typedef ob_comm_stat ob_comm_stat_table[OB_COMM_OP_COUNT][OB_COMM_CATEGORY_COUNT];

struct ob_comm {
    const ob_comm_ops *ops;
    int rank, size;
    ob_comm_stat_table *stats; /* one table per world, shared by its sub-communicators */
    bool owns_stats;           /* true for the world communicator */
    char error[512];
    void *impl; /* the back end's handle (MPI: its MPI_Comm and init flag) */
};

/* A communicator on ops with the given rank and size. parent NULL makes a
 * world (a fresh stats table it owns); otherwise it shares parent's table.
 * NULL when out of memory. */
ob_comm *ob_comm_new(const ob_comm_ops *ops, int rank, int size, ob_comm *parent, void *impl);

/* Formats one line into comm's error buffer. */
void ob_comm_set_error(ob_comm *comm, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#ifdef OB_WITH_MPI
/* The MPI world (comm_mpi.c): initializes MPI if nobody has. Returns 0, or
 * nonzero with one line in err. */
int ob_comm_mpi_world(ob_comm **out, char *err, size_t err_len);
#endif

#endif
