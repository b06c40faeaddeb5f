#ifndef PRITHVI_COPENBLAS_SHIM_H
#define PRITHVI_COPENBLAS_SHIM_H
#include <cblas.h>

/// OpenBLAS's pthread build starts its thread pool when the library loads, and the pool threads
/// spin on sched_yield for a while before they sleep (≈ 60 ms of CPU at every start here). The
/// function that stops them is absent from serial builds, hence the weak reference (NULL there); it
/// returns at once when the pool is already stopped.
int blas_thread_shutdown_(void) __attribute__((weak));

/// Stops OpenBLAS's idle pool threads, for a process that will never call BLAS; 0 when done,
/// -1 when this OpenBLAS has no such function.
static inline int prithvi_blas_stop_pool(void) { return blas_thread_shutdown_ ? blas_thread_shutdown_() : -1; }
#endif
