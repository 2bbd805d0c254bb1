/**
 * @file routenlp.h
 * @brief routenlp C ABI — the library's only binary-stable surface.
 *
 * Conventions (docs/c-api.md):
 *  - Functions are rn_<object>_<verb>; types rn_*, macros and enum values RN_*.
 *  - Every fallible function returns rn_status (RN_OK == 0, negative on error); outputs come
 *    first and are named out. On error, rn_last_error() describes it.
 *  - Handles are opaque; rn_X_destroy(NULL) is a no-op.
 *  - Params structs begin with uint32_t struct_size; initialise them with RN_X_PARAMS_INIT or
 *    rn_X_params_default(). Fields are only ever appended.
 *  - Strings returned by the library are borrowed: valid until the owning handle is destroyed
 *    (or, for rn_last_error(), until this thread's next rn_ call). The host never frees
 *    library memory and the library never frees host memory.
 *  - No C++ exception ever crosses this boundary.
 */
#ifndef ROUTENLP_ROUTENLP_H
#define ROUTENLP_ROUTENLP_H

#include <stddef.h>
#include <stdint.h>

#include "routenlp/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- version ---------------------------------------------------------------------------- */

#define RN_VERSION_MAJOR 0
#define RN_VERSION_MINOR 2
#define RN_VERSION_PATCH 0
/** Version as one comparable number: major*10000 + minor*100 + patch. */
#define RN_VERSION_NUMBER (RN_VERSION_MAJOR * 10000 + RN_VERSION_MINOR * 100 + RN_VERSION_PATCH)

/** @return the loaded library's RN_VERSION_NUMBER (compare with the header's). Thread-safe. */
RN_API uint32_t rn_version_number(void);
/** @return the loaded library's version as "MAJOR.MINOR.PATCH"; static storage. Thread-safe. */
RN_API const char* rn_version_string(void);

/* ---- status and errors ------------------------------------------------------------------ */

/** Result of every fallible call. Values never change once released. */
typedef enum rn_status {
  RN_OK = 0,
  RN_ERR_INVALID_ARGUMENT = -1, /**< a NULL handle, bad size, out-of-range value, ... */
  RN_ERR_IO = -2,               /**< file could not be opened, read, written or renamed */
  RN_ERR_PARSE = -3,            /**< malformed file content */
  RN_ERR_MODEL = -4,            /**< model weights or config unusable */
  RN_ERR_TIER = -5,             /**< a tier backend failed */
  RN_ERR_TIMEOUT = -6,          /**< a deadline passed */
  RN_ERR_CANCELLED = -7,        /**< the caller cancelled */
  RN_ERR_NO_MEMORY = -8,
  RN_ERR_INTERNAL = -9,         /**< a bug in routenlp: please report it */
  RN_ERR_CALLBACK = -10,        /**< reserved for host callbacks to report their own error */
  RN_ERR_NOT_SUPPORTED = -11,   /**< feature not built in or not available */
  RN_ERR_BUDGET = -12           /**< a dollar budget was exhausted */
} rn_status;

/**
 * @return a description of the last error on the calling thread ("" if none). Borrowed:
 *         valid until this thread's next rn_ call. Thread-safe (thread-local).
 */
RN_API const char* rn_last_error(void);

/** @return a short static name for a status ("RN_ERR_PARSE", ...). Thread-safe. */
RN_API const char* rn_status_name(rn_status status);

/* ---- runtime ---------------------------------------------------------------------------- */

/**
 * Describe the runtime (BLAS backend, threads, devices) as a JSON object string with keys
 * torch_available, cuda_available, blas_library, blas_is_reference, torch_intra_op_threads,
 * omp_wait_policy, cpu_kernels ("avx512", "avx2" or "none") and warnings.
 * @param out receives a borrowed string valid until this thread's next rn_ call.
 * Thread-safe.
 */
RN_API rn_status rn_runtime_info_json(const char** out);

#ifdef __cplusplus
} /* extern "C" */
#endif

/* Component APIs (each header is also usable on its own). */
/* RN_COMPONENT_HEADERS: helpers add their #include lines below this marker. */
#include "routenlp/rn_coopt.h"
#include "routenlp/rn_tokenizer.h"
#include "routenlp/rn_cascade.h"
#include "routenlp/rn_pipeline.h"

#endif /* ROUTENLP_ROUTENLP_H */
