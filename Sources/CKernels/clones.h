#ifndef PRITHVI_CKERNELS_CLONES_H
#define PRITHVI_CKERNELS_CLONES_H
// Shared by the C kernels (not part of the module's interface).
//
// CK_CLONES builds an x86-64-v3 (AVX2+FMA) variant of a function beside the baseline one, picked
// when the library loads: one portable binary at full speed.
#if defined(__x86_64__) && defined(__clang__)
#define CK_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define CK_CLONES
#endif

// Contraction into FMAs is each file's choice: the GEMM writes its FMAs explicitly and the
// stitcher must round as the scalar expression, so both turn it off; kernels.c keeps it (its
// x86-64-v3 clone fuses `y * x + c`, which the baseline clone cannot: 1.4 % of a pass, and every
// CPU with AVX2 runs that same clone, so only pre-AVX2 CPUs round its functions differently).

#endif
