#ifndef PRITHVI_COPENBLAS_SHIM_H
#define PRITHVI_COPENBLAS_SHIM_H
#include <cblas.h>
#endif
