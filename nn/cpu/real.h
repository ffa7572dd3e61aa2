/* Kernels in cpu/k_*.c are written once over `ob_real` and compiled twice
 * (CMake defines OB_REAL_F32 or OB_REAL_F64). OB_FN(name) gives the
 * instantiation's symbol: name_f32 or name_f64. BLAS calls go through
 * OB_GEMM / OB_AXPY / OB_SYRK so the same source picks sgemm or dgemm.
 * No include guard: backend_cpu.c includes it once per instantiation, so
 * everything here is a macro that is reset first. */
#include <cblas.h>

#undef ob_real
#undef OB_FN
#undef OB_GEMM
#undef OB_AXPY
#undef OB_SYRK
#if defined(OB_REAL_F64)
#define ob_real double
#define OB_FN(name) name##_f64
#define OB_GEMM cblas_dgemm
#define OB_AXPY cblas_daxpy
#define OB_SYRK cblas_dsyrk
#elif defined(OB_REAL_F32)
#define ob_real float
#define OB_FN(name) name##_f32
#define OB_GEMM cblas_sgemm
#define OB_AXPY cblas_saxpy
#define OB_SYRK cblas_ssyrk
#else
#error "define OB_REAL_F32 or OB_REAL_F64"
#endif
