/* The NCCL communicator (harness/comm/comm_nccl.c) on as many ranks as
 * argv[1] says (1 when absent; tests/CMakeLists.txt also runs 2 under
 * mpirun). Every rank takes its own GPU, so the test skips (77) when fewer
 * GPUs than ranks are visible; with none it first checks that the world
 * refuses with its one line.
 *
 * On GPUs: backend "nccl"; the shared collective and counter checks of
 * tests/comm_check.h on device buffers (the NCCL path) and on host buffers
 * (the MPI/self path beneath), on the world and on a split that reverses the
 * rank order; a call mixing host and device buffers fails with one line and
 * leaves the communicator usable. */
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/comm/ob_comm.h"

#include "comm_check.h"

#define SKIP 77

/* cudaMemcpyDefault: the direction follows from the pointers (unified
 * addressing), so one function serves both ways. */
static bool device_copy(void *to, const void *from, size_t bytes) {
    return cudaMemcpy(to, from, bytes, cudaMemcpyDefault) == cudaSuccess;
}

/* Without a GPU, the world refuses with one line and no communicator. */
static void check_no_device_refusal(void) {
    ob_comm *world = NULL;
    char err[512] = "";
    checkf(ob_comm_nccl_world(&world, err, sizeof err) != 0 && world == NULL, "no GPU: ob_comm_nccl_world fails");
    checkf(strstr(err, "NCCL communicator: no CUDA device visible") && !strchr(err, '\n'),
           "no GPU: error line \"%s\"", err);
    printf("%s\n", err);
}

/* Send in host memory, recv in device memory (and the other way round):
 * refused before anything moves; then the world still works. */
static void check_mixed(ob_comm *world, const comm_buffers *device) {
    double host[COMM_CHECK_MAX_ELEMENTS] = {0};
    check_error(world, ob_comm_allgather(world, host, device->recv, 1, OB_F64, OB_COMM_EVAL), "allgather host->device",
                "mixed host and device buffers");
    check_error(world, ob_comm_reduce_scatter_sum(world, device->send, host, 1, OB_F64, OB_COMM_GRADS),
                "reduce_scatter device->host", "mixed host and device buffers");
    double one = 1;
    checkf(ob_comm_allreduce_sum(world, &one, 1, OB_F64, OB_COMM_CONTROL) == 0 && one == ob_comm_size(world),
           "allreduce after the mixed-buffer errors");
}

/* One communicator of all ranks with key -rank: sub-rank size-1-r on both
 * paths (NCCL's split and the one beneath must agree). */
static void check_split(ob_comm *world, const comm_buffers *device, const comm_buffers *host) {
    ob_comm *reversed = NULL;
    int me = ob_comm_rank(world), size = ob_comm_size(world);
    checkf(ob_comm_split(world, 3, -me, &reversed) == 0, "split returns 0: %s", ob_comm_error(world));
    if (!reversed) return;
    checkf(strcmp(ob_comm_backend_name(reversed), "nccl") == 0, "split backend %s", ob_comm_backend_name(reversed));
    checkf(ob_comm_size(reversed) == size && ob_comm_rank(reversed) == size - 1 - me, "split: size %d rank %d",
           ob_comm_size(reversed), ob_comm_rank(reversed));
    check_collectives(reversed, device);
    check_collectives(reversed, host);
    checkf(ob_comm_barrier(reversed) == 0, "split barrier");
    ob_comm_free(reversed);
}

int main(int argc, char **argv) {
    int ranks = argc > 1 ? atoi(argv[1]) : 1, devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess) devices = 0;
    if (devices == 0) {
        check_no_device_refusal();
        report_checks();
        printf("skipped: no CUDA device visible\n");
        return checks_failed ? 1 : SKIP;
    }
    if (devices < ranks) {
        printf("skipped: %d ranks need %d GPUs, %d visible\n", ranks, ranks, devices);
        return SKIP;
    }

    ob_comm *world = NULL;
    char err[512];
    if (ob_comm_nccl_world(&world, err, sizeof err)) {
        fprintf(stderr, "test_nccl_comm: %s\n", err);
        return 1;
    }
    my_rank = ob_comm_rank(world);
    checkf(strcmp(ob_comm_backend_name(world), "nccl") == 0, "backend %s", ob_comm_backend_name(world));
    checkf(ob_comm_size(world) == ranks, "size %d, want %d", ob_comm_size(world), ranks);

    enum { BYTES = COMM_CHECK_MAX_ELEMENTS * sizeof(double) };
    comm_buffers host = comm_host_buffers();
    comm_buffers device = {.name = "device", .copy = device_copy};
    bool allocated = cudaMalloc(&device.send, BYTES) == cudaSuccess && cudaMalloc(&device.recv, BYTES) == cudaSuccess;
    checkf(allocated, "cudaMalloc of two %d-byte buffers", (int)BYTES);
    if (allocated && ob_comm_size(world) == ranks) {
        check_collectives(world, &device);
        check_collectives(world, &host);
        check_stats(world, &device);
        check_stats(world, &host);
        check_split(world, &device, &host);
        check_mixed(world, &device);
    }
    cudaFree(device.send);
    cudaFree(device.recv);
    checkf(ob_comm_barrier(world) == 0, "world barrier");

    int failed = report_checks_on_all_ranks(world);
    ob_comm_free(world);
    return failed;
}
