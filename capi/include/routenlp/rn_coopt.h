/**
 * @file rn_coopt.h
 * @brief Co-optimization loop (analyse -> distill -> retrain router -> recalibrate -> evaluate)
 *        with host callbacks. Tiers and routing states are host tokens (uint64_t) the library
 *        never interprets: the host's distill callback returns the token of the updated tier.
 *        Failures are clustered with TF-IDF embeddings. See docs/coopt.md.
 */
#ifndef ROUTENLP_RN_COOPT_H
#define ROUTENLP_RN_COOPT_H

#include "routenlp/routenlp.h"

#ifdef __cplusplus
extern "C" {
#endif

/** What an evaluation measures. Changed in 0.2: struct_size first. */
typedef struct rn_coopt_metrics {
  uint32_t struct_size; /**< set by the caller: sizeof(rn_coopt_metrics) */
  double cost;          /**< USD per query */
  double quality;       /**< mean quality in [0,1] */
  double t1_acceptance; /**< share answered by the cheapest tier */
  double cost_ratio;    /**< cost relative to always calling the reference tier */
} rn_coopt_metrics;

#define RN_COOPT_METRICS_INIT { sizeof(rn_coopt_metrics), 0.0, 0.0, 0.0, 0.0 }

/** One query as the cascade handled it (strings are copied by the library). Changed in 0.2:
 *  struct_size first. */
typedef struct rn_trace_record {
  uint32_t struct_size;       /**< set by the caller: sizeof(rn_trace_record) */
  const char* query_id;       /**< may be NULL */
  const char* query;          /**< required, UTF-8 */
  const char* task;           /**< may be NULL */
  int32_t tier;               /**< cheaper tier tried first */
  int32_t final_tier;         /**< tier whose answer was returned */
  int32_t accepted;           /**< nonzero: the cheaper tier's answer was accepted */
  int32_t acceptable;         /**< 1 acceptable, 0 not, -1 unknown */
  double tier_cost;           /**< USD paid to the cheaper tier */
  double total_cost;          /**< USD paid in all */
  const char* final_response; /**< returned answer (the teacher output); may be NULL */
} rn_trace_record;

#define RN_TRACE_RECORD_INIT \
  { sizeof(rn_trace_record), NULL, NULL, NULL, 0, 0, 0, -1, 0.0, 0.0, NULL }

/** A distillation example handed to the distill callback (borrowed during the call). */
typedef struct rn_distill_example {
  const char* id;
  const char* query;
  const char* task;
  const char* target; /**< the teacher's output */
  const char* source; /**< "member", "neighbour" or "random" */
  int32_t cluster;    /**< failure-cluster rank, -1 for random */
} rn_distill_example;

/** Filled by the evaluate callback (valid only during that call). */
typedef struct rn_coopt_eval rn_coopt_eval;
/** Sets the evaluation's metrics (all finite). */
RN_API rn_status rn_coopt_eval_set_metrics(rn_coopt_eval* eval, const rn_coopt_metrics* metrics);
/** Appends a trace record (copied). */
RN_API rn_status rn_coopt_eval_add_record(rn_coopt_eval* eval, const rn_trace_record* record);

/** Evaluates (tier, routing): set metrics and add the trace. Called on the rn_coopt_run thread. */
typedef rn_status (*rn_coopt_evaluate_fn)(uint64_t tier, uint64_t routing, rn_coopt_eval* eval,
                                          void* user_data);
/**
 * Distills: train a new tier from `tier` on the examples; store its token in *out_tier.
 * Returning an error (or leaving the tier unusable) keeps the previous tier and routing.
 * Changed in 0.2: out_tier first.
 */
typedef rn_status (*rn_coopt_distill_fn)(uint64_t* out_tier, uint64_t tier,
                                         const rn_distill_example* examples, size_t n_examples,
                                         void* user_data);
/** Retrains the router or recalibrates for the new tier: store the new routing token.
 *  Changed in 0.2: out_routing first. */
typedef rn_status (*rn_coopt_routing_fn)(uint64_t* out_routing, uint64_t tier, uint64_t routing,
                                         void* user_data);
/** Labels a pool query with the teacher: *out_target is borrowed until the next call; NULL
 *  skips. Changed in 0.2: out_target first. */
typedef rn_status (*rn_coopt_teacher_fn)(const char** out_target, const char* query,
                                         const char* task, void* user_data);

typedef enum rn_coopt_strategy {
  RN_COOPT_TARGETED = 0, /**< failure-cluster members + nearest pool neighbours */
  RN_COOPT_RANDOM = 1    /**< uniform sample of the pool (baseline) */
} rn_coopt_strategy;

typedef struct rn_coopt_params {
  uint32_t struct_size;       /**< sizeof(rn_coopt_params) */
  int32_t max_iterations;     /**< default 3 */
  double min_gain;            /**< stop when relative cost reduction < this (0.01) */
  double quality_tolerance;   /**< quality drop counted as no gain (0) */
  int32_t revert_regressions; /**< nonzero: undo a worse iteration before stopping (1) */
  int32_t strategy;           /**< rn_coopt_strategy */
  size_t budget;              /**< examples per iteration (256) */
  size_t top_clusters;        /**< clusters drawn from (3) */
  double member_share;        /**< share of a cluster's quota taken from its members (0.5) */
  int32_t k_min, k_max;       /**< silhouette search range (2, 12) */
  uint64_t seed;              /**< 42 */
  const char* log_path;       /**< JSON Lines per-iteration log, or NULL */
  const char* const* pool_queries; /**< unlabeled pool (may be NULL when pool_size is 0) */
  const char* const* pool_tasks;   /**< per pool query, or NULL */
  size_t pool_size;
  rn_coopt_evaluate_fn evaluate;       /**< required */
  rn_coopt_distill_fn distill;         /**< required */
  rn_coopt_routing_fn retrain_router;  /**< optional */
  rn_coopt_routing_fn recalibrate;     /**< optional */
  rn_coopt_teacher_fn teacher;         /**< required when pool_size > 0 */
  void* user_data;                     /**< passed last to every callback */
} rn_coopt_params;

#define RN_COOPT_PARAMS_INIT                                                                   \
  { sizeof(rn_coopt_params), 3, 0.01, 0.0, 1, RN_COOPT_TARGETED, 256, 3, 0.5, 2, 12, 42, NULL, \
    NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL }

/** @return the default parameters (no callbacks). Thread-safe. */
RN_API rn_coopt_params rn_coopt_params_default(void);

/** One row of the per-iteration log (strings borrowed from the result). Changed in 0.2:
 *  struct_size first. */
typedef struct rn_coopt_iteration {
  uint32_t struct_size;     /**< set by the caller: sizeof(rn_coopt_iteration) */
  int32_t iteration;        /**< 0 = baseline */
  rn_coopt_metrics metrics;
  double gain;
  size_t failures, clusters, examples;
  const char* status;       /**< baseline, ok, reverted, no_failures, <step>_failed */
  const char* error;        /**< "" unless a step failed */
} rn_coopt_iteration;

typedef struct rn_coopt_result rn_coopt_result;

/**
 * Runs the loop from (tier, routing). A failing baseline evaluation fails the call; a later
 * failing step (callback error) is recorded in the log and the previous tokens are kept.
 * @param out receives the result; free with rn_coopt_result_destroy().
 * One thread per call; callbacks run on the calling thread.
 */
RN_API rn_status rn_coopt_run(rn_coopt_result** out, const rn_coopt_params* params, uint64_t tier,
                              uint64_t routing);
/* Changed in 0.2: every rn_coopt_result_* getter takes its outputs first. */
/** Final tier and routing tokens. */
RN_API rn_status rn_coopt_result_state(uint64_t* out_tier, uint64_t* out_routing,
                                       const rn_coopt_result* result);
/** Number of log rows (baseline included). */
RN_API rn_status rn_coopt_result_iterations(size_t* out, const rn_coopt_result* result);
/** Row i of the log (out->struct_size must be set; at most that many bytes are written). */
RN_API rn_status rn_coopt_result_iteration(rn_coopt_iteration* out, const rn_coopt_result* result,
                                           size_t i);
/** Why the loop stopped: max_iterations, min_gain, regression, no_failures, <step>_failed. */
RN_API rn_status rn_coopt_result_stop_reason(const char** out, const rn_coopt_result* result);
/** The log as JSON Lines (borrowed). */
RN_API rn_status rn_coopt_result_log_jsonl(const char** out, const rn_coopt_result* result);
/** Frees the result; NULL is a no-op. */
RN_API void rn_coopt_result_destroy(rn_coopt_result* result);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* ROUTENLP_RN_COOPT_H */
