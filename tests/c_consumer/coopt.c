/* C99 checks of <routenlp/rn_coopt.h>: a host whose "tier" token is a bitmask of learnt topics. */
#include <routenlp/routenlp.h>
#include <stdio.h>
#include <string.h>

static int coopt_failures = 0;
#define CCHECK(cond)                                                              \
  do {                                                                            \
    if (!(cond)) {                                                                \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);    \
      coopt_failures++;                                                           \
    }                                                                             \
  } while (0)

static const char* topic_words[4] = {"refund charged twice payment", "card arrival delivery mail",
                                     "password reset login locked", "exchange rate currency foreign"};

typedef struct host {
  int distill_calls;
  int fail_on_call; /* distill returns an error on this call (0: never) */
} host;

static int topic_of(const char* q) {
  int t;
  for (t = 0; t < 4; ++t)
    if (strncmp(q, topic_words[t], 6) == 0) return t;
  return -1;
}

static rn_status evaluate(uint64_t tier, uint64_t routing, rn_coopt_eval* ev, void* user_data) {
  char buf[4][96];
  int i, accepted = 0;
  double cost = 0.0;
  rn_coopt_metrics m = RN_COOPT_METRICS_INIT;
  (void)routing;
  (void)user_data;
  for (i = 0; i < 40; ++i) {
    rn_trace_record r;
    int t = i % 4;
    int known = (int)((tier >> t) & 1u);
    sprintf(buf[t], "%s number%d", topic_words[t], i % 7);
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    r.query = buf[t];
    r.task = "support";
    r.accepted = known;
    r.acceptable = -1;
    r.final_tier = known ? 0 : 1;
    r.tier_cost = 0.01;
    r.total_cost = known ? 0.01 : 1.01;
    r.final_response = topic_words[t];
    if (rn_coopt_eval_add_record(ev, &r) != RN_OK) return RN_ERR_CALLBACK;
    accepted += known;
    cost += r.total_cost;
  }
  m.cost = cost / 40;
  m.quality = 1.0;
  m.t1_acceptance = accepted / 40.0;
  m.cost_ratio = m.cost / 1.0;
  return rn_coopt_eval_set_metrics(ev, &m);
}

static rn_status distill(uint64_t* out_tier, uint64_t tier, const rn_distill_example* ex, size_t n,
                         void* user_data) {
  host* h = (host*)user_data;
  int count[4] = {0, 0, 0, 0};
  size_t i;
  int t;
  h->distill_calls++;
  if (h->fail_on_call == h->distill_calls) return RN_ERR_CALLBACK;
  for (i = 0; i < n; ++i) {
    t = topic_of(ex[i].query);
    if (t >= 0) count[t]++;
  }
  *out_tier = tier;
  for (t = 0; t < 4; ++t)
    if (count[t] >= 3) *out_tier |= (uint64_t)1u << t;
  return RN_OK;
}

int c_consumer_coopt(void) {
  host h;
  rn_coopt_params p = RN_COOPT_PARAMS_INIT;
  rn_coopt_result* res = NULL;
  uint64_t tier = 0, routing = 0;
  size_t n = 0;
  const char* s = NULL;
  rn_coopt_iteration it;

  CCHECK(rn_coopt_params_default().budget == 256);
  CCHECK(rn_coopt_run(&res, &p, 0, 0) == RN_ERR_INVALID_ARGUMENT); /* no callbacks */
  CCHECK(strstr(rn_last_error(), "evaluate") != NULL);
  CCHECK(res == NULL);

  h.distill_calls = 0;
  h.fail_on_call = 0;
  p.evaluate = evaluate;
  p.distill = distill;
  p.budget = 12;
  p.top_clusters = 1;
  p.k_max = 3;
  p.member_share = 1.0;
  p.user_data = &h;
  CCHECK(rn_coopt_run(&res, &p, 8u, 0) == RN_OK);
  CCHECK(rn_coopt_result_iterations(&n, res) == RN_OK && n == 4);
  CCHECK(rn_coopt_result_state(&tier, &routing, res) == RN_OK);
  CCHECK(tier == 15u); /* topic 3 known at start; one learnt per iteration */
  it.struct_size = 0; /* struct_size is checked */
  CCHECK(rn_coopt_result_iteration(&it, res, 1) == RN_ERR_INVALID_ARGUMENT);
  it.struct_size = sizeof it;
  CCHECK(rn_coopt_result_iteration(&it, res, 1) == RN_OK && strcmp(it.status, "ok") == 0);
  CCHECK(it.metrics.struct_size == sizeof it.metrics && it.metrics.cost > 0.0);
  CCHECK(it.examples == 10 && it.gain > 0.0); /* no pool: the top cluster's 10 members */
  CCHECK(rn_coopt_result_iteration(&it, res, 9) == RN_ERR_INVALID_ARGUMENT);
  CCHECK(rn_coopt_result_log_jsonl(&s, res) == RN_OK && strstr(s, "\"t1_acceptance\"") != NULL);
  rn_coopt_result_destroy(res);
  res = NULL;

  /* A failing distill callback: reported, previous tier kept. */
  h.distill_calls = 0;
  h.fail_on_call = 2;
  CCHECK(rn_coopt_run(&res, &p, 8u, 0) == RN_OK);
  CCHECK(rn_coopt_result_state(&tier, &routing, res) == RN_OK && tier == (8u | 1u) + 0u);
  CCHECK(rn_coopt_result_stop_reason(&s, res) == RN_OK && strcmp(s, "distill_failed") == 0);
  CCHECK(rn_coopt_result_iterations(&n, res) == RN_OK && n == 3);
  CCHECK(rn_coopt_result_iteration(&it, res, 2) == RN_OK && strstr(it.error, "RN_ERR_CALLBACK") != NULL);
  rn_coopt_result_destroy(res);
  rn_coopt_result_destroy(NULL);
  return coopt_failures;
}
