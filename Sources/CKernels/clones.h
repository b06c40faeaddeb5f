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

// No contraction into FMAs: the x86-64-v3 clone would otherwise fuse `y * x + c` where the default
// clone cannot, and a pass would round differently on CPUs with and without AVX2. (The GEMM writes
// its FMAs explicitly.)
#pragma clang fp contract(off)

#endif
