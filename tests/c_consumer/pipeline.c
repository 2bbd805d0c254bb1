/* C99 checks of <routenlp/rn_pipeline.h> on the artifact make_pipeline_artifact writes (its
 * header comment lists the router p and thresholds asserted here): router load and scoring,
 * pipeline routing (one and a batch), an engine over two C tiers with the pipeline's and with
 * the caller's router scores, feedback, metrics, cell states, router p through the plain
 * rn_cascade_run, and misuse -> the right rn_status. */
#include <routenlp/routenlp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef RN_C_TEST_PIPELINE
#error "RN_C_TEST_PIPELINE (the artifact directory) must be defined"
#endif

static int pipeline_failures = 0;
#define PCHECK(cond)                                                           \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: CHECK failed: %s (last error: %s)\n", __FILE__, __LINE__, #cond, \
              rn_last_error());                                                \
      pipeline_failures++;                                                     \
    }                                                                          \
  } while (0)

static int near(double a, double b) { return a - b < 1e-12 && b - a < 1e-12; }

typedef struct host_tier {
  int calls;
  int destroyed;
  int report_confidence; /* 0: no confidence, so u = 1 - router p */
} host_tier;

static rn_status host_call(const rn_tier_request* request, rn_tier_reply* reply, void* user_data) {
  host_tier* s = (host_tier*)user_data;
  char text[160];
  s->calls++;
  snprintf(text, sizeof text, "t%d:%s:%s", (int)request->tier, request->task, request->query);
  rn_tier_reply_set_text(reply, text);
  if (s->report_confidence) rn_tier_reply_set_confidence(reply, 0.99);
  rn_tier_reply_set_cost(reply, request->tier == 0 ? 0.001 : 0.01);
  return RN_OK;
}

static void host_destroy(void* user_data) { ((host_tier*)user_data)->destroyed++; }

static void check_router(const rn_pipeline* pl) {
  rn_router* r = NULL;
  rn_router* from_pipeline = NULL;
  size_t n = 0;
  const char* name = NULL;
  const char* queries[3] = {"what is 2+2", "capital of France", "balance this equation"};
  const char* tasks[3] = {"math", "qa", "chemistry"};
  double sc[6], sc2[6], difficulty[3];
  int i;

  PCHECK(rn_router_load(&r, RN_C_TEST_PIPELINE "/router") == RN_OK);
  PCHECK(rn_router_tier_count(&n, r) == RN_OK && n == 2);
  PCHECK(rn_router_tier_name(&name, r, 1) == RN_OK && strcmp(name, "large") == 0);
  PCHECK(rn_router_name(&name, r) == RN_OK && strlen(name) > 0);
  PCHECK(rn_router_score(sc, 6, difficulty, r, queries, tasks, 3) == RN_OK);
  PCHECK(near(sc[0], 0.75) && near(sc[1], 1.0));   /* math */
  PCHECK(near(sc[2], 0.2) && near(sc[3], 0.9));    /* qa */
  PCHECK(near(sc[4], 0.475) && near(sc[5], 0.95)); /* unseen: overall rates */
  for (i = 0; i < 3; ++i) PCHECK(difficulty[i] >= 0.0 && difficulty[i] <= 1.0);
  /* The pipeline's own router handle scores the same; it outlives nothing it borrows. */
  PCHECK(rn_pipeline_router(&from_pipeline, pl) == RN_OK && from_pipeline != NULL);
  PCHECK(rn_router_score(sc2, 6, NULL, from_pipeline, queries, tasks, 3) == RN_OK);
  PCHECK(memcmp(sc, sc2, sizeof sc) == 0);

  /* Misuse. */
  PCHECK(rn_router_score(sc, 5, NULL, r, queries, tasks, 3) == RN_ERR_INVALID_ARGUMENT);
  PCHECK(strstr(rn_last_error(), "out_p_capacity") != NULL);
  PCHECK(rn_router_score(sc, 6, NULL, NULL, queries, tasks, 3) == RN_ERR_INVALID_ARGUMENT);
  PCHECK(rn_router_score(sc, 6, NULL, r, queries, NULL, 3) == RN_ERR_INVALID_ARGUMENT);
  PCHECK(rn_router_tier_name(&name, r, 2) == RN_ERR_INVALID_ARGUMENT);
  PCHECK(rn_router_tier_count(NULL, r) == RN_ERR_INVALID_ARGUMENT);
  rn_router_destroy(from_pipeline);
  rn_router_destroy(r);
  r = (rn_router*)1; /* a failed load must hand back NULL */
  PCHECK(rn_router_load(&r, RN_C_TEST_PIPELINE "/no-such-router") != RN_OK && r == NULL);
  rn_router_destroy(NULL);
}

static void check_routing(const rn_pipeline* p) {
  rn_route route;
  rn_route batch[3];
  double pr[2], pb[6];
  const char* queries[3] = {"what is 2+2", "capital of France", "balance this equation"};
  const char* tasks[3] = {"math", "qa", "chemistry"};
  const char* status = NULL;
  int i;

  memset(&route, 0, sizeof route);
  route.struct_size = sizeof route;
  PCHECK(rn_pipeline_route(&route, pr, 2, p, "what is 2+2", "math", "id-1") == RN_OK);
  PCHECK(route.n_p == 2 && near(pr[0], 0.75) && near(pr[1], 1.0));
  PCHECK(route.start_tier == 0 && route.first_tier == 0 && route.max_tier == 1);
  PCHECK(strcmp(route.column, "math") == 0);
  PCHECK(near(route.alpha, 0.1));
  PCHECK(route.task_unseen == 0 && route.difficulty >= 0.0 && route.difficulty <= 1.0);
  /* out_p may be NULL: only the struct is filled. */
  PCHECK(rn_pipeline_route(&route, NULL, 0, p, "x", "chemistry", NULL) == RN_OK);
  PCHECK(route.task_unseen == 1 && strcmp(route.column, "*") == 0);

  for (i = 0; i < 3; ++i) {
    memset(&batch[i], 0, sizeof batch[i]);
    batch[i].struct_size = sizeof batch[i];
  }
  PCHECK(rn_pipeline_route_batch(batch, pb, 6, p, queries, tasks, NULL, 3) == RN_OK);
  PCHECK(near(pb[0], 0.75) && near(pb[2], 0.2) && near(pb[4], 0.475));
  PCHECK(strcmp(batch[0].column, "math") == 0 && strcmp(batch[1].column, "qa") == 0 &&
         strcmp(batch[2].column, "*") == 0);
  PCHECK(batch[2].task_unseen == 1 && batch[0].task_unseen == 0);

  PCHECK(rn_pipeline_cell_status(&status, p, 0, "math") == RN_OK &&
         strcmp(status, "certified") == 0);
  PCHECK(rn_pipeline_cell_status(&status, p, 1, "qa") == RN_OK &&
         strcmp(status, "final_tier") == 0);

  /* Misuse: wrong struct_size, small p buffer, mixed struct sizes, unknown cell. */
  route.struct_size = 0;
  PCHECK(rn_pipeline_route(&route, pr, 2, p, "q", "math", NULL) == RN_ERR_INVALID_ARGUMENT);
  route.struct_size = sizeof route + 8;
  PCHECK(rn_pipeline_route(&route, pr, 2, p, "q", "math", NULL) == RN_ERR_INVALID_ARGUMENT);
  PCHECK(strstr(rn_last_error(), "struct_size") != NULL);
  route.struct_size = sizeof route;
  PCHECK(rn_pipeline_route(&route, pr, 1, p, "q", "math", NULL) == RN_ERR_INVALID_ARGUMENT);
  PCHECK(rn_pipeline_route(&route, pr, 2, NULL, "q", "math", NULL) == RN_ERR_INVALID_ARGUMENT);
  PCHECK(rn_pipeline_route(&route, pr, 2, p, NULL, "math", NULL) == RN_ERR_INVALID_ARGUMENT);
  PCHECK(rn_pipeline_route_batch(batch, pb, 5, p, queries, tasks, NULL, 3) ==
         RN_ERR_INVALID_ARGUMENT);
  batch[1].struct_size = 4;
  PCHECK(rn_pipeline_route_batch(batch, pb, 6, p, queries, tasks, NULL, 3) ==
         RN_ERR_INVALID_ARGUMENT);
  PCHECK(rn_pipeline_cell_status(&status, p, 0, "no-such-task") == RN_ERR_INVALID_ARGUMENT);
  PCHECK(rn_pipeline_cell_status(&status, p, 2, "math") == RN_ERR_INVALID_ARGUMENT);
}

static void check_engine(const rn_pipeline* p) {
  host_tier small = {0, 0, 0}, large = {0, 0, 1};
  rn_tier_vtable v[2] = {RN_TIER_VTABLE_INIT, RN_TIER_VTABLE_INIT};
  rn_cascade_params params = RN_CASCADE_PARAMS_INIT;
  rn_cascade_request rq = RN_CASCADE_REQUEST_INIT;
  rn_cascade_request rb[3] = {RN_CASCADE_REQUEST_INIT, RN_CASCADE_REQUEST_INIT,
                              RN_CASCADE_REQUEST_INIT};
  const rn_cascade_request* rbp[3];
  rn_result* res = NULL;
  rn_result* results[3] = {NULL, NULL, NULL};
  rn_engine* e = NULL;
  rn_cell_state cs;
  char small_buf[8];
  char* metrics = NULL;
  size_t need = 0;
  const double caller_p[2] = {0.1, 0.9};
  int i;

  v[0].name = "small";
  v[0].call = host_call;
  v[0].destroy = host_destroy;
  v[0].user_data = &small;
  v[1] = v[0];
  v[1].name = "large";
  v[1].user_data = &large;
  params.n_threads = 2;
  params.online = 1;
  params.audit_rate = 1.0; /* every request may receive feedback */

  /* Names must match the pipeline's tiers; on error nothing is taken. */
  v[1].name = "huge";
  PCHECK(rn_engine_create(&e, p, v, 2, &params) == RN_ERR_INVALID_ARGUMENT && e == NULL);
  PCHECK(strstr(rn_last_error(), "huge") != NULL);
  PCHECK(rn_engine_create(&e, p, v, 1, &params) == RN_ERR_INVALID_ARGUMENT);
  PCHECK(small.destroyed == 0 && large.destroyed == 0);
  v[1].name = "large";
  PCHECK(rn_engine_create(&e, p, v, 2, &params) == RN_OK && e != NULL);

  /* The pipeline's router: math p = 0.75 -> u = 0.25 is accepted at the small tier. */
  rq.query = "what is 2+2";
  rq.task = "math";
  rq.request_id = "req-math";
  PCHECK(rn_engine_run(&res, e, &rq) == RN_OK);
  PCHECK(rn_result_status(res) == RN_OK && rn_result_tier(res) == 0);
  PCHECK(strcmp(rn_result_answer(res), "t0:math:what is 2+2") == 0);
  PCHECK(rn_result_audited(res) == 1);
  PCHECK(strcmp(rn_result_request_id(res), "req-math") == 0);
  rn_result_destroy(res);
  res = NULL;
  /* qa p = 0.2 -> u = 0.8: escalated to the large tier. */
  rq.task = "qa";
  rq.request_id = "req-qa";
  PCHECK(rn_engine_run(&res, e, &rq) == RN_OK);
  PCHECK(rn_result_tier(res) == 1 && rn_result_trace_size(res) == 2);
  rn_result_destroy(res);
  res = NULL;
  /* The caller's router scores replace the router's: math with p = 0.1 escalates. */
  rq.task = "math";
  rq.request_id = "req-caller-p";
  rq.router_p = caller_p;
  rq.n_router_p = 2;
  PCHECK(rn_engine_run(&res, e, &rq) == RN_OK);
  PCHECK(rn_result_tier(res) == 1);
  rn_result_destroy(res);
  res = NULL;
  PCHECK(small.calls == 3 && large.calls == 2);

  /* A batch: results in request order. */
  for (i = 0; i < 3; ++i) {
    rb[i].query = "batch query";
    rb[i].task = i == 1 ? "qa" : "math";
    rbp[i] = &rb[i];
  }
  rb[2].router_p = caller_p;
  rb[2].n_router_p = 2;
  PCHECK(rn_engine_run_batch(results, e, rbp, 3) == RN_OK);
  PCHECK(rn_result_tier(results[0]) == 0 && rn_result_tier(results[1]) == 1 &&
         rn_result_tier(results[2]) == 1);
  for (i = 0; i < 3; ++i) rn_result_destroy(results[i]);

  /* Feedback for the math request the small tier answered reaches its cell. */
  PCHECK(rn_engine_record_feedback(e, "req-math", 1) == RN_OK);
  PCHECK(rn_engine_record_feedback(e, "never-sent", 1) == RN_ERR_INVALID_ARGUMENT);
  memset(&cs, 0, sizeof cs);
  cs.struct_size = sizeof cs;
  PCHECK(rn_engine_cell_state(&cs, e, 0, "math") == RN_OK);
  PCHECK(cs.online == 1 && strcmp(cs.status, "certified") == 0);
  PCHECK(cs.labels == 1 && cs.accepted_labels == 1 && cs.accepted_bad == 0 && cs.alarms == 0);
  PCHECK(cs.delta > 0.25 && cs.delta < 0.8);
  PCHECK(rn_engine_cell_state(&cs, e, 0, "no-such-task") == RN_ERR_INVALID_ARGUMENT);
  cs.struct_size = 3;
  PCHECK(rn_engine_cell_state(&cs, e, 0, "math") == RN_ERR_INVALID_ARGUMENT);

  /* Metrics: too small a buffer says how much is needed. */
  PCHECK(rn_engine_metrics_text(small_buf, sizeof small_buf, &need, e) == RN_ERR_INVALID_ARGUMENT);
  PCHECK(need > sizeof small_buf && small_buf[0] == '\0');
  PCHECK(rn_engine_metrics_text(NULL, 0, &need, e) == RN_ERR_INVALID_ARGUMENT && need > 1);
  metrics = (char*)malloc(need + 4096);
  PCHECK(metrics != NULL);
  if (metrics) {
    PCHECK(rn_engine_metrics_text(metrics, need + 4096, &need, e) == RN_OK);
    PCHECK(strlen(metrics) + 1 == need);
    PCHECK(strstr(metrics, "routenlp") != NULL);
    free(metrics);
  }

  /* Misuse of runs. */
  rq.router_p = NULL;
  rq.n_router_p = 0;
  rq.start_tier = 2;
  PCHECK(rn_engine_run(&res, e, &rq) == RN_ERR_INVALID_ARGUMENT && res == NULL);
  PCHECK(strstr(rn_last_error(), "start_tier") != NULL);
  rq.start_tier = -1;
  rq.router_p = caller_p;
  rq.n_router_p = 1;
  PCHECK(rn_engine_run(&res, e, &rq) == RN_ERR_INVALID_ARGUMENT);
  rq.n_router_p = 2;
  rq.struct_size = 2;
  PCHECK(rn_engine_run(&res, e, &rq) == RN_ERR_INVALID_ARGUMENT);
  rq.struct_size = sizeof rq;
  PCHECK(rn_engine_run(&res, NULL, &rq) == RN_ERR_INVALID_ARGUMENT);
  PCHECK(rn_engine_run(NULL, e, &rq) == RN_ERR_INVALID_ARGUMENT);
  rbp[1] = NULL;
  PCHECK(rn_engine_run_batch(results, e, rbp, 3) == RN_ERR_INVALID_ARGUMENT);
  PCHECK(results[0] == NULL && results[2] == NULL);
  PCHECK(rn_engine_metrics_text(NULL, 0, NULL, e) == RN_ERR_INVALID_ARGUMENT);
  PCHECK(rn_engine_record_feedback(NULL, "x", 1) == RN_ERR_INVALID_ARGUMENT);

  PCHECK(small.destroyed == 0);
  rn_engine_destroy(e);
  PCHECK(small.destroyed == 1 && large.destroyed == 1);
  rn_engine_destroy(NULL);
}

/* Online recalibration moves the cell's threshold along the stored delta(alpha) curve: bad
 * labels on accepted answers make it stricter without switching the cell off. */
static void check_online_curve(const rn_pipeline* p) {
  host_tier small = {0, 0, 0}, large = {0, 0, 1};
  rn_tier_vtable v[2] = {RN_TIER_VTABLE_INIT, RN_TIER_VTABLE_INIT};
  rn_cascade_params params = RN_CASCADE_PARAMS_INIT;
  rn_cascade_request rq = RN_CASCADE_REQUEST_INIT;
  rn_result* res = NULL;
  rn_engine* e = NULL;
  rn_cell_state cs;
  char id[32];
  int i;

  v[0].name = "small";
  v[0].call = host_call;
  v[0].user_data = &small;
  v[1] = v[0];
  v[1].name = "large";
  v[1].user_data = &large;
  params.online = 1;
  params.audit_rate = 1.0;
  PCHECK(rn_engine_create(&e, p, v, 2, &params) == RN_OK);
  memset(&cs, 0, sizeof cs);
  cs.struct_size = sizeof cs;
  PCHECK(rn_engine_cell_state(&cs, e, 0, "math") == RN_OK);
  PCHECK(cs.has_curve == 1 && cs.delta == cs.calibrated_delta && cs.labels == 0);
  rq.query = "q";
  rq.task = "math";
  for (i = 0; i < 8; ++i) {
    sprintf(id, "online-%d", i);
    rq.request_id = id;
    PCHECK(rn_engine_run(&res, e, &rq) == RN_OK);
    PCHECK(rn_result_tier(res) == 0); /* still accepted: the threshold moves by small steps */
    rn_result_destroy(res);
    res = NULL;
    PCHECK(rn_engine_record_feedback(e, id, 0) == RN_OK);
  }
  PCHECK(rn_engine_cell_state(&cs, e, 0, "math") == RN_OK);
  PCHECK(cs.labels == 8 && cs.accepted_bad == 8);
  PCHECK(cs.alpha_t < 0.1);
  /* Stricter, and still a threshold on the curve (not the escalate-everything -inf). */
  PCHECK(cs.delta < cs.calibrated_delta && cs.delta > -1e300);
  PCHECK(cs.cusum_alarms + cs.window_alarms + cs.stall_alarms == cs.alarms);
  rn_engine_destroy(e);
}

/* Router p through the plain cascade, with the artifact's calibration and an old-size request. */
static void check_cascade_router_p(void) {
  host_tier small = {0, 0, 0}, large = {0, 0, 1};
  rn_tier_vtable v = RN_TIER_VTABLE_INIT;
  rn_tier* tiers[2] = {NULL, NULL};
  rn_calibrator* cal = NULL;
  rn_cascade* c = NULL;
  rn_result* res = NULL;
  rn_cascade_request rq = RN_CASCADE_REQUEST_INIT;
  const double high[2] = {0.95, 1.0}, low[2] = {0.1, 1.0};

  PCHECK(rn_calibrator_load(&cal, RN_C_TEST_PIPELINE "/calibration.json") == RN_OK);
  v.call = host_call;
  v.name = "small";
  v.user_data = &small;
  PCHECK(rn_tier_create(&tiers[0], &v) == RN_OK);
  v.name = "large";
  v.user_data = &large;
  PCHECK(rn_tier_create(&tiers[1], &v) == RN_OK);
  PCHECK(rn_cascade_create(&c, tiers, 2, cal, NULL) == RN_OK);
  rq.query = "q";
  rq.task = "math";
  rq.router_p = high;
  rq.n_router_p = 2;
  PCHECK(rn_cascade_run(&res, c, &rq) == RN_OK && rn_result_tier(res) == 0);
  rn_result_destroy(res);
  rq.router_p = low;
  PCHECK(rn_cascade_run(&res, c, &rq) == RN_OK && rn_result_tier(res) == 1);
  rn_result_destroy(res);
  /* A 0.1 caller's request (no router fields): no router p, so no u for the small tier. */
  rq.struct_size = (uint32_t)(offsetof(rn_cascade_request, deadline_ms) + sizeof(double));
  PCHECK(rn_cascade_run(&res, c, &rq) == RN_OK && rn_result_tier(res) == 1);
  rn_result_destroy(res);
  res = NULL;
  rq.struct_size = sizeof rq;
  rq.n_router_p = 3;
  PCHECK(rn_cascade_run(&res, c, &rq) == RN_ERR_INVALID_ARGUMENT);
  rn_cascade_destroy(c);
  rn_tier_destroy(tiers[0]);
  rn_tier_destroy(tiers[1]);
  rn_calibrator_destroy(cal);
}

int c_consumer_pipeline(void) {
  rn_pipeline* p = NULL;
  size_t n = 0;
  const char* name = NULL;

  PCHECK(rn_pipeline_load(&p, RN_C_TEST_PIPELINE) == RN_OK);
  if (!p) return pipeline_failures;
  PCHECK(rn_pipeline_tier_count(&n, p) == RN_OK && n == 2);
  PCHECK(rn_pipeline_tier_name(&name, p, 0) == RN_OK && strcmp(name, "small") == 0);
  PCHECK(rn_pipeline_tier_name(&name, p, 2) == RN_ERR_INVALID_ARGUMENT);
  PCHECK(rn_pipeline_manifest_json(&name, p) == RN_OK && name[0] == '{');
  PCHECK(strstr(name, "\"router_kind\":\"task-prior\"") != NULL);
  PCHECK(strstr(name, "calibration.json") != NULL);
  PCHECK(rn_pipeline_manifest_json(NULL, p) == RN_ERR_INVALID_ARGUMENT);
  check_router(p);
  check_routing(p);
  check_engine(p);
  check_online_curve(p);
  check_cascade_router_p();
  rn_pipeline_destroy(p);

  {
    rn_pipeline* q = (rn_pipeline*)1;
    PCHECK(rn_pipeline_load(&q, RN_C_TEST_PIPELINE "/does-not-exist") == RN_ERR_IO && q == NULL);
    PCHECK(strstr(rn_last_error(), "does-not-exist") != NULL);
    PCHECK(rn_pipeline_load(NULL, RN_C_TEST_PIPELINE) == RN_ERR_INVALID_ARGUMENT);
    PCHECK(rn_pipeline_tier_count(&n, NULL) == RN_ERR_INVALID_ARGUMENT);
  }
  rn_pipeline_destroy(NULL);
  return pipeline_failures;
}
