#ifndef PRITHVI_CMPICH_SHIM_H
#define PRITHVI_CMPICH_SHIM_H
#include <mpi.h>
#include <sys/syscall.h>
#include <unistd.h>

// MPICH defines its handles and sentinels as cast macros, which Swift cannot import.
static inline MPI_Comm shim_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype shim_byte(void) { return MPI_BYTE; }
static inline MPI_Datatype shim_int64(void) { return MPI_INT64_T; }
static inline MPI_Status *shim_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline MPI_Errhandler shim_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline MPI_Request shim_request_null(void) { return MPI_REQUEST_NULL; }
static inline int shim_any_source(void) { return MPI_ANY_SOURCE; }
static inline int shim_any_tag(void) { return MPI_ANY_TAG; }
static inline int shim_max_processor_name(void) { return MPI_MAX_PROCESSOR_NAME; }
static inline int shim_max_error_string(void) { return MPI_MAX_ERROR_STRING; }

// The calling thread's kernel id (for /proc/self/task/TID), which Glibc's Swift overlay lacks.
static inline int shim_thread_id(void) { return (int)syscall(SYS_gettid); }
#endif
