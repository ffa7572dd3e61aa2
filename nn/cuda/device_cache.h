/* A caching allocator of device memory for one ctx (cudaMalloc and cudaFree
 * synchronise the device and cost far more than a kernel).
 *
 * Requests are rounded up to size classes, four per power of two above
 * 512 bytes (at most 25% slack), and a released block is filed under its
 * class for the next request of that class; only when cudaMalloc fails are
 * the cached blocks returned to the driver and the request retried. The
 * cache lives in the ctx's CUDA state: nothing is global. */
#ifndef OB_CUDA_DEVICE_CACHE_H
#define OB_CUDA_DEVICE_CACHE_H

#include <stddef.h>
#include <stdint.h>

/* Classes: 512 bytes, then 4 per power of two from 2^9 to 2^64. */
#define OB_CUDA_CACHE_CLASSES (1 + 4 * 55)

typedef struct ob_cuda_cached_block {
    void *ptr;
    struct ob_cuda_cached_block *next;
} ob_cuda_cached_block;

typedef struct {
    ob_cuda_cached_block *free_lists[OB_CUDA_CACHE_CLASSES];
    int64_t cached_bytes; /* held in the free lists, not handed out */
} ob_cuda_cache;

/* Device memory for at least `bytes`, NULL when the device has none left. */
void *ob_cuda_cache_alloc(ob_cuda_cache *cache, size_t bytes);
/* Files ptr (from ob_cuda_cache_alloc(cache, bytes)) for reuse; returns 0,
 * or -1 when the host could not record it (the block is then freed). */
int ob_cuda_cache_release(ob_cuda_cache *cache, void *ptr, size_t bytes);
/* Returns every cached block to the driver. */
void ob_cuda_cache_trim(ob_cuda_cache *cache);

#endif
