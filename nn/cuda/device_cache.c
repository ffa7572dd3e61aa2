#include "nn/cuda/device_cache.h"

#include <stdlib.h>

#include <cuda_runtime_api.h>

#define SMALLEST_CLASS_LOG2 9 /* 512 bytes: cudaMalloc's own granularity */

/* The class of `bytes` and its size: 2^p + k 2^(p-2) for bytes in
 * (2^p, 2^(p+1)], k = 1..4 the smallest that holds it. */
static int size_class(size_t bytes, size_t *class_bytes) {
    if (bytes <= (size_t)1 << SMALLEST_CLASS_LOG2) {
        *class_bytes = (size_t)1 << SMALLEST_CLASS_LOG2;
        return 0;
    }
    int p = 63 - __builtin_clzll((unsigned long long)(bytes - 1));
    size_t base = (size_t)1 << p, quarter = base >> 2;
    size_t k = (bytes - base + quarter - 1) / quarter;
    *class_bytes = base + k * quarter;
    return 1 + (p - SMALLEST_CLASS_LOG2) * 4 + (int)(k - 1);
}

void *ob_cuda_cache_alloc(ob_cuda_cache *cache, size_t bytes) {
    size_t class_bytes;
    int c = size_class(bytes, &class_bytes);
    ob_cuda_cached_block *block = cache->free_lists[c];
    if (block) {
        void *ptr = block->ptr;
        cache->free_lists[c] = block->next;
        cache->cached_bytes -= (int64_t)class_bytes;
        free(block);
        return ptr;
    }
    void *ptr = NULL;
    if (cudaMalloc(&ptr, class_bytes) == cudaSuccess) return ptr;
    /* Out of device memory with blocks cached for other sizes: give them
     * back and try once more. cudaGetLastError clears the failed call. */
    (void)cudaGetLastError();
    ob_cuda_cache_trim(cache);
    if (cudaMalloc(&ptr, class_bytes) == cudaSuccess) return ptr;
    (void)cudaGetLastError();
    return NULL;
}

int ob_cuda_cache_release(ob_cuda_cache *cache, void *ptr, size_t bytes) {
    if (!ptr) return 0;
    size_t class_bytes;
    int c = size_class(bytes, &class_bytes);
    ob_cuda_cached_block *block = malloc(sizeof *block);
    if (!block) {
        cudaFree(ptr);
        return -1;
    }
    *block = (ob_cuda_cached_block){.ptr = ptr, .next = cache->free_lists[c]};
    cache->free_lists[c] = block;
    cache->cached_bytes += (int64_t)class_bytes;
    return 0;
}

void ob_cuda_cache_trim(ob_cuda_cache *cache) {
    for (int c = 0; c < OB_CUDA_CACHE_CLASSES; c++)
        while (cache->free_lists[c]) {
            ob_cuda_cached_block *block = cache->free_lists[c];
            cache->free_lists[c] = block->next;
            cudaFree(block->ptr);
            free(block);
        }
    cache->cached_bytes = 0;
}
