/**
 * @file rn_pipeline.h
 * @brief C ABI of saved routers and of the routing pipeline (portfolio + router + thresholds +
 *        acceptance score, one artifact directory), and of cascade engines built from a
 *        pipeline over tiers written in C. Conventions: routenlp.h. Details: docs/c-api.md,
 *        docs/pipeline.md.
 */
#ifndef ROUTENLP_RN_PIPELINE_H
#define ROUTENLP_RN_PIPELINE_H

#include "routenlp/routenlp.h"
#include "routenlp/rn_cascade.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Types of rn_cascade.h, named by their struct tags: when rn_cascade.h is the header a program
 * includes first, routenlp.h includes this one before rn_cascade.h's typedefs exist. */
struct rn_tier_vtable;
struct rn_cascade_params;
struct rn_cascade_request;
struct rn_result;

/* ---- routers ---------------------------------------------------------------------------- */

/** A loaded router: immutable, every function taking a const handle is thread-safe. */
typedef struct rn_router rn_router;

/**
 * Load a router saved as a directory: what routenlp::save_router writes, a neural checkpoint
 * (`routenlp train`), or the router/ folder of a pipeline artifact.
 * @param out receives the handle; free with rn_router_destroy().
 * @return RN_ERR_IO / RN_ERR_PARSE / RN_ERR_MODEL naming the file on failure;
 *         RN_ERR_NOT_SUPPORTED for a neural router in a build without libtorch.
 */
RN_API rn_status rn_router_load(rn_router** out, const char* dir);

/** @param out receives the number of tiers the router scores. */
RN_API rn_status rn_router_tier_count(size_t* out, const rn_router* router);

/** @param out receives tier `tier`'s name; borrowed until the router is destroyed. */
RN_API rn_status rn_router_tier_name(const char** out, const rn_router* router, size_t tier);

/** @param out receives the router's name ("task-prior", ...); borrowed like tier names. */
RN_API rn_status rn_router_name(const char** out, const rn_router* router);

/**
 * Score n (query, task) pairs in one batch.
 * @param out_p receives n x tiers P(acceptable) in [0,1], row-major (query i, tier k at
 *        i * tiers + k). out_p_capacity is its room in doubles; when it is below n x tiers
 *        nothing is written and RN_ERR_INVALID_ARGUMENT is returned.
 * @param out_difficulty receives n difficulties in [0,1]; may be NULL.
 * @param queries,tasks n NUL-terminated UTF-8 strings each (a task the router never saw is
 *        scored with its "unknown task" prior).
 * Thread-safe.
 */
RN_API rn_status rn_router_score(double* out_p, size_t out_p_capacity, double* out_difficulty,
                                 const rn_router* router, const char* const* queries,
                                 const char* const* tasks, size_t n);

/** Free a router; NULL is a no-op. Pipelines and engines keep their own reference. */
RN_API void rn_router_destroy(rn_router* router);

/* ---- pipeline --------------------------------------------------------------------------- */

/** A loaded pipeline artifact: immutable, every function taking a const handle is thread-safe. */
typedef struct rn_pipeline rn_pipeline;

/**
 * Load a pipeline artifact directory (`routenlp fit` / `routenlp calibrate`). The manifest is
 * verified first: a tampered, truncated or version-mismatched artifact is RN_ERR_PARSE naming
 * the file; a missing directory or file RN_ERR_IO.
 * @param out receives the handle; free with rn_pipeline_destroy().
 */
RN_API rn_status rn_pipeline_load(rn_pipeline** out, const char* dir);

/** @param out receives the number of tiers of the pipeline's portfolio. */
RN_API rn_status rn_pipeline_tier_count(size_t* out, const rn_pipeline* pipeline);

/** @param out receives tier `tier`'s name; borrowed until the pipeline is destroyed. */
RN_API rn_status rn_pipeline_tier_name(const char** out, const rn_pipeline* pipeline,
                                       size_t tier);

/**
 * @param out receives a new handle on the pipeline's router (free it with rn_router_destroy;
 *        it stays valid after the pipeline is destroyed), or NULL when the pipeline has none.
 */
RN_API rn_status rn_pipeline_router(rn_router** out, const rn_pipeline* pipeline);

/**
 * @param out receives the calibration status name of cell (tier, column): "certified",
 *        "pooled", "escalate_all", "too_small", "final_tier" or "uncertified" (static
 *        storage). column: a task, a domain pool (the domain, "/" and "*") or "*". A
 *        pipeline without calibration reports "escalate_all" below the last tier and
 *        "final_tier" at it, for column "*" only. An unknown cell is RN_ERR_INVALID_ARGUMENT.
 */
RN_API rn_status rn_pipeline_cell_status(const char** out, const rn_pipeline* pipeline,
                                         size_t tier, const char* column);

/**
 * @param out receives the artifact's manifest as a JSON object: format_version,
 *        library_version, created_utc, system, description, training_data_hash, router_kind
 *        and files ([path, sha256] pairs). Borrowed until the pipeline is destroyed.
 */
RN_API rn_status rn_pipeline_manifest_json(const char** out, const rn_pipeline* pipeline);

/** Where one query goes before any tier is called. */
typedef struct rn_route {
  uint32_t struct_size; /**< set by the caller: sizeof(rn_route) */
  int32_t start_tier;   /**< the start rule: the task's plan start, raised by the router's skip */
  int32_t first_tier;   /**< the first tier the engine calls */
  int32_t max_tier;     /**< last tier the cascade may reach */
  double alpha;         /**< the task's alpha (portfolio) */
  double difficulty;    /**< the router's difficulty; NaN without a router */
  int32_t task_unseen;  /**< 1: the router never saw the task */
  uint32_t n_p;         /**< router p values written per query: the tier count, 0 without a
                             router */
  const char* column;   /**< threshold column applied (a task, a domain pool, "*"; "" none);
                             borrowed until the pipeline is destroyed */
} rn_route;

/**
 * Route one query (no tier is called). Equal to the engine's first call for that request.
 * @param out out->struct_size must be set; at most that many bytes are written.
 * @param out_p receives the router's p per tier (rn_route.n_p values); may be NULL. When the
 *        pipeline has a router and out_p_capacity is below the tier count, nothing is written
 *        and RN_ERR_INVALID_ARGUMENT is returned.
 * @param request_id may be NULL; it also picks the side of a randomised plan mixture.
 * Thread-safe.
 */
RN_API rn_status rn_pipeline_route(rn_route* out, double* out_p, size_t out_p_capacity,
                                   const rn_pipeline* pipeline, const char* query,
                                   const char* task, const char* request_id);

/**
 * Route n queries with one batched router call.
 * @param out n rn_route structs, every one with the same struct_size set by the caller (the
 *        array's stride is that size, so a caller built against older headers keeps working).
 * @param out_p receives n x tiers p values, row-major; may be NULL (see rn_pipeline_route).
 * @param request_ids NULL, or n ids (entries may be NULL).
 * Thread-safe.
 */
RN_API rn_status rn_pipeline_route_batch(rn_route* out, double* out_p, size_t out_p_capacity,
                                         const rn_pipeline* pipeline,
                                         const char* const* queries, const char* const* tasks,
                                         const char* const* request_ids, size_t n);

/** Free a pipeline; NULL is a no-op. Engines built from it keep their own reference. */
RN_API void rn_pipeline_destroy(rn_pipeline* pipeline);

/* ---- engine: a pipeline's cascade over C tiers ------------------------------------------- */

/**
 * A cascade engine with a pipeline's thresholds, acceptance score and router. run, run_batch,
 * record_feedback, metrics_text and cell_state are thread-safe.
 */
typedef struct rn_engine rn_engine;

/**
 * Create an engine over n_tiers C tiers, one per pipeline tier, in order and with the same
 * names (rn_tier_vtable.name).
 * @param params NULL for defaults (rn_cascade_params: pool threads, online recalibration
 *        with feedback from rn_engine_record_feedback, audit rate, decision log). Online, the
 *        thresholds follow ACI where the pipeline's calibration stored its delta(alpha)
 *        curves; elsewhere ACI and the drift monitors track the cells at calibrated deltas.
 * Ownership: on success the engine owns every vtable's user_data and calls each destroy hook
 * once, after its last call, when the engine is destroyed. On error nothing is taken.
 */
RN_API rn_status rn_engine_create(rn_engine** out, const rn_pipeline* pipeline,
                                  const struct rn_tier_vtable* tiers, size_t n_tiers,
                                  const struct rn_cascade_params* params);

/**
 * Run one request through the cascade. The pipeline fills in what the request leaves open:
 * router_p NULL: the router's scores (none without a router); alpha 0: the task's alpha;
 * start_tier negative: the pipeline's start rule. Returns RN_OK when a result was produced,
 * even one without an answer (rn_result_status). Free the result with rn_result_destroy().
 * Thread-safe.
 */
RN_API rn_status rn_engine_run(struct rn_result** out, const rn_engine* engine,
                               const struct rn_cascade_request* request);

/**
 * Run n requests on the engine's pool (router scores in one batch); results in request order.
 * @param out n result pointers, each freed with rn_result_destroy(); all NULL on error.
 * @param requests n pointers to requests. Do not call from inside a tier.
 */
RN_API rn_status rn_engine_run_batch(struct rn_result** out, const rn_engine* engine,
                                     const struct rn_cascade_request* const* requests, size_t n);

/**
 * Label of an audited request's answer (rn_result_audited() said 1): 1 acceptable, 0 not.
 * Feeds the audited violation metrics and, with online recalibration, the thresholds.
 * RN_ERR_INVALID_ARGUMENT when the request is unknown (not audited, or too old). Thread-safe.
 */
RN_API rn_status rn_engine_record_feedback(rn_engine* engine, const char* request_id,
                                           int acceptable);

/**
 * The engine's metrics in the Prometheus text format.
 * @param out receives the text and its NUL; may be NULL when capacity is 0.
 * @param out_size receives the size needed, NUL included. When it exceeds capacity nothing is
 *        written and RN_ERR_INVALID_ARGUMENT is returned: call again with a larger buffer
 *        (the text grows as requests run, so loop until RN_OK).
 * Thread-safe.
 */
RN_API rn_status rn_engine_metrics_text(char* out, size_t capacity, size_t* out_size,
                                        const rn_engine* engine);

/** State of one (tier, column) cell of a running engine. */
typedef struct rn_cell_state {
  uint32_t struct_size;   /**< set by the caller: sizeof(rn_cell_state) */
  const char* status;     /**< calibration status name (rn_pipeline_cell_status); static */
  double delta;           /**< threshold in force now (online: the latest snapshot's) */
  int32_t online;         /**< 1: the engine recalibrates online; the fields below are live */
  double alpha_t;         /**< ACI's current alpha (NaN when not online) */
  double cusum;           /**< Bernoulli CUSUM statistic */
  uint64_t labels;        /**< feedback labels seen by the cell */
  uint64_t accepted_labels, accepted_bad;
  uint64_t alarms;        /**< drift alarms raised (CUSUM and window monitors) */
  uint64_t cusum_alarms, window_alarms, stall_alarms;  /**< alarms per monitor (online) */
  double calibrated_delta; /**< threshold in the calibration (online: before any label) */
  int32_t has_curve;      /**< 1: delta moves along the stored delta(alpha) curve with ACI */
  double last_alarm_unix_s; /**< when the latest alarm fired (0: none) */
} rn_cell_state;

/** Copy the state of cell (tier, column) into out (out->struct_size must be set). Thread-safe. */
RN_API rn_status rn_engine_cell_state(rn_cell_state* out, const rn_engine* engine, size_t tier,
                                      const char* column);

/** Free an engine (then run the tiers' destroy hooks); NULL is a no-op. No run may be in
 *  progress. */
RN_API void rn_engine_destroy(rn_engine* engine);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* ROUTENLP_RN_PIPELINE_H */
