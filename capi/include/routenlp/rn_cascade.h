/**
 * @file rn_cascade.h
 * @brief C ABI of the conformal calibrator, tiers (including tiers written in C) and the
 *        cascade engine. Conventions: routenlp.h. Details: docs/cascade.md, docs/conformal.md.
 */
#ifndef ROUTENLP_RN_CASCADE_H
#define ROUTENLP_RN_CASCADE_H

#include "routenlp/routenlp.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- calibrator ------------------------------------------------------------------------- */

/** Calibration formulation (docs/conformal.md). */
typedef enum rn_calibration_method {
  RN_CALIB_LTT = 0,             /**< Learn-then-Test: P(bad | accepted) <= alpha w.p. 1-eps */
  RN_CALIB_CRC = 1,             /**< conformal risk control: P(bad and accepted) <= alpha */
  RN_CALIB_SPLIT_CONFORMAL = 2, /**< split conformal on good answers */
  RN_CALIB_PVALUE_BAD = 3       /**< conformal p-value on bad answers */
} rn_calibration_method;

/** Guarantee status of one (tier, task) cell. */
typedef enum rn_cell_status {
  RN_CELL_CERTIFIED = 0,    /**< the cell's own rows certify its threshold */
  RN_CELL_POOLED = 1,       /**< threshold borrowed from its domain / all; guarantee pooled */
  RN_CELL_ESCALATE_ALL = 2, /**< nothing certifiable: every answer escalates */
  RN_CELL_TOO_SMALL = 3,    /**< too few rows: every answer escalates */
  RN_CELL_FINAL_TIER = 4,   /**< last tier: always accepted */
  RN_CELL_UNCERTIFIED = 5   /**< quality-target mode without a certificate */
} rn_cell_status;

typedef struct rn_calibrator rn_calibrator;

/** How quality-target mode spreads the target over tasks (docs/conformal.md). */
typedef enum rn_quality_allocation {
  RN_ALLOCATION_GLOBAL = 0,   /**< the aggregate quality ratio meets the target (cheapest) */
  RN_ALLOCATION_PER_TASK = 1  /**< every task meets it (stricter) */
} rn_quality_allocation;

typedef struct rn_calibrator_params {
  uint32_t struct_size;  /**< sizeof(rn_calibrator_params) */
  int32_t method;        /**< rn_calibration_method */
  double alpha;          /**< target rate of bad answers among accepted ones */
  double epsilon;        /**< failure probability, split over the non-final tiers */
  uint32_t cell_floor;   /**< cells below this many rows may borrow from domain / all */
  int32_t quality_target_mode; /**< nonzero: minimise cost s.t. quality >= target x reference */
  double quality_target; /**< share of the reference (last) tier's quality to keep */
  /* Added in 0.2 (a caller built against 0.1 passes the smaller struct_size: defaults). */
  int32_t allocation;    /**< rn_quality_allocation */
  double qt_epsilon;     /**< the quality certificate fails with probability <= this */
} rn_calibrator_params;

#define RN_CALIBRATOR_PARAMS_INIT \
  { sizeof(rn_calibrator_params), RN_CALIB_LTT, 0.05, 0.1, 200, 0, 0.97, RN_ALLOCATION_GLOBAL, 0.2 }

/** @return the default calibrator parameters. Thread-safe. */
RN_API rn_calibrator_params rn_calibrator_params_default(void);

/**
 * Create an (uncalibrated) calibrator.
 * @param out receives the handle; free with rn_calibrator_destroy().
 * @param params NULL for defaults.
 */
RN_API rn_status rn_calibrator_create(rn_calibrator** out, const rn_calibrator_params* params);

/**
 * Calibrate from row-major arrays of n_rows x n_tiers.
 * @param tier_names n_tiers names (NULL: "t0", "t1", ...).
 * @param tasks n_rows task names.
 * @param u uncertainties (1 - confidence); NaN: the tier has no answer for that row.
 * @param bad 1 when the tier's answer is unacceptable.
 * @param quality,cost per row and tier; required in quality-target mode, else may be NULL.
 * One thread per handle.
 */
RN_API rn_status rn_calibrator_calibrate(rn_calibrator* calibrator, size_t n_rows,
                                         size_t n_tiers, const char* const* tier_names,
                                         const char* const* tasks, const double* u,
                                         const uint8_t* bad, const double* quality,
                                         const double* cost);

/** Threshold delta for (tier, task): accept iff u <= delta (may be +-INFINITY). */
RN_API rn_status rn_calibrator_threshold(double* out, const rn_calibrator* calibrator,
                                         size_t tier, const char* task);

/** Status of the cell (tier, column); column: a task, a domain pool (the domain, "/" and
 *  "*"), or "*" for all tasks. */
RN_API rn_status rn_calibrator_cell_status(int32_t* out, const rn_calibrator* calibrator,
                                           size_t tier, const char* column);

/** Save as JSON (atomic write). */
RN_API rn_status rn_calibrator_save(const rn_calibrator* calibrator, const char* path);

/** Load a saved calibration; free with rn_calibrator_destroy(). */
RN_API rn_status rn_calibrator_load(rn_calibrator** out, const char* path);

/** Free a calibrator; NULL is a no-op. */
RN_API void rn_calibrator_destroy(rn_calibrator* calibrator);

/* ---- tiers written in C ----------------------------------------------------------------- */

/** A request as seen by a C tier; valid only during the call. */
typedef struct rn_tier_request {
  uint32_t struct_size;
  const char* request_id;
  const char* query;
  const char* task;
  int32_t tier;                      /**< this tier's index in the cascade */
  double time_left_ms;               /**< until the deadline; negative: no deadline */
  size_t n_previous;                 /**< earlier tiers' answers for this request */
  const char* const* previous_texts; /**< n_previous texts, in call order */
  const int32_t* previous_tiers;     /**< n_previous tier indices */
  const void* internal;              /**< for rn_tier_request_cancelled(); do not touch */
} rn_tier_request;

/** @return 1 when the caller has cancelled this request, else 0. Thread-safe. */
RN_API int rn_tier_request_cancelled(const rn_tier_request* request);

/** Where a C tier writes its answer (valid only during the call). */
typedef struct rn_tier_reply rn_tier_reply;

/** Set the answer text (copied). */
RN_API rn_status rn_tier_reply_set_text(rn_tier_reply* reply, const char* text);
/** Set the tier's confidence in [0,1] (u = 1 - confidence). NaN is kept and escalates. */
RN_API rn_status rn_tier_reply_set_confidence(rn_tier_reply* reply, double confidence);
/** Set the call's cost in USD. */
RN_API rn_status rn_tier_reply_set_cost(rn_tier_reply* reply, double cost_usd);
/** Set the latency the tier measured. */
RN_API rn_status rn_tier_reply_set_latency_ms(rn_tier_reply* reply, double latency_ms);
/** Set token counts. */
RN_API rn_status rn_tier_reply_set_tokens(rn_tier_reply* reply, int64_t input_tokens,
                                          int64_t output_tokens);
/** Attach an error message (used when the call returns a non-OK status). */
RN_API rn_status rn_tier_reply_set_error(rn_tier_reply* reply, const char* message);

/**
 * A tier's call. Called concurrently from the engine's caller threads and its pool threads:
 * it must be thread-safe. Return RN_OK with the reply filled, or any error status (the
 * cascade records a tier error and escalates).
 */
typedef rn_status (*rn_tier_call_fn)(const rn_tier_request* request, rn_tier_reply* reply,
                                     void* user_data);
/** Frees user_data when the last owner of the tier goes away (any thread). */
typedef void (*rn_tier_destroy_fn)(void* user_data);

typedef struct rn_tier_vtable {
  uint32_t struct_size;       /**< sizeof(rn_tier_vtable) */
  const char* name;           /**< tier name (copied) */
  rn_tier_call_fn call;       /**< required */
  rn_tier_destroy_fn destroy; /**< may be NULL */
  double expected_cost;       /**< USD per call for the budget rule; negative: unknown */
  void* user_data;
} rn_tier_vtable;

#define RN_TIER_VTABLE_INIT { sizeof(rn_tier_vtable), NULL, NULL, NULL, -1.0, NULL }

typedef struct rn_tier rn_tier;

/**
 * Wrap a C vtable as a tier. On success the tier owns user_data (destroy runs when the tier
 * and every cascade using it are gone); on error nothing is taken.
 */
RN_API rn_status rn_tier_create(rn_tier** out, const rn_tier_vtable* vtable);
/** Release this handle (cascades keep their own reference). NULL is a no-op. */
RN_API void rn_tier_destroy(rn_tier* tier);

/* ---- cascade ---------------------------------------------------------------------------- */

/** What happened at one tier of a request. */
typedef enum rn_trace_decision {
  RN_DECISION_ACCEPTED = 0,
  RN_DECISION_ESCALATED = 1,
  RN_DECISION_FINAL = 2,            /**< last allowed tier's answer, returned whatever u is */
  RN_DECISION_ERROR = 3,            /**< tier failed / timed out / threw: escalated */
  RN_DECISION_SKIPPED_BUDGET = 4,
  RN_DECISION_SKIPPED_DEADLINE = 5,
  RN_DECISION_CANCELLED = 6,
  RN_DECISION_SKIPPED_THRESHOLD = 7 /**< not called: its answer could not have been accepted */
} rn_trace_decision;

typedef struct rn_cascade rn_cascade;
typedef struct rn_result rn_result;

typedef struct rn_cascade_params {
  uint32_t struct_size;          /**< sizeof(rn_cascade_params) */
  uint32_t n_threads;            /**< pool threads for batch runs (0: hardware) */
  int32_t online;                /**< nonzero: ACI recalibration from record_outcome() */
  double audit_rate;             /**< share of requests selected for feedback */
  const char* decision_log_path; /**< JSON Lines decision log (appended); NULL: none */
} rn_cascade_params;

#define RN_CASCADE_PARAMS_INIT { sizeof(rn_cascade_params), 0, 0, 0.1, NULL }

/** @return the default cascade parameters. Thread-safe. */
RN_API rn_cascade_params rn_cascade_params_default(void);

/**
 * Create a cascade over n_tiers tiers (cheapest first) with a calibrator's thresholds.
 * @param calibrator calibrated for the same number of tiers; NULL: every non-final tier
 *        escalates. The cascade copies what it needs; the calibrator may be destroyed after.
 * @param params NULL for defaults.
 */
RN_API rn_status rn_cascade_create(rn_cascade** out, rn_tier* const* tiers, size_t n_tiers,
                                   const rn_calibrator* calibrator,
                                   const rn_cascade_params* params);

typedef struct rn_cascade_request {
  uint32_t struct_size; /**< sizeof(rn_cascade_request) */
  const char* request_id; /**< NULL: assigned */
  const char* query;
  const char* task;
  int32_t start_tier;   /**< negative: the calibration's start tier; else < tier count */
  int32_t max_tier;     /**< negative: the last tier; else < tier count, >= start_tier */
  double alpha;         /**< 0: calibration alpha */
  double budget_usd;    /**< negative: no budget */
  double deadline_ms;   /**< 0: no deadline */
  /* Added in 0.2 (a caller built against 0.1 passes the smaller struct_size: no router p). */
  const double* router_p; /**< router P(acceptable) per tier (NaN: unknown), or NULL: u = 1 - p
                               for a tier that reports no confidence; the router's skip rule */
  size_t n_router_p;      /**< entries of router_p: 0, or the cascade's tier count */
} rn_cascade_request;

#define RN_CASCADE_REQUEST_INIT \
  { sizeof(rn_cascade_request), NULL, NULL, NULL, -1, -1, 0.0, -1.0, 0.0, NULL, 0 }

/**
 * Run one request. Returns RN_OK when a result was produced, even one without an answer
 * (see rn_result_status()). Free the result with rn_result_destroy(). Thread-safe.
 */
RN_API rn_status rn_cascade_run(rn_result** out, const rn_cascade* cascade,
                                const rn_cascade_request* request);

/** Label of an audited request's answer (1 acceptable, 0 not). RN_ERR_INVALID_ARGUMENT if
 *  the request is unknown. Thread-safe. */
RN_API rn_status rn_cascade_record_outcome(rn_cascade* cascade, const char* request_id,
                                           int acceptable);

/** Prometheus text of the cascade's metrics; borrowed until this thread's next rn_ call. */
RN_API rn_status rn_cascade_metrics_text(const char** out, const rn_cascade* cascade);

/** Free a cascade; NULL is a no-op. No run may be in progress. */
RN_API void rn_cascade_destroy(rn_cascade* cascade);

/** @return RN_OK when the result has an answer, else why not (budget, timeout, ...). */
RN_API rn_status rn_result_status(const rn_result* result);
/** @return the answer (borrowed from the result; "" when none; NULL for a NULL result). */
RN_API const char* rn_result_answer(const rn_result* result);
/** @return the answering tier's index, -1 when none. */
RN_API int32_t rn_result_tier(const rn_result* result);
/** @return 1 when the answer did not pass a calibrated threshold (flagged), else 0. */
RN_API int rn_result_uncertain(const rn_result* result);
/** @return total USD spent on the request. */
RN_API double rn_result_cost(const rn_result* result);
/** @return the request id (borrowed). */
RN_API const char* rn_result_request_id(const rn_result* result);
/** @return 1 when the request was selected for feedback (send rn_cascade_record_outcome /
 *  rn_engine_record_feedback with its id), else 0. Added in 0.2. */
RN_API int rn_result_audited(const rn_result* result);
/** @return the number of trace entries. */
RN_API size_t rn_result_trace_size(const rn_result* result);

typedef struct rn_trace_entry {
  uint32_t struct_size;      /**< set by the caller: sizeof(rn_trace_entry) */
  int32_t tier;
  const char* tier_name;     /**< borrowed from the result */
  double latency_ms;
  double cost;
  double uncertainty;        /**< NaN: none */
  double delta;
  int32_t decision;          /**< rn_trace_decision */
  int32_t error_status;      /**< rn_status of the tier call */
  const char* error_message; /**< borrowed; "" when none */
} rn_trace_entry;

/** Copy trace entry i into out (out->struct_size must be set). */
RN_API rn_status rn_result_trace_entry(rn_trace_entry* out, const rn_result* result, size_t i);

/** Free a result; NULL is a no-op. */
RN_API void rn_result_destroy(rn_result* result);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* ROUTENLP_RN_CASCADE_H */
