/* The one place that maps a device to its backend table: the CPU table
 * always, the CUDA table when the build has it (OB_WITH_CUDA). */
#include "nn/ob_backend.h"

extern const ob_backend ob_cpu_backend;
#ifdef OB_WITH_CUDA
extern const ob_backend ob_cuda_backend;
#endif

const ob_backend *ob_backend_get(ob_device device) {
    switch (device) {
    case OB_CPU:
        return &ob_cpu_backend;
#ifdef OB_WITH_CUDA
    case OB_CUDA:
        return &ob_cuda_backend;
#endif
    default:
        return NULL;
    }
}
