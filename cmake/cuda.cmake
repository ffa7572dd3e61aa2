# The CUDA back end (nn/cuda) and the NCCL communicator (harness/comm):
# OB_WITH_CUDA is on when nvcc and the CUDA toolkit are found (ci/test builds
# it, so CI compiles it even on machines without a GPU; its tests then skip).
# OB_WITH_NCCL additionally needs NCCL and MPI: the NCCL unique id travels
# over MPI.
#
# Architectures: 80 (A100, the cluster of DESIGN.md) and 90 (H100/H200);
# override with -DCMAKE_CUDA_ARCHITECTURES=...
if(NOT DEFINED CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
  set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
endif()
include(CheckLanguage)
check_language(CUDA)
if(CMAKE_CUDA_COMPILER)
  set(OB_CUDA_FOUND ON)
else()
  set(OB_CUDA_FOUND OFF)
endif()
ob_option_if_found(OB_WITH_CUDA OB_CUDA_FOUND "Build the CUDA back end (cuBLAS, cuDNN, cuSOLVER)"
                   "nvcc was not found (install the CUDA toolkit under /usr/local/cuda)")

if(OB_WITH_CUDA)
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES 80 90)
  endif()
  set(CMAKE_CUDA_STANDARD 17)
  enable_language(CUDA)
  # Host-side warnings as for C; device code warnings are errors under OB_WERROR too.
  add_compile_options($<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra>)
  if(OB_WERROR)
    add_compile_options($<$<COMPILE_LANGUAGE:CUDA>:-Werror=all-warnings>)
  endif()
  find_package(CUDAToolkit REQUIRED)
  find_library(CUDNN_LIBRARY cudnn HINTS ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_LIBRARY_ROOT}/lib)
  find_path(CUDNN_INCLUDE cudnn.h HINTS ${CUDAToolkit_INCLUDE_DIRS})
  if(NOT CUDNN_LIBRARY OR NOT CUDNN_INCLUDE)
    message(FATAL_ERROR "OB_WITH_CUDA is on but cuDNN (libcudnn, cudnn.h) was not found")
  endif()
  find_library(NCCL_LIBRARY nccl HINTS ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_LIBRARY_ROOT}/lib)
  find_path(NCCL_INCLUDE nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS})
endif()

if(OB_WITH_CUDA AND NCCL_LIBRARY AND NCCL_INCLUDE AND OB_WITH_MPI)
  set(OB_NCCL_FOUND ON)
else()
  set(OB_NCCL_FOUND OFF)
endif()
ob_option_if_found(OB_WITH_NCCL OB_NCCL_FOUND "Build the NCCL communicator (needs CUDA, NCCL and MPI)"
                   "CUDA, NCCL (libnccl, nccl.h) or MPI was not found")
message(STATUS "optbench: CUDA back end ${OB_WITH_CUDA}, NCCL communicator ${OB_WITH_NCCL}")
