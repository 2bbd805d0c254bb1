/* C99 checks of <routenlp/rn_cascade.h>: a C tier, a failing C tier -> escalation, a cascade
 * run with its trace, and NULL misuse -> RN_ERR_INVALID_ARGUMENT. */
#include <routenlp/routenlp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

static int cascade_failures = 0;
#define CCHECK(cond)                                                          \
  do {                                                                        \
    if (!(cond)) {                                                            \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      cascade_failures++;                                                     \
    }                                                                         \
  } while (0)

typedef struct tier_state {
  int calls;
  int destroyed;
  int fail;
  double confidence;
} tier_state;

static rn_status my_tier(const rn_tier_request* request, rn_tier_reply* reply, void* user_data) {
  tier_state* s = (tier_state*)user_data;
  char text[128];
  s->calls++;
  if (s->fail) {
    rn_tier_reply_set_error(reply, "upstream 503");
    return RN_ERR_CALLBACK;
  }
  snprintf(text, sizeof text, "tier%d:%s", (int)request->tier, request->query);
  rn_tier_reply_set_text(reply, text);
  rn_tier_reply_set_confidence(reply, s->confidence);
  rn_tier_reply_set_cost(reply, 0.001);
  return RN_OK;
}

static void my_destroy(void* user_data) { ((tier_state*)user_data)->destroyed++; }

int c_consumer_cascade(void) {
  tier_state s0 = {0, 0, 1, 0.9}, s1 = {0, 0, 0, 0.9};
  rn_tier_vtable v = RN_TIER_VTABLE_INIT;
  rn_tier* tiers[2] = {NULL, NULL};
  rn_cascade* c = NULL;
  rn_cascade_params params = rn_cascade_params_default();
  rn_cascade_request rq = RN_CASCADE_REQUEST_INIT;
  rn_result* res = NULL;
  rn_trace_entry e;
  rn_calibrator* cal = NULL;
  rn_calibrator_params cp = RN_CALIBRATOR_PARAMS_INIT;
  double d = 0.0;

  v.call = my_tier;
  v.destroy = my_destroy;
  v.name = "c-small";
  v.user_data = &s0;
  CCHECK(rn_tier_create(&tiers[0], &v) == RN_OK);
  v.name = "c-large";
  v.user_data = &s1;
  CCHECK(rn_tier_create(&tiers[1], &v) == RN_OK);
  params.n_threads = 1;
  /* Without a calibrator nothing below the last tier can accept: tier 0 is not called. */
  CCHECK(rn_cascade_create(&c, tiers, 2, NULL, &params) == RN_OK);
  rq.query = "2+2";
  rq.task = "math";
  CCHECK(rn_cascade_run(&res, c, &rq) == RN_OK);
  CCHECK(rn_result_tier(res) == 1);
  e.struct_size = sizeof e;
  CCHECK(rn_result_trace_entry(&e, res, 0) == RN_OK);
  CCHECK(e.decision == RN_DECISION_SKIPPED_THRESHOLD);
  CCHECK(s0.calls == 0 && s1.calls == 1);
  rn_result_destroy(res);
  res = NULL;
  rn_cascade_destroy(c);
  s1.calls = 0;

  /* Calibrated so that tier 0 may accept: it is called, fails, and the request escalates. */
  {
    enum { N = 300 };
    static double u[N * 2];
    static uint8_t bad[N * 2];
    const char* names[2] = {"c-small", "c-large"};
    static const char* tasks[N];
    int i;
    for (i = 0; i < N; ++i) {
      u[2 * i] = 0.01 * (i % 10);
      u[2 * i + 1] = 0.0;
      bad[2 * i] = 0;
      bad[2 * i + 1] = 0;
      tasks[i] = "math";
    }
    CCHECK(rn_calibrator_create(&cal, &cp) == RN_OK);
    CCHECK(rn_calibrator_calibrate(cal, N, 2, names, tasks, u, bad, NULL, NULL) == RN_OK);
  }
  CCHECK(rn_cascade_create(&c, tiers, 2, cal, &params) == RN_OK);
  rn_calibrator_destroy(cal);
  cal = NULL;
  rn_tier_destroy(tiers[0]);
  rn_tier_destroy(tiers[1]);

  CCHECK(rn_cascade_run(&res, c, &rq) == RN_OK);
  CCHECK(rn_result_status(res) == RN_OK);
  CCHECK(rn_result_tier(res) == 1); /* tier 0 failed -> escalated */
  CCHECK(strcmp(rn_result_answer(res), "tier1:2+2") == 0);
  CCHECK(rn_result_trace_size(res) == 2);
  CCHECK(rn_result_trace_entry(&e, res, 0) == RN_OK);
  CCHECK(e.decision == RN_DECISION_ERROR);
  CCHECK(e.error_status == RN_ERR_TIER);
  CCHECK(strstr(e.error_message, "upstream 503") != NULL);
  CCHECK(rn_result_trace_entry(&e, res, 1) == RN_OK);
  CCHECK(e.decision == RN_DECISION_FINAL);
  rn_result_destroy(res);
  res = NULL;
  CCHECK(s0.calls == 1 && s1.calls == 1);

  /* NULL misuse. */
  CCHECK(rn_cascade_run(NULL, c, &rq) == RN_ERR_INVALID_ARGUMENT);
  CCHECK(rn_cascade_run(&res, NULL, &rq) == RN_ERR_INVALID_ARGUMENT);
  CCHECK(strstr(rn_last_error(), "cascade") != NULL);
  CCHECK(rn_cascade_run(&res, c, NULL) == RN_ERR_INVALID_ARGUMENT);
  CCHECK(rn_tier_create(NULL, &v) == RN_ERR_INVALID_ARGUMENT);
  CCHECK(rn_tier_create(&tiers[0], NULL) == RN_ERR_INVALID_ARGUMENT);
  CCHECK(rn_calibrator_create(NULL, &cp) == RN_ERR_INVALID_ARGUMENT);
  CCHECK(rn_calibrator_threshold(&d, NULL, 0, "x") == RN_ERR_INVALID_ARGUMENT);
  CCHECK(rn_cascade_metrics_text(NULL, c) == RN_ERR_INVALID_ARGUMENT);
  CCHECK(rn_cascade_record_outcome(NULL, "x", 1) == RN_ERR_INVALID_ARGUMENT);
  CCHECK(rn_result_answer(NULL) == NULL);
  CCHECK(rn_calibrator_create(&cal, &cp) == RN_OK);
  CCHECK(rn_calibrator_threshold(&d, cal, 0, "x") == RN_ERR_INVALID_ARGUMENT); /* uncalibrated */
  rn_calibrator_destroy(cal);
  cal = NULL;
  /* Quality-target allocation: checked; a caller of the 0.1 layout (smaller struct) still works. */
  cp.quality_target_mode = 1;
  cp.allocation = 7;
  CCHECK(rn_calibrator_create(&cal, &cp) == RN_ERR_INVALID_ARGUMENT);
  CCHECK(strstr(rn_last_error(), "allocation") != NULL);
  cp.allocation = RN_ALLOCATION_PER_TASK;
  cp.qt_epsilon = 1.5;
  CCHECK(rn_calibrator_create(&cal, &cp) == RN_ERR_INVALID_ARGUMENT);
  cp.qt_epsilon = 0.2;
  cp.struct_size = (uint32_t)(offsetof(rn_calibrator_params, quality_target) + sizeof(double));
  CCHECK(rn_calibrator_create(&cal, &cp) == RN_OK);
  rn_calibrator_destroy(cal);
  cal = NULL;
  cp.struct_size = sizeof cp;

  rn_cascade_destroy(c);
  CCHECK(s0.destroyed == 1 && s1.destroyed == 1);
  rn_cascade_destroy(NULL);
  rn_result_destroy(NULL);
  return cascade_failures;
}
