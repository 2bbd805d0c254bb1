// Co-optimization: clustering, k selection, failure analysis, distillation selection, the loop.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <algorithm>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "common/atomic_file.hpp"
#include "common/text_io.hpp"
#include "routenlp/cascade/result.hpp"
#include "routenlp/cascade/decision_log.hpp"
#include "routenlp/coopt/coopt.hpp"
#include "routenlp/error.hpp"
#include "routenlp/coopt/failure_analyzer.hpp"

using namespace routenlp;

namespace {

// n points around each of k well-separated centres in d dimensions (fixed seed).
Embeddings planted(int k, int per, int d, double spread, uint64_t seed, std::vector<int>* truth) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> g(0.0, 1.0);
  std::vector<std::vector<double>> centres(static_cast<size_t>(k), std::vector<double>(static_cast<size_t>(d)));
  for (auto& c : centres)
    for (auto& v : c) v = 10.0 * g(rng);
  Embeddings pts;
  for (int i = 0; i < k * per; ++i) {
    int c = i % k;
    std::vector<float> p(static_cast<size_t>(d));
    for (int j = 0; j < d; ++j) p[static_cast<size_t>(j)] = static_cast<float>(centres[static_cast<size_t>(c)][static_cast<size_t>(j)] + spread * g(rng));
    pts.push_back(p);
    if (truth) truth->push_back(c);
  }
  return pts;
}

}  // namespace

TEST_CASE("adjusted Rand index matches known values", "[coopt]") {
  CHECK(adjusted_rand_index({0, 0, 1, 1}, {1, 1, 0, 0}) == Approx(1.0));
  CHECK(adjusted_rand_index({0, 0, 0, 1, 1, 1}, {0, 0, 1, 1, 2, 2}) == Approx(0.2424242424).epsilon(1e-6));
  // sklearn: adjusted_rand_score([0,0,1,2],[0,0,1,1]) = 0.5714285714
  CHECK(adjusted_rand_index({0, 0, 1, 2}, {0, 0, 1, 1}) == Approx(0.5714285714).epsilon(1e-6));
  CHECK(adjusted_rand_index({0, 1, 0, 1}, {0, 0, 1, 1}) < 0.0);
  CHECK_THROWS_AS(adjusted_rand_index({0, 1}, {0}), Error);
}

TEST_CASE("k-means++ recovers planted clusters and is deterministic", "[coopt]") {
  std::vector<int> truth;
  Embeddings pts = planted(5, 60, 8, 1.0, 7, &truth);
  KMeansOptions o;
  o.k = 5;
  o.seed = 3;
  KMeansResult r = kmeans(pts, o);
  CHECK(adjusted_rand_index(truth, r.labels) >= 0.9);
  KMeansResult r2 = kmeans(pts, o);
  CHECK(r2.labels == r.labels);
  CHECK(r2.inertia == r.inertia);
  o.k = 0;
  CHECK_THROWS_AS(kmeans(pts, o), Error);
  pts[3][2] = std::nanf("");
  o.k = 2;
  CHECK_THROWS_AS(kmeans(pts, o), Error);
}

TEST_CASE("silhouette picks the planted k", "[coopt]") {
  for (int k : {3, 6}) {
    std::vector<int> truth;
    Embeddings pts = planted(k, 40, 6, 1.0, 11 + static_cast<uint64_t>(k), &truth);
    KMeansOptions o;
    o.seed = 5;
    KSelection sel = select_k(pts, 2, 10, o);
    CHECK(sel.best_k == k);
    CHECK(sel.ks.size() == 9);
    CHECK(adjusted_rand_index(truth, sel.best.labels) >= 0.9);
  }
  // Silhouette of a perfect two-blob split is near 1; of a random split near 0.
  std::vector<int> truth;
  Embeddings pts = planted(2, 50, 4, 0.5, 1, &truth);
  CHECK(silhouette_score(pts, truth) > 0.8);
  std::vector<int> shuffled(truth.size());
  for (size_t i = 0; i < shuffled.size(); ++i) shuffled[i] = static_cast<int>((i * 7 / 3) % 2);
  CHECK(std::abs(silhouette_score(pts, shuffled)) < 0.2);
}

namespace {

// Five topics; every query is "<topic words> <filler>". Failures come from topics 0 and 1.
const char* kTopics[5][4] = {
    {"refund", "charged", "twice", "payment"},
    {"card", "arrival", "delivery", "mail"},
    {"password", "reset", "login", "locked"},
    {"exchange", "rate", "currency", "foreign"},
    {"transfer", "pending", "bank", "account"}};

std::string topic_query(int topic, int i) {
  std::string q;
  for (int w = 0; w < 3; ++w) q += std::string(kTopics[topic][(i + w) % 4]) + " ";
  q += "please help number" + std::to_string(i % 13);
  return q;
}

int topic_of(const std::string& q) {
  for (int t = 0; t < 5; ++t)
    for (auto* w : kTopics[t])
      if (q.find(w) != std::string::npos) return t;
  return -1;
}

std::vector<TraceRecord> synthetic_trace(int n, std::set<int> failing_topics) {
  std::vector<TraceRecord> out;
  for (int i = 0; i < n; ++i) {
    int t = i % 5;
    TraceRecord r;
    r.query_id = "q" + std::to_string(i);
    r.query = topic_query(t, i);
    r.task = t < 3 ? "support" : "fx";
    r.tier = 0;
    r.tier_cost = 0.00001;
    bool fail = failing_topics.count(t) > 0;
    r.accepted = !fail;
    r.final_tier = fail ? 1 : 0;
    r.total_cost = fail ? (t == 0 ? 0.01 : 0.005) + r.tier_cost : r.tier_cost;
    r.final_response = "label" + std::to_string(t);
    r.acceptable = !fail;
    out.push_back(r);
  }
  return out;
}

}  // namespace

TEST_CASE("failure analyzer clusters, ranks by cost impact and describes", "[coopt]") {
  auto trace = synthetic_trace(200, {0, 1});
  FailureAnalyzerOptions o;
  o.k_max = 6;
  FailureAnalyzer fa(nullptr, "", o);
  FailureReport rep = fa.analyze(trace);
  CHECK(rep.records == 200);
  CHECK(rep.failures_total == 80);
  REQUIRE(rep.clusters.size() == 2);
  CHECK(rep.embedding == "tfidf");
  // Topic 0 failures cost twice as much to escalate: ranked first.
  CHECK(rep.clusters[0].size == 40);
  CHECK(topic_of(rep.clusters[0].examples.at(0)) == 0);
  CHECK(rep.clusters[0].cost_impact == Approx(40 * 0.01));
  CHECK(rep.clusters[1].cost_impact == Approx(40 * 0.005));
  std::set<std::string> terms0;
  for (auto& [t, s] : rep.clusters[0].terms) terms0.insert(t);
  CHECK(terms0.count("refund") == 1);
  CHECK(terms0.count("please") == 0);  // in every query: not distinguishing
  CHECK(rep.clusters[0].task_mix.at(0).first == "support");
  // JSON round trip of the key fields; atomic save.
  std::string path = std::string(RN_BINARY_DIR) + "/coopt_report.json";
  rep.save(path);
  std::string text = detail::read_file(path);
  CHECK(text.find("\"cost_impact_usd\"") != std::string::npos);
  CHECK(text.find("\"member_ids\"") != std::string::npos);
  // Deterministic.
  FailureReport rep2 = fa.analyze(trace);
  CHECK(rep2.labels == rep.labels);
}

TEST_CASE("trace records from a cascade decision log", "[coopt]") {
  std::string path = std::string(RN_BINARY_DIR) + "/coopt_log.jsonl";
  auto entry = [](int tier, const char* name, double cost, TraceDecision d) {
    TraceEntry e;
    e.tier = tier;
    e.tier_name = name;
    e.cost = cost;
    e.decision = d;
    return e;
  };
  CascadeResult a;
  a.request_id = "a";
  a.task = "support";
  a.tier = 1;
  a.tier_name = "t4";
  a.cost = 0.011;
  a.trace = {entry(0, "t1", 0.001, TraceDecision::escalated), entry(1, "t4", 0.01, TraceDecision::final_answer)};
  CascadeResult b;
  b.request_id = "b";
  b.task = "support";
  b.tier = 0;
  b.tier_name = "t1";
  b.cost = 0.001;
  b.trace = {entry(0, "t1", 0.001, TraceDecision::accepted)};
  detail::write_file_atomic(path, decision_to_json(a) + "\n" + decision_to_json(b) + "\n");
  Dataset ds;
  ds.source = "mem";
  Query qa;
  qa.id = "a";
  qa.task = "support";
  qa.query = "refund charged twice";
  Outcome oa;
  oa.quality = 1.0;
  oa.response = "refund";
  qa.outcomes["t4"] = oa;
  Query qb = qa;
  qb.id = "b";
  qb.query = "card arrival";
  ds.queries = {qa, qb};
  PortfolioConfig pf;
  pf.tiers = {TierSpec{"t1"}, TierSpec{"t4"}};
  auto recs = trace_from_decision_log(path, ds, &pf);
  REQUIRE(recs.size() == 2);
  CHECK(recs[0].query == "refund charged twice");
  CHECK(!recs[0].accepted);
  CHECK(recs[0].final_tier == 1);
  CHECK(recs[0].tier_cost == Approx(0.001));
  CHECK(recs[0].total_cost == Approx(0.011));
  CHECK(recs[0].final_response == "refund");
  CHECK(recs[1].accepted);
  CHECK(is_failure(recs[0]));
  CHECK(!is_failure(recs[1]));
  // A request the query set lacks is named.
  ds.queries.pop_back();
  try {
    trace_from_decision_log(path, ds);
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("coopt_log.jsonl:2") != std::string::npos);
    CHECK(std::string(e.what()).find("'b'") != std::string::npos);
  }
}

TEST_CASE("targeted selection draws from failure clusters, random does not", "[coopt]") {
  auto trace = synthetic_trace(200, {0, 1});
  FailureAnalyzerOptions fo;
  fo.k_max = 6;
  FailureAnalyzer fa(nullptr, "", fo);
  FailureReport rep = fa.analyze(trace);
  REQUIRE(rep.clusters.size() == 2);
  std::vector<PoolItem> pool;
  for (int i = 0; i < 1000; ++i) pool.push_back({"p" + std::to_string(i), topic_query(i % 5, i + 1000), "support"});
  size_t teacher_calls = 0;
  TeacherFunction teacher = [&](const std::string& q, const std::string&) -> std::optional<std::string> {
    ++teacher_calls;
    return "label" + std::to_string(topic_of(q));
  };
  DistillOptions o;
  o.budget = 120;
  o.top_clusters = 2;
  DistillationDataGenerator gen(pool, nullptr, teacher, o);
  DistillSelection t = gen.targeted(rep);
  DistillationDataGenerator gen2(pool, nullptr, teacher, o);
  DistillSelection r = gen2.random(1);
  REQUIRE(t.examples.size() == 120);
  REQUIRE(r.examples.size() == 120);
  auto share_failing = [](const DistillSelection& s) {
    size_t in = 0;
    for (auto& e : s.examples) in += (topic_of(e.query) <= 1);
    return static_cast<double>(in) / static_cast<double>(s.examples.size());
  };
  // Random: binomial(120, 0.4) share, sd 0.045; 5 sd margins either side of the thresholds.
  CHECK(share_failing(t) >= 0.99);
  CHECK(share_failing(r) < 0.4 + 5 * 0.045);
  CHECK(share_failing(r) > 0.4 - 5 * 0.045);
  size_t members = 0, neighbours = 0;
  for (auto& e : t.examples) {
    members += e.source == "member";
    neighbours += e.source == "neighbour";
    CHECK(e.target == "label" + std::to_string(topic_of(e.query)));
  }
  // Quotas 80 / 40 by cost impact (0.4 vs 0.2 USD); half of each from the members.
  CHECK(members == 60);
  CHECK(neighbours == 60);
  // No pool item twice across calls.
  DistillSelection t2 = gen.targeted(rep);
  std::set<std::string> ids;
  for (auto& e : t.examples) if (e.source == "neighbour") ids.insert(e.id);
  for (auto& e : t2.examples) if (e.source == "neighbour") CHECK(ids.count(e.id) == 0);
  // JSONL round trip.
  std::string path = std::string(RN_BINARY_DIR) + "/coopt_distill.jsonl";
  t.save_jsonl(path);
  auto back = load_distill_jsonl(path);
  REQUIRE(back.size() == t.examples.size());
  CHECK(back[5].query == t.examples[5].query);
  CHECK(back[5].target == t.examples[5].target);
  CHECK(back[5].cluster == t.examples[5].cluster);
}

TEST_CASE("distillation JSONL: a float or out-of-range cluster is a parse error naming it", "[coopt]") {
  const std::string path = std::string(RN_BINARY_DIR) + "/coopt_distill_int.jsonl";
  const std::string ok = "{\"query\": \"q\", \"target\": \"t\", \"cluster\": 3}\n";
  for (const char* v : {"1e300", "-1e300", "4294967296", "3.0"}) {
    INFO("cluster = " << v);
    detail::write_file_atomic(path, ok + "{\"query\": \"q\", \"target\": \"t\", \"cluster\": " + v + "}\n");
    try {
      load_distill_jsonl(path);
      FAIL("expected a parse error");
    } catch (const Error& e) {
      CHECK(e.code() == Status::parse);
      CHECK_THAT(e.what(), Catch::Contains("coopt_distill_int.jsonl:2: cluster: expected an integer"));
    }
  }
  detail::write_file_atomic(path, ok);
  REQUIRE(load_distill_jsonl(path).size() == 1);
  CHECK(load_distill_jsonl(path)[0].cluster == 3);
  std::remove(path.c_str());
}

namespace {

// A toy system: the "tier" is the set of topics the cheap tier handles; distilling on examples
// of a topic teaches it. Cost: escalations pay 1.0, cheap answers 0.01.
struct ToyTier {
  std::set<int> known;
  int version = 0;
};
using ToyPtr = std::shared_ptr<const ToyTier>;
struct ToyRouting {
  int version = 0;
};

CoOptEvaluation toy_eval(const ToyTier& t) {
  CoOptEvaluation ev;
  int accepted = 0;
  double cost = 0;
  for (int i = 0; i < 100; ++i) {
    int topic = i % 5;
    TraceRecord r;
    r.query_id = "q" + std::to_string(i);
    r.query = topic_query(topic, i);
    r.task = "support";
    r.tier_cost = 0.01;
    r.accepted = t.known.count(topic) > 0;
    r.final_tier = r.accepted ? 0 : 1;
    r.total_cost = r.accepted ? 0.01 : 1.01;
    r.final_response = "label" + std::to_string(topic);
    accepted += r.accepted;
    cost += r.total_cost;
    ev.trace.push_back(r);
  }
  ev.metrics.cost = cost / 100;
  ev.metrics.quality = 1.0;
  ev.metrics.t1_acceptance = accepted / 100.0;
  ev.metrics.cost_ratio = ev.metrics.cost / 1.0;
  return ev;
}

}  // namespace

TEST_CASE("co-optimization loop terminates, is deterministic, and contains failing steps", "[coopt]") {
  std::vector<PoolItem> pool;
  for (int i = 0; i < 500; ++i) pool.push_back({"p" + std::to_string(i), topic_query(i % 5, i + 7), "support"});
  TeacherFunction teacher = [](const std::string& q, const std::string&) -> std::optional<std::string> {
    return "label" + std::to_string(topic_of(q));
  };
  auto make_steps = [&](std::shared_ptr<DistillationDataGenerator> gen) {
    CoOptLoop<ToyPtr, ToyRouting>::Steps s;
    s.evaluate = [](const ToyPtr& t, const ToyRouting&) { return toy_eval(*t); };
    s.analyse = [](const std::vector<TraceRecord>& tr) { return FailureAnalyzer().analyze(tr); };
    s.select = [gen](const FailureReport& rep, int it) {
      return gen->targeted(rep, static_cast<uint64_t>(it)).examples;
    };
    // Learns a topic once it has >= 10 examples of it.
    s.distill = [](const ToyPtr& t, const std::vector<DistillExample>& ex) {
      auto next = std::make_shared<ToyTier>(*t);
      std::map<int, int> count;
      for (auto& e : ex) ++count[topic_of(e.query)];
      for (auto& [topic, n] : count)
        if (n >= 10) next->known.insert(topic);
      next->version++;
      return ToyPtr(next);
    };
    s.retrain_router = [](const ToyPtr&, const ToyRouting& r) { return ToyRouting{r.version + 1}; };
    return s;
  };
  DistillOptions dopt;
  dopt.budget = 40;
  dopt.top_clusters = 1;
  CoOptOptions opt;
  opt.log_path = std::string(RN_BINARY_DIR) + "/coopt_loop.jsonl";
  auto start = std::make_shared<const ToyTier>(ToyTier{{4}, 0});

  auto run_once = [&] {
    auto gen = std::make_shared<DistillationDataGenerator>(pool, nullptr, teacher, dopt);
    CoOptLoop<ToyPtr, ToyRouting> loop(make_steps(gen), opt);
    return loop.run(start, ToyRouting{});
  };
  auto a = run_once();
  auto b = run_once();
  REQUIRE(a.log.size() == 4);  // baseline + max_iterations (3)
  CHECK(a.stop_reason == "max_iterations");
  CHECK(a.tier->known.size() == 4);  // one topic learnt per iteration
  CHECK(a.routing.version == 3);
  for (size_t i = 1; i < a.log.size(); ++i) {
    CHECK(a.log[i].status == "ok");
    CHECK(a.log[i].metrics.t1_acceptance > a.log[i - 1].metrics.t1_acceptance);
    CHECK(a.log[i].gain > 0.0);
  }
  REQUIRE(b.log.size() == a.log.size());
  for (size_t i = 0; i < a.log.size(); ++i) {
    CHECK(b.log[i].metrics.cost == a.log[i].metrics.cost);
    CHECK(b.log[i].examples == a.log[i].examples);
  }
  CHECK(b.tier->known == a.tier->known);
  std::string text = detail::read_file(opt.log_path);
  CHECK(std::count(text.begin(), text.end(), '\n') == 4);

  SECTION("min_gain stops early") {
    auto gen = std::make_shared<DistillationDataGenerator>(pool, nullptr, teacher, dopt);
    CoOptOptions o2 = opt;
    o2.min_gain = 0.9;
    o2.max_iterations = 10;
    auto r = CoOptLoop<ToyPtr, ToyRouting>(make_steps(gen), o2).run(start, ToyRouting{});
    CHECK(r.log.size() == 2);
    CHECK(r.stop_reason == "min_gain");
  }
  SECTION("a throwing distill leaves the tier and routing in place") {
    auto gen = std::make_shared<DistillationDataGenerator>(pool, nullptr, teacher, dopt);
    auto steps = make_steps(gen);
    auto good = steps.distill;
    int calls = 0;
    steps.distill = [&](const ToyPtr& t, const std::vector<DistillExample>& ex) -> ToyPtr {
      if (++calls == 2) throw std::runtime_error("trainer crashed");
      return good(t, ex);
    };
    auto r = CoOptLoop<ToyPtr, ToyRouting>(steps, opt).run(start, ToyRouting{});
    REQUIRE(r.log.size() == 3);
    CHECK(r.log[2].status == "distill_failed");
    CHECK(r.log[2].error == "trainer crashed");
    CHECK(r.stop_reason == "distill_failed");
    CHECK(r.tier->version == 1);   // the first distillation's tier
    CHECK(r.routing.version == 1); // the router retrained once, not twice
    CHECK(r.log[2].metrics.cost == r.log[1].metrics.cost);
  }
  SECTION("a distill returning null is a failure too") {
    auto gen = std::make_shared<DistillationDataGenerator>(pool, nullptr, teacher, dopt);
    auto steps = make_steps(gen);
    steps.distill = [](const ToyPtr&, const std::vector<DistillExample>&) { return ToyPtr(); };
    auto r = CoOptLoop<ToyPtr, ToyRouting>(steps, opt).run(start, ToyRouting{});
    REQUIRE(r.log.size() == 2);
    CHECK(r.log[1].status == "distill_failed");
    CHECK(r.tier == start);
    CHECK(r.routing.version == 0);
  }
  SECTION("a failing router retrain keeps the previous tier too") {
    auto gen = std::make_shared<DistillationDataGenerator>(pool, nullptr, teacher, dopt);
    auto steps = make_steps(gen);
    steps.retrain_router = [](const ToyPtr&, const ToyRouting&) -> ToyRouting {
      throw Error(Status::model, "router diverged");
    };
    auto r = CoOptLoop<ToyPtr, ToyRouting>(steps, opt).run(start, ToyRouting{});
    CHECK(r.log.back().status == "retrain_router_failed");
    CHECK(r.tier == start);
  }
  SECTION("missing steps are rejected") {
    CoOptLoop<ToyPtr, ToyRouting>::Steps s;
    CHECK_THROWS_AS((CoOptLoop<ToyPtr, ToyRouting>(s, opt)), Error);
  }
}

#ifdef ROUTENLP_HAVE_TORCH
#include "routenlp/tiers/local_classifier_tier.hpp"

TEST_CASE("LocalClassifierTier learns a tiny task, saves, loads and fine-tunes", "[coopt][torch]") {
  const char* words[3][3] = {{"refund", "money", "back"}, {"card", "arrive", "mail"}, {"password", "login", "reset"}};
  std::vector<std::string> texts, labels;
  for (int i = 0; i < 90; ++i) {
    int c = i % 3;
    texts.push_back(std::string("please ") + words[c][i % 3] + " " + words[c][(i / 3) % 3] + " now");
    labels.push_back(c == 0 ? "refund" : c == 1 ? "card" : "login");
  }
  LocalClassifierConfig cfg;
  cfg.encoder_config_json =
      R"({"dim":32,"n_layers":1,"n_heads":2,"hidden_dim":64,"max_position_embeddings":16,"vocab_size":30522})";
  cfg.max_length = 12;
  cfg.vocab_path = std::string(RN_REPO_DATA_DIR) + "/vocab/bert-base-uncased-vocab.txt";
  ClassifierTrainConfig tc;
  tc.epochs = 12;
  tc.batch_size = 16;
  tc.learning_rate = 3e-3;
  tc.seed = 1;
  ClassifierTrainReport rep;
  auto tier = LocalClassifierTier::train(texts, labels, cfg, tc, nullptr, &rep);
  CHECK(rep.epoch_loss.size() == 12);
  CHECK(rep.epoch_loss.back() < rep.epoch_loss.front());
  CHECK(rep.train_accuracy >= 0.95);
  CHECK(tier->labels() == std::vector<std::string>{"card", "login", "refund"});
  TierRequest req;
  req.query = "i want my money back, a refund";
  TierResponse r = tier->call(req);
  REQUIRE(r.ok());
  CHECK(r.text == "refund");
  CHECK(r.confidence.value() > 0.5);
  CHECK(r.cost == Approx(cfg.cost_per_query));
  // Save / load gives the same predictions.
  std::string dir = std::string(RN_BINARY_DIR) + "/coopt_t1";
  tier->save(dir);
  auto back = LocalClassifierTier::load(dir);
  auto a = tier->predict(texts), b = back->predict(texts);
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].label == b[i].label);
    CHECK(a[i].confidence == Approx(b[i].confidence).margin(1e-5));
  }
  // Fine-tuning returns a new tier and leaves the original alone; unknown labels are skipped.
  ClassifierTrainConfig ft = tc;
  ft.epochs = 2;
  ClassifierTrainReport frep;
  auto tuned = tier->fine_tune({"please reset my login", "unrelated"}, {"login", "no-such-label"}, ft, nullptr, &frep);
  CHECK(frep.skipped_unknown_labels == 1);
  CHECK(frep.rows == 1);
  auto again = tier->predict(texts);
  for (size_t i = 0; i < a.size(); ++i) CHECK(again[i].confidence == a[i].confidence);
  CHECK_THROWS_AS(tier->fine_tune({"x"}, {"nope"}, ft), Error);
  CHECK_THROWS_AS(LocalClassifierTier::load(dir + "-missing"), Error);
  // labels.json's max_length must be an integer in int's range (1e300 overflowed the cast).
  const std::string lpath = dir + "/labels.json";
  const std::string labels_text = detail::read_file(lpath);
  for (const char* v : {"1e300", "4294967296", "12.0"}) {
    INFO("max_length = " << v);
    nlohmann::json j = nlohmann::json::parse(labels_text);
    j["max_length"] = nlohmann::json::parse(v);
    detail::write_file_atomic(lpath, j.dump());
    try {
      LocalClassifierTier::load(dir);
      FAIL("expected a parse error");
    } catch (const Error& e) {
      CHECK(e.code() == Status::parse);
      CHECK_THAT(e.what(), Catch::Contains("labels.json: max_length: expected an integer"));
    }
  }
  detail::write_file_atomic(lpath, labels_text);
  CHECK(LocalClassifierTier::load(dir)->labels() == tier->labels());
}
#endif

#include "routenlp/coopt/classifier.hpp"

TEST_CASE("labelled CSV reader: quoting, errors naming file:line", "[coopt]") {
  std::string path = std::string(RN_BINARY_DIR) + "/coopt_labels.csv";
  detail::write_file_atomic(path, "text,category\n\"Hello, \"\"card\"\"\",card_arrival\r\nplain text,other\n\n"
                                  "\"multi\nline\",x\n");
  auto rows = read_labeled_csv(path);
  REQUIRE(rows.size() == 3);
  CHECK(rows[0].text == "Hello, \"card\"");
  CHECK(rows[0].label == "card_arrival");
  CHECK(rows[1].text == "plain text");
  CHECK(rows[2].text == "multi\nline");
  detail::write_file_atomic(path, "text,category\na,b\nc,d,e\n");
  try {
    read_labeled_csv(path);
    FAIL("expected a parse error");
  } catch (const Error& e) {
    CHECK(e.code() == Status::parse);
    CHECK(std::string(e.what()).find("coopt_labels.csv:3") != std::string::npos);
  }
  detail::write_file_atomic(path, "sentence,label\na,b\n");
  CHECK_THROWS_AS(read_labeled_csv(path), Error);
  detail::write_file_atomic(path, "text,category\n\"open,b\n");
  CHECK_THROWS_AS(read_labeled_csv(path), Error);
}

#ifdef ROUTENLP_HAVE_TORCH
#include "routenlp/encoder/encoder.hpp"

TEST_CASE("failure analysis with an encoder's embeddings", "[coopt][torch]") {
  EncoderConfig ec;
  ec.dim = 32;
  ec.n_layers = 1;
  ec.n_heads = 2;
  ec.hidden_dim = 64;
  ec.max_position_embeddings = 32;
  EncoderOptions eo;
  eo.vocab_file = std::string(RN_REPO_DATA_DIR) + "/vocab/bert-base-uncased-vocab.txt";
  auto enc = std::make_shared<const Encoder>(Encoder::random_init(ec, 3, eo));
  EmbedFunction f = make_encoder_embed_function(enc, 16);
  auto e = f({"refund please", "card arrival"});
  REQUIRE(e.size() == 2);
  CHECK(e[0].size() == 32);
  FailureAnalyzer fa(f, "encoder");
  auto rep = fa.analyze(synthetic_trace(50, {0, 1}));
  CHECK(rep.embedding == "encoder");
  CHECK(rep.failures_total == 20);
  CHECK(!rep.clusters.empty());
  CHECK_THROWS_AS(make_encoder_embed_function(nullptr), Error);
}
#endif
