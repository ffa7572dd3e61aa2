/* Checks of ob_comm's collectives that hold for any communicator of any
 * size, shared by the MPI test (tests/mpi/test_comm.c) and the NCCL one
 * (tests/cuda/test_nccl_comm.c): every collective for f32, f64 and i32
 * against values each rank can compute for all the others (small integers,
 * exact in every dtype and any summation order), broadcast from each root,
 * and the byte/call counters against ob_comm.h's convention.
 *
 * The checks fill and read host arrays; where the communicator's buffers
 * live is a comm_buffers: host memory, or device memory that the NCCL test
 * copies to and from. */
#ifndef OB_COMM_CHECK_H
#define OB_COMM_CHECK_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "harness/comm/ob_comm.h"
#include "mpi/mpi_check.h"

#define COMM_CHECK_MAX_RANKS 8
#define COMM_CHECK_MAX_ELEMENTS 64 /* per buffer: COMM_CHECK_MAX_ELEMENTS doubles */

/* send and recv hold COMM_CHECK_MAX_ELEMENTS doubles each, in the memory
 * under test; copy moves bytes between them and host arrays either way. */
typedef struct {
    const char *name; /* "host" or "device", for messages */
    void *send, *recv;
    bool (*copy)(void *to, const void *from, size_t bytes);
} comm_buffers;

static bool host_copy(void *to, const void *from, size_t bytes) {
    memcpy(to, from, bytes);
    return true;
}

/* Host memory: two static arrays. */
static comm_buffers comm_host_buffers(void) {
    static double send[COMM_CHECK_MAX_ELEMENTS], recv[COMM_CHECK_MAX_ELEMENTS];
    return (comm_buffers){.name = "host", .send = send, .recv = recv, .copy = host_copy};
}

static const ob_dtype comm_check_dtypes[] = {OB_F32, OB_F64, OB_I32};
#define COMM_CHECK_DTYPES (sizeof comm_check_dtypes / sizeof *comm_check_dtypes)

static void put(ob_dtype dtype, void *buffer, int64_t i, double v) {
    switch (dtype) {
    case OB_F32: ((float *)buffer)[i] = (float)v; break;
    case OB_F64: ((double *)buffer)[i] = v; break;
    default: ((int32_t *)buffer)[i] = (int32_t)v; break;
    }
}

static double get(ob_dtype dtype, const void *buffer, int64_t i) {
    switch (dtype) {
    case OB_F32: return ((const float *)buffer)[i];
    case OB_F64: return ((const double *)buffer)[i];
    default: return ((const int32_t *)buffer)[i];
    }
}

/* Whether buffer[0..n) equals want[0..n); the first difference is printed. */
static bool equals(ob_dtype dtype, const void *buffer, const double *want, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        if (get(dtype, buffer, i) != want[i]) {
            printf("  rank %d %s [%lld]: got %g, want %g\n", my_rank, ob_dtype_name(dtype), (long long)i,
                   get(dtype, buffer, i), want[i]);
            return false;
        }
    }
    return true;
}

/* Host array -> buffer under test, n elements of dtype. */
static bool place(const comm_buffers *b, void *buffer, const void *host, int64_t n, ob_dtype dtype) {
    bool ok = b->copy(buffer, host, (size_t)n * ob_dtype_size(dtype));
    checkf(ok, "copy %lld %s elements to %s memory", (long long)n, ob_dtype_name(dtype), b->name);
    return ok;
}

/* Buffer under test -> host array, then compared with want. */
static bool fetched_equals(const comm_buffers *b, const void *buffer, const double *want, int64_t n,
                           ob_dtype dtype) {
    double host[COMM_CHECK_MAX_ELEMENTS];
    bool ok = b->copy(host, buffer, (size_t)n * ob_dtype_size(dtype));
    checkf(ok, "copy %lld %s elements from %s memory", (long long)n, ob_dtype_name(dtype), b->name);
    return ok && equals(dtype, host, want, n);
}

/* Whether comm's size fits the arrays here; a failed check otherwise. */
static bool size_fits(const ob_comm *comm) {
    int size = ob_comm_size(comm);
    checkf(size <= COMM_CHECK_MAX_RANKS, "communicator size %d <= %d", size, COMM_CHECK_MAX_RANKS);
    return size <= COMM_CHECK_MAX_RANKS;
}

/* On n ranks, sum: rank r holds (r+1)(i+1), so the sum is n(n+1)/2 (i+1).
 * Max: rank r holds i+r for odd i and i-r for even i, so the max is i+n-1
 * or i. */
static void check_allreduce(ob_comm *comm, const comm_buffers *b) {
    enum { N = 10 };
    int r = ob_comm_rank(comm), n = ob_comm_size(comm);
    for (size_t d = 0; d < COMM_CHECK_DTYPES; d++) {
        ob_dtype dtype = comm_check_dtypes[d];
        const char *type = ob_dtype_name(dtype);
        double host[COMM_CHECK_MAX_ELEMENTS], want[N];
        for (int i = 0; i < N; i++) {
            put(dtype, host, i, (r + 1) * (i + 1));
            want[i] = n * (n + 1) / 2 * (i + 1);
        }
        if (!place(b, b->send, host, N, dtype)) return;
        checkf(ob_comm_allreduce_sum(comm, b->send, N, dtype, OB_COMM_GRADS) == 0, "allreduce_sum %s on %s returns 0",
               type, b->name);
        checkf(fetched_equals(b, b->send, want, N, dtype), "allreduce_sum %s on %s values", type, b->name);

        for (int i = 0; i < N; i++) {
            put(dtype, host, i, i % 2 ? i + r : i - r);
            want[i] = i % 2 ? i + n - 1 : i;
        }
        if (!place(b, b->send, host, N, dtype)) return;
        checkf(ob_comm_allreduce_max(comm, b->send, N, dtype, OB_COMM_GRADS) == 0, "allreduce_max %s on %s returns 0",
               type, b->name);
        checkf(fetched_equals(b, b->send, want, N, dtype), "allreduce_max %s on %s values", type, b->name);
    }
}

/* From every root in turn: the root's 1000*root + i replaces everyone's -1. */
static void check_broadcast(ob_comm *comm, const comm_buffers *b) {
    enum { N = 7 };
    for (size_t d = 0; d < COMM_CHECK_DTYPES; d++) {
        ob_dtype dtype = comm_check_dtypes[d];
        for (int root = 0; root < ob_comm_size(comm); root++) {
            double host[COMM_CHECK_MAX_ELEMENTS], want[N];
            for (int i = 0; i < N; i++) {
                want[i] = 1000 * root + i;
                put(dtype, host, i, ob_comm_rank(comm) == root ? want[i] : -1);
            }
            if (!place(b, b->send, host, N, dtype)) return;
            checkf(ob_comm_broadcast(comm, b->send, N, dtype, root, OB_COMM_CONTROL) == 0,
                   "broadcast %s from %d on %s returns 0", ob_dtype_name(dtype), root, b->name);
            checkf(fetched_equals(b, b->send, want, N, dtype), "broadcast %s from %d on %s values",
                   ob_dtype_name(dtype), root, b->name);
        }
    }
}

/* Rank r sends 10r + i; block r of the result holds it. Counts 5 and 2
 * (above and below the chunked MPI build's limit of 3). */
static void check_allgather(ob_comm *comm, const comm_buffers *b) {
    static const int64_t counts[] = {5, 2};
    int size = ob_comm_size(comm);
    if (!size_fits(comm)) return;
    for (size_t d = 0; d < COMM_CHECK_DTYPES; d++) {
        for (size_t c = 0; c < 2; c++) {
            ob_dtype dtype = comm_check_dtypes[d];
            int64_t n = counts[c];
            double host[COMM_CHECK_MAX_ELEMENTS], want[COMM_CHECK_MAX_RANKS * 5];
            for (int64_t i = 0; i < n; i++) put(dtype, host, i, 10 * ob_comm_rank(comm) + i);
            for (int r = 0; r < size; r++)
                for (int64_t i = 0; i < n; i++) want[r * n + i] = 10 * r + i;
            if (!place(b, b->send, host, n, dtype)) return;
            checkf(ob_comm_allgather(comm, b->send, b->recv, n, dtype, OB_COMM_EVAL) == 0,
                   "allgather %s x%lld on %s returns 0", ob_dtype_name(dtype), (long long)n, b->name);
            checkf(fetched_equals(b, b->recv, want, size * n, dtype), "allgather %s x%lld on %s values",
                   ob_dtype_name(dtype), (long long)n, b->name);
        }
    }
}

/* Rank r sends (r+1)(j+1) at j = k*n + i of block k; rank k receives the
 * sum over the size ranks, size(size+1)/2 (k*n + i + 1). */
static void check_reduce_scatter(ob_comm *comm, const comm_buffers *b) {
    static const int64_t counts[] = {5, 2};
    int me = ob_comm_rank(comm), size = ob_comm_size(comm);
    if (!size_fits(comm)) return;
    for (size_t d = 0; d < COMM_CHECK_DTYPES; d++) {
        for (size_t c = 0; c < 2; c++) {
            ob_dtype dtype = comm_check_dtypes[d];
            int64_t n = counts[c];
            double host[COMM_CHECK_MAX_ELEMENTS], want[5];
            for (int64_t j = 0; j < size * n; j++) put(dtype, host, j, (me + 1) * (j + 1));
            for (int64_t i = 0; i < n; i++) want[i] = size * (size + 1) / 2 * (me * n + i + 1);
            if (!place(b, b->send, host, size * n, dtype)) return;
            checkf(ob_comm_reduce_scatter_sum(comm, b->send, b->recv, n, dtype, OB_COMM_INVERSES) == 0,
                   "reduce_scatter %s x%lld on %s returns 0", ob_dtype_name(dtype), (long long)n, b->name);
            checkf(fetched_equals(b, b->recv, want, n, dtype), "reduce_scatter %s x%lld on %s values",
                   ob_dtype_name(dtype), (long long)n, b->name);
        }
    }
}

/* All four, each on every dtype. */
static void check_collectives(ob_comm *comm, const comm_buffers *b) {
    check_allreduce(comm, b);
    check_broadcast(comm, b);
    check_allgather(comm, b);
    check_reduce_scatter(comm, b);
}

/* The bytes a call moving `payload` counts on a communicator of `size`:
 * a one-rank communicator moves nothing. */
static int64_t counted_bytes(int size, int64_t payload) { return size > 1 ? payload : 0; }

/* A known sequence on comm, an even/odd split of it and a one-rank split
 * of that, then every (op, category) cell against the header's byte
 * convention (through comm and through the one-rank split: one table). */
static void check_stats(ob_comm *comm, const comm_buffers *b) {
    ob_comm *parity = NULL, *single = NULL;
    int me = ob_comm_rank(comm), n = ob_comm_size(comm);
    if (ob_comm_split(comm, me % 2, me, &parity) || ob_comm_split(parity, ob_comm_rank(parity), 0, &single)) {
        checkf(false, "stats: splits: %s", ob_comm_error(parity ? parity : comm));
        ob_comm_free(parity);
        return;
    }
    int half = ob_comm_size(parity);
    double zeros[COMM_CHECK_MAX_ELEMENTS] = {0};
    int rc = !b->copy(b->send, zeros, sizeof zeros);
    ob_comm_reset_stats(comm);
    rc |= ob_comm_allreduce_sum(comm, b->send, 10, OB_F32, OB_COMM_GRADS);
    rc |= ob_comm_allreduce_max(comm, b->send, 3, OB_F64, OB_COMM_FACTORS);
    rc |= ob_comm_broadcast(comm, b->send, 7, OB_I32, n - 1, OB_COMM_CONTROL);
    rc |= ob_comm_broadcast(comm, b->send, 7, OB_I32, 0, OB_COMM_CONTROL);
    rc |= ob_comm_allgather(comm, b->send, b->recv, 5, OB_F64, OB_COMM_EVAL);
    rc |= ob_comm_reduce_scatter_sum(comm, b->send, b->recv, 5, OB_F32, OB_COMM_INVERSES);
    rc |= ob_comm_allreduce_sum(parity, b->send, 6, OB_F32, OB_COMM_BATCHNORM);
    rc |= ob_comm_allgather(parity, b->send, b->recv, 3, OB_I32, OB_COMM_PRECOND_GRADS);
    rc |= ob_comm_allreduce_sum(single, b->send, 9, OB_F64, OB_COMM_GRADS); /* one rank: 0 bytes */
    rc |= ob_comm_allreduce_sum(comm, NULL, 0, OB_F64, OB_COMM_GRADS);      /* empty: 0 bytes */
    /* Failures count nothing. */
    checkf(ob_comm_broadcast(comm, b->send, 7, OB_I32, n, OB_COMM_CONTROL) != 0, "stats: bad root fails");
    checkf(rc == 0, "stats on %s: every collective returns 0", b->name);

    ob_comm_stat want[OB_COMM_OP_COUNT][OB_COMM_CATEGORY_COUNT] = {{{0}}};
    want[OB_COMM_ALLREDUCE][OB_COMM_GRADS] = (ob_comm_stat){.bytes = counted_bytes(n, 40), .calls = 3};
    want[OB_COMM_ALLREDUCE][OB_COMM_FACTORS] = (ob_comm_stat){.bytes = counted_bytes(n, 24), .calls = 1};
    want[OB_COMM_ALLREDUCE][OB_COMM_BATCHNORM] = (ob_comm_stat){.bytes = counted_bytes(half, 24), .calls = 1};
    want[OB_COMM_BROADCAST][OB_COMM_CONTROL] = (ob_comm_stat){.bytes = counted_bytes(n, 56), .calls = 2};
    want[OB_COMM_ALLGATHER][OB_COMM_EVAL] = (ob_comm_stat){.bytes = counted_bytes(n, n * 40), .calls = 1};
    want[OB_COMM_ALLGATHER][OB_COMM_PRECOND_GRADS] =
        (ob_comm_stat){.bytes = counted_bytes(half, half * 12), .calls = 1};
    want[OB_COMM_REDUCE_SCATTER][OB_COMM_INVERSES] = (ob_comm_stat){.bytes = counted_bytes(n, n * 20), .calls = 1};
    for (int op = 0; op < OB_COMM_OP_COUNT; op++) {
        for (int cat = 0; cat < OB_COMM_CATEGORY_COUNT; cat++) {
            ob_comm_stat got = ob_comm_stats(comm, op, cat), w = want[op][cat];
            ob_comm_stat via_sub = ob_comm_stats(single, op, cat);
            checkf(got.bytes == w.bytes && got.calls == w.calls,
                   "stats on %s %s/%s: %lld bytes %lld calls, want %lld %lld", b->name, ob_comm_op_name(op),
                   ob_comm_category_name(cat), (long long)got.bytes, (long long)got.calls, (long long)w.bytes,
                   (long long)w.calls);
            checkf(got.seconds >= 0 && (got.calls > 0 || got.seconds == 0), "stats %s/%s: seconds %g",
                   ob_comm_op_name(op), ob_comm_category_name(cat), got.seconds);
            checkf(memcmp(&got, &via_sub, sizeof got) == 0, "stats %s/%s: the same table through a sub-communicator",
                   ob_comm_op_name(op), ob_comm_category_name(cat));
        }
    }
    ob_comm_reset_stats(single);
    checkf(ob_comm_stats(comm, OB_COMM_ALLREDUCE, OB_COMM_GRADS).calls == 0, "stats: reset through a sub resets all");
    ob_comm_free(single);
    ob_comm_free(parity);
}

/* A failed call's message is one non-empty line containing `part`. */
static void check_error(ob_comm *comm, int rc, const char *call, const char *part) {
    const char *e = ob_comm_error(comm);
    checkf(rc != 0, "%s fails", call);
    checkf(e[0] && !strchr(e, '\n') && strstr(e, part), "%s: error line \"%s\" names \"%s\"", call, e, part);
}

#endif
