// Serving: the OpenAI-compatible tier client against a fake server on 127.0.0.1, and the
// `routenlp serve` HTTP server end to end. Real HTTP on loopback only.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <thread>

#include "fake_openai_server.hpp"
#include "live_server.hpp"
#include "tiers/openai_chat.hpp"

using namespace routenlp;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

OpenAITierOptions opts_for(const rn_test::FakeOpenAIServer& fake, const std::string& model) {
  OpenAITierOptions o;
  o.name = "t-" + model;
  o.model = model;
  o.base_url = fake.base_url();
  o.timeout_ms = 5000;
  o.max_retries = 2;
  o.backoff_initial_ms = 5;
  o.backoff_max_ms = 20;
  o.jitter_seed = 7;
  return o;
}

openai::ChatResult chat(openai::ChatClient& c, const std::string& text,
                        Clock::time_point deadline = Clock::time_point::max(),
                        std::function<bool()> cancel = {}) {
  return c.call({{"user", text}}, deadline, cancel);
}

}  // namespace

TEST_CASE("chat_url appends the chat completions path", "[serve][openai]") {
  CHECK(openai::chat_url("http://h:1") == "http://h:1/v1/chat/completions");
  CHECK(openai::chat_url("http://h:1/") == "http://h:1/v1/chat/completions");
  CHECK(openai::chat_url("https://api.x.com/v1") == "https://api.x.com/v1/chat/completions");
  CHECK(openai::chat_url("http://h/proxy/v1/") == "http://h/proxy/v1/chat/completions");
}

TEST_CASE("parse_chat_response: text, logprob confidence, usage and malformed bodies",
          "[serve][openai]") {
  auto r = openai::parse_chat_response(
      R"({"choices":[{"message":{"content":"hi"},"finish_reason":"stop",
          "logprobs":{"content":[{"logprob":-0.2},{"logprob":-0.4}]}}],
          "usage":{"prompt_tokens":5,"completion_tokens":2}})");
  REQUIRE(r.ok);
  CHECK(r.text == "hi");
  REQUIRE(r.confidence.has_value());
  CHECK(*r.confidence == Approx(std::exp(-0.3)));
  CHECK(r.prompt_tokens == 5);
  CHECK(r.completion_tokens == 2);
  // Legacy completions format.
  auto legacy = openai::parse_chat_response(
      R"({"choices":[{"text":"x","logprobs":{"token_logprobs":[-1.0,null,-3.0]}}]})");
  REQUIRE(legacy.ok);
  CHECK(*legacy.confidence == Approx(std::exp(-2.0)));
  CHECK_FALSE(openai::parse_chat_response("{oops").ok);
  CHECK_FALSE(openai::parse_chat_response("[]").ok);
  CHECK_FALSE(openai::parse_chat_response(R"({"choices":[]})").ok);
  CHECK_FALSE(openai::parse_chat_response(R"({"choices":[{"message":{"content":3}}]})").ok);
  CHECK(openai::parse_chat_response(R"({"choices":[]})").error.find("no choices") !=
        std::string::npos);
}

TEST_CASE("ChatClient against the fake server", "[serve][openai]") {
  rn_test::FakeOpenAIServer fake;

  SECTION("answer with log-probabilities and usage") {
    openai::ChatClient c(opts_for(fake, "echo"));
    auto r = chat(c, "what is 2+2?");
    REQUIRE(r.ok);
    CHECK(r.text == "echo: what is 2+2?");
    REQUIRE(r.confidence);
    CHECK(*r.confidence == Approx(std::exp(-0.2)));
    CHECK(r.prompt_tokens == 10);
    CHECK(r.completion_tokens == 2);
    CHECK(r.attempts == 1);
    auto sent = json::parse(fake.last_body());
    CHECK(sent["model"] == "echo");
    CHECK(sent["logprobs"] == true);
    CHECK(sent["messages"].back()["content"] == "what is 2+2?");
  }
  SECTION("no logprobs: no confidence") {
    openai::ChatClient c(opts_for(fake, "nologprobs"));
    auto r = chat(c, "q");
    REQUIRE(r.ok);
    CHECK_FALSE(r.confidence.has_value());
    CHECK(r.completion_tokens == 3);
  }
  SECTION("500 is retried max_retries times, then a tier error naming the status") {
    openai::ChatClient c(opts_for(fake, "fail500"));
    auto r = chat(c, "q");
    CHECK_FALSE(r.ok);
    CHECK(r.status == Status::tier);
    CHECK(r.http_status == 500);
    CHECK(r.attempts == 3);
    CHECK(fake.count("fail500") == 3);
    CHECK(r.error.find("HTTP 500") != std::string::npos);
    CHECK(r.error.find("upstream exploded") != std::string::npos);
  }
  SECTION("429 twice then success") {
    openai::ChatClient c(opts_for(fake, "flaky429"));
    auto r = chat(c, "q");
    REQUIRE(r.ok);
    CHECK(r.attempts == 3);
    CHECK(fake.count("flaky429") == 3);
  }
  SECTION("400 is not retried") {
    openai::ChatClient c(opts_for(fake, "bad400"));
    auto r = chat(c, "q");
    CHECK_FALSE(r.ok);
    CHECK(r.attempts == 1);
    CHECK(fake.count("bad400") == 1);
    CHECK(r.error.find("HTTP 400") != std::string::npos);
  }
  SECTION("malformed JSON and missing choices are tier errors") {
    openai::ChatClient m(opts_for(fake, "malformed"));
    auto r = chat(m, "q");
    CHECK_FALSE(r.ok);
    CHECK(r.status == Status::tier);
    CHECK(r.error.find("malformed JSON") != std::string::npos);
    openai::ChatClient n(opts_for(fake, "nochoices"));
    auto r2 = chat(n, "q");
    CHECK_FALSE(r2.ok);
    CHECK(r2.error.find("no choices") != std::string::npos);
  }
  SECTION("slow response: the option timeout and the request deadline both cut it") {
    auto o = opts_for(fake, "slow");
    o.timeout_ms = 300;
    openai::ChatClient c(o);
    auto t0 = Clock::now();
    auto r = chat(c, "q");
    double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    CHECK_FALSE(r.ok);
    CHECK(r.status == Status::timeout);
    CHECK(ms < 1400);  // well before the 1500 ms answer
    CHECK(fake.count("slow") == 1);  // a timeout is not retried

    openai::ChatClient d(opts_for(fake, "slow"));
    auto r2 = chat(d, "q", Clock::now() + std::chrono::milliseconds(200));
    CHECK(r2.status == Status::timeout);
  }
  SECTION("cancellation aborts an in-flight call") {
    openai::ChatClient c(opts_for(fake, "slow"));
    std::atomic<bool> stop{false};
    std::thread canceller([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(150));
      stop = true;
    });
    auto t0 = Clock::now();
    auto r = chat(c, "q", Clock::time_point::max(), [&] { return stop.load(); });
    double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    canceller.join();
    CHECK(r.status == Status::cancelled);
    CHECK(ms < 1400);
  }
  SECTION("API key from the environment, sent as a bearer token, never in the error") {
    auto o = opts_for(fake, "auth");
    o.api_key_env = "RN_TEST_FAKE_KEY";
    ::unsetenv("RN_TEST_FAKE_KEY");
    openai::ChatClient c(o);
    auto missing = chat(c, "q");
    CHECK_FALSE(missing.ok);
    CHECK(missing.error.find("RN_TEST_FAKE_KEY") != std::string::npos);
    ::setenv("RN_TEST_FAKE_KEY", "wrong", 1);
    auto bad = chat(c, "q");
    CHECK_FALSE(bad.ok);
    CHECK(bad.error.find("HTTP 401") != std::string::npos);
    CHECK(bad.error.find("wrong") == std::string::npos);
    ::setenv("RN_TEST_FAKE_KEY", "sekret", 1);
    auto good = chat(c, "q");
    CHECK(good.ok);
    ::unsetenv("RN_TEST_FAKE_KEY");
  }
  SECTION("a response body over the cap is a tier error, not memory") {
    auto o = opts_for(fake, "huge");
    o.max_response_bytes = 1u << 20;
    openai::ChatClient capped(o);
    auto r = chat(capped, "q");
    CHECK_FALSE(r.ok);
    CHECK(r.status == Status::tier);
    CHECK(r.error.find("larger than 1048576 bytes") != std::string::npos);
    CHECK(fake.count("huge") == 1);  // not retried: the server answered
    openai::ChatClient roomy(opts_for(fake, "huge"));  // default cap 8 MiB
    auto ok = chat(roomy, "q");
    REQUIRE(ok.ok);
    CHECK(ok.text.size() == (3u << 20));
  }
  SECTION("an upstream that echoes the key never gets it into an error") {
    for (const char* model : {"authecho", "malformedecho"}) {
      auto o = opts_for(fake, model);
      o.api_key_env = "RN_TEST_FAKE_KEY";
      ::setenv("RN_TEST_FAKE_KEY", "sk-live-0123456789abcdef", 1);
      openai::ChatClient c(o);
      auto r = chat(c, "q");
      INFO(model << ": " << r.error);
      CHECK_FALSE(r.ok);
      CHECK(r.error.find("0123456789abcdef") == std::string::npos);
      CHECK(r.error.find("[redacted]") != std::string::npos);
      ::unsetenv("RN_TEST_FAKE_KEY");
    }
  }
  SECTION("concurrent calls share the pool safely") {
    openai::ChatClient c(opts_for(fake, "echo"));
    std::atomic<int> ok{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < 8; ++t)
      ts.emplace_back([&, t] {
        for (int i = 0; i < 25; ++i) {
          auto r = chat(c, "q" + std::to_string(t) + "-" + std::to_string(i));
          if (r.ok && r.text == "echo: q" + std::to_string(t) + "-" + std::to_string(i)) ++ok;
        }
      });
    for (auto& t : ts) t.join();
    CHECK(ok == 200);
  }
}

TEST_CASE("redact_secrets: the key, bearer tokens and sk- tokens", "[serve][openai]") {
  using openai::redact_secrets;
  CHECK(redact_secrets("bad key abc123xyz here abc123xyz", "abc123xyz") ==
        "bad key [redacted] here [redacted]");
  CHECK(redact_secrets("Authorization: Bearer tok_9f8e7d6c", "") ==
        "Authorization: Bearer [redacted]");
  CHECK(redact_secrets("key sk-proj-AbC123dEf456 is wrong", "") == "key sk-[redacted] is wrong");
  CHECK(redact_secrets("the bearer tokens expire", "") == "the bearer [redacted] expire");
  CHECK(redact_secrets("the bearer tokens expire", "", /*shapes=*/false) ==
        "the bearer tokens expire");
  CHECK(redact_secrets("short key ab", "ab") == "short key ab");  // too short to be a key
  CHECK(redact_secrets("", "abcd").empty());
}

TEST_CASE("ChatClient: refused connection is a retried tier error", "[serve][openai]") {
  int port;
  {
    rn_test::FakeOpenAIServer tmp;  // grab a free port, then close it
    port = tmp.port();
  }
  OpenAITierOptions o;
  o.name = "gone";
  o.model = "echo";
  o.base_url = "http://127.0.0.1:" + std::to_string(port);
  o.max_retries = 1;
  o.backoff_initial_ms = 1;
  o.backoff_max_ms = 2;
  openai::ChatClient c(o);
  auto r = c.call({{"user", "q"}}, Clock::time_point::max(), {});
  CHECK_FALSE(r.ok);
  CHECK(r.status == Status::tier);
  CHECK(r.attempts == 2);
  CHECK(r.error.find("connection failed") != std::string::npos);
}

TEST_CASE("ChatClient rejects bad options", "[serve][openai]") {
  OpenAITierOptions o;
  o.name = "x";
  o.model = "m";
  CHECK_THROWS_AS(openai::ChatClient(o), Error);  // no base_url
  o.base_url = "ftp://h";
  CHECK_THROWS_AS(openai::ChatClient(o), Error);
  o.base_url = "http://h";
  o.max_retries = -1;
  CHECK_THROWS_AS(openai::ChatClient(o), Error);
}

// ---------------------------------------------------------------------------------------------
// OpenAICompatibleTier in a cascade, and the route server end to end.

#include <filesystem>
#include <fstream>

#include "routenlp/cascade/result.hpp"
#include "routenlp/cascade/engine.hpp"
#include "routenlp/tiers/openai_tier.hpp"
#include "routenlp/serve/serve.hpp"
#include "routenlp/calibration/threshold_table.hpp"
#include "routenlp/router/io.hpp"

namespace {

PortfolioConfig two_tiers() {
  return parse_portfolio(
      "tiers:\n"
      "  - {name: small, price_per_1m_input: 1.0, price_per_1m_output: 2.0}\n"
      "  - {name: large, price_per_1m_input: 10.0, price_per_1m_output: 30.0}\n"
      "alpha: 0.1\n",
      "two_tiers");
}

std::shared_ptr<OpenAICompatibleTier> fake_tier(const rn_test::FakeOpenAIServer& fake,
                                                const std::string& name, const std::string& model,
                                                const PortfolioConfig& p) {
  OpenAITierOptions o = opts_for(fake, model);
  o.name = name;
  o.max_retries = 0;
  return std::make_shared<OpenAICompatibleTier>(o, &p);
}

using rn_test::LiveServer;

// A chat cascade: the router always starts at "small" (an "echo" upstream, confidence
// exp(-0.2): u = 0.18 > delta 0.05, so it escalates) and "large" answers as `large_model`.
// The tiers keep a pointer to `p`, which must outlive the setup.
ServeSetup escalating_chat_setup(const rn_test::FakeOpenAIServer& fake, const PortfolioConfig& p,
                                 const std::string& large_model) {
  ServeSetup setup;
  setup.portfolio = p;
  setup.router = make_always_tier_router({"small", "large"}, 0);
  setup.tiers = {fake_tier(fake, "small", "echo", p), fake_tier(fake, "large", large_model, p)};
  auto table = std::make_shared<ThresholdTable>();
  table->reset_shape({"small", "large"}, {"*"}, {0.1}, 0);
  table->at(0, 0, 0) = 0.05;
  setup.thresholds = table;
  return setup;
}

json post_json(httplib::Client& c, const std::string& path, const std::string& body, int* status) {
  auto res = c.Post(path.c_str(), body, "application/json");
  REQUIRE(res);
  *status = res->status;
  auto j = json::parse(res->body, nullptr, false);
  REQUIRE_FALSE(j.is_discarded());
  return j;
}

}  // namespace

TEST_CASE("OpenAICompatibleTier: cost from usage x prices, errors escalate in a cascade",
          "[serve][openai]") {
  rn_test::FakeOpenAIServer fake;
  auto p = two_tiers();
  auto small = fake_tier(fake, "small", "fail500", p);
  auto large = fake_tier(fake, "large", "echo", p);

  TierRequest tr;
  tr.query = "hello";
  auto direct = large->call(tr);
  REQUIRE(direct.ok());
  CHECK(direct.text == "echo: hello");
  CHECK(direct.cost == Approx(p.price(1, 10, 2)));
  CHECK(direct.input_tokens == 10);
  auto failed = small->call(tr);
  CHECK(failed.status == Status::tier);
  CHECK(failed.error.find("HTTP 500") != std::string::npos);

  // A threshold the small tier could pass, so it is called (uncalibrated it would be skipped).
  auto table = std::make_shared<ThresholdTable>();
  table->reset_shape({"small", "large"}, {"*"}, {0.1}, 0);
  table->at(0, 0, 0) = 0.5;
  CascadeEngine engine({small, large}, table);
  CascadeRequest req;
  req.query = "what?";
  req.task = "qa";
  auto r = engine.run(req);
  REQUIRE(r.status == Status::ok);
  CHECK(r.tier_name == "large");
  CHECK(r.answer == "echo: what?");
  REQUIRE(r.trace.size() == 2);
  CHECK(r.trace[0].decision == TraceDecision::error);
  CHECK(r.trace[0].error.find("HTTP 500") != std::string::npos);

  CHECK_THROWS_AS(OpenAICompatibleTier(opts_for(fake, "echo"), &p), Error);  // name not in portfolio
}

TEST_CASE("make_named_policy parses policy names", "[serve]") {
  auto p = two_tiers();
  auto router = make_always_tier_router({"small", "large"}, 0);
  CHECK(make_named_policy("threshold", p, *router)->name() == "threshold");
  CHECK(make_named_policy("knob-0.5", p, *router)->name() == "cost-knob");
  auto two = make_named_policy("router-always-small-0.5", p, *router);
  RouterScores s;
  s.p_acceptable = {0.2, 0.9};  // strong score 0.8 >= 0.5 -> large
  CHECK(two->decide(s, "t").tier == 1);
  s.p_acceptable = {0.9, 0.9};  // 0.1 < 0.5 -> small
  CHECK(two->decide(s, "t").tier == 0);
  CHECK_THROWS_AS(make_named_policy("router-mf-0.5", p, *router), Error);
  CHECK_THROWS_AS(make_named_policy("threshold-2", p, *router), Error);
  CHECK_THROWS_AS(make_named_policy("knob-x", p, *router), Error);
  CHECK_THROWS_AS(make_named_policy("nonsense", p, *router), Error);
}

TEST_CASE("route server end to end over loopback HTTP", "[serve][http]") {
  rn_test::FakeOpenAIServer fake;
  auto p = two_tiers();
  ServeSetup setup;
  setup.portfolio = p;
  setup.router = make_always_tier_router({"small", "large"}, 0);
  setup.tiers = {fake_tier(fake, "small", "fail500", p), fake_tier(fake, "large", "echo", p)};
  setup.audit_rate = 1.0;
  ServeOptions opts;
  opts.threads = 4;
  opts.max_body_bytes = 4096;
  opts.max_batch = 4;
  // httplib's client closes after each request and reconnects at once; on a loaded machine the
  // server may not have released the closed connections yet, and the per-client cap (tested in
  // test_serve_hardening) would refuse the new one. Not what this test is about.
  opts.max_connections_per_client = 0;
  LiveServer live(setup, opts);
  auto c = live.client();
  int st = 0;

  SECTION("health and unknown routes") {
    auto res = c.Get("/health");
    REQUIRE(res);
    CHECK(res->status == 200);
    CHECK(json::parse(res->body)["status"] == "ok");
    auto nf = c.Get("/nope");
    REQUIRE(nf);
    CHECK(nf->status == 404);
    CHECK(json::parse(nf->body)["error"]["message"].get<std::string>().find("/nope") != std::string::npos);
    auto wrong_method = c.Get("/route");
    REQUIRE(wrong_method);
    CHECK(wrong_method->status == 404);
  }
  SECTION("/route: decision and per-tier scores; optional cascade execution") {
    auto j = post_json(c, "/route", R"({"query": "2+2?", "task": "math"})", &st);
    CHECK(st == 200);
    CHECK(j["tier_name"] == "small");
    CHECK(j["tier"] == 0);
    CHECK(j["scores"]["small"] == 1.0);
    CHECK(j["scores"]["large"] == 0.0);
    auto e = post_json(c, "/route", R"({"query": "2+2?", "execute": true})", &st);
    CHECK(st == 200);
    CHECK(e["cascade"]["answer"] == "echo: 2+2?");
    CHECK(e["cascade"]["tier_name"] == "large");
    CHECK(e["cascade"]["tier"] == 1);
  }
  SECTION("malformed, invalid and oversized bodies get 4xx with clear messages") {
    auto j = post_json(c, "/route", "{not json", &st);
    CHECK(st == 400);
    CHECK(j["error"]["message"].get<std::string>().find("not valid JSON") != std::string::npos);
    j = post_json(c, "/route", "[1,2]", &st);
    CHECK(st == 400);
    j = post_json(c, "/route", R"({"task": "x"})", &st);
    CHECK(st == 400);
    CHECK(j["error"]["message"].get<std::string>().find("query") != std::string::npos);
    j = post_json(c, "/route", R"({"query": 5})", &st);
    CHECK(st == 400);
    j = post_json(c, "/route", R"({"query": "q", "policy": "bogus"})", &st);
    CHECK(st == 400);
    CHECK(j["error"]["message"].get<std::string>().find("bogus") != std::string::npos);
    std::string big = R"({"query": ")" + std::string(10000, 'a') + R"("})";
    j = post_json(c, "/route", big, &st);
    CHECK(st == 413);
    CHECK(j["error"]["message"].get<std::string>().find("4096") != std::string::npos);
    // The server still answers afterwards.
    auto ok = post_json(c, "/route", R"({"query": "q"})", &st);
    CHECK(st == 200);
  }
  SECTION("/route/batch") {
    auto j = post_json(c, "/route/batch",
                       R"({"queries": [{"query": "a"}, {"query": "b", "task": "t"}]})", &st);
    CHECK(st == 200);
    REQUIRE(j["decisions"].size() == 2);
    CHECK(j["decisions"][1]["tier_name"] == "small");
    j = post_json(c, "/route/batch",
                  R"({"queries": [{"query": "a"}], "execute": true})", &st);
    CHECK(st == 200);
    CHECK(j["decisions"][0]["cascade"]["answer"] == "echo: a");
    j = post_json(c, "/route/batch", R"({"queries": [{"query": "a"},{"query": "a"},{"query": "a"},{"query": "a"},{"query": "a"}]})", &st);
    CHECK(st == 413);
    j = post_json(c, "/route/batch", R"({"queries": [{"query": "a"}, 3]})", &st);
    CHECK(st == 400);
    CHECK(j["error"]["message"].get<std::string>().find("queries[1]") != std::string::npos);
    j = post_json(c, "/route/batch", R"({"queries": []})", &st);
    CHECK(st == 400);
  }
  SECTION("/v1/chat/completions routes, cascades past a failing tier, and takes feedback") {
    auto j = post_json(c, "/v1/chat/completions",
                       R"({"model": "router-always-small-0.5",
                           "messages": [{"role": "system", "content": "be brief"},
                                        {"role": "user", "content": "capital of France?"}]})",
                       &st);
    REQUIRE(st == 200);
    CHECK(j["object"] == "chat.completion");
    CHECK(j["model"] == "large");
    CHECK(j["choices"][0]["message"]["content"] == "echo: capital of France?");
    CHECK(j["routenlp"]["routing"]["tier_name"] == "small");
    CHECK(j["routenlp"]["cost_usd"].get<double>() > 0);
    // The whole conversation reached the tier.
    auto sent = json::parse(fake.last_body());
    CHECK(sent["messages"].size() == 2);
    CHECK(sent["messages"][0]["content"] == "be brief");

    std::string id = j["routenlp"]["request_id"];
    auto fb = post_json(c, "/feedback", json{{"request_id", id}, {"acceptable", true}}.dump(), &st);
    CHECK(st == 200);
    CHECK(fb["recorded"] == true);
    fb = post_json(c, "/feedback", R"({"request_id": "nope", "acceptable": true})", &st);
    CHECK(st == 404);
    fb = post_json(c, "/feedback", R"({"request_id": "x", "acceptable": "yes"})", &st);
    CHECK(st == 400);

    // A plain tier name calls that tier only.
    j = post_json(c, "/v1/chat/completions",
                  R"({"model": "large", "messages": [{"role": "user", "content": "hi"}]})", &st);
    CHECK(st == 200);
    CHECK(j["choices"][0]["message"]["content"] == "echo: hi");
    j = post_json(c, "/v1/chat/completions",
                  R"({"model": "small", "messages": [{"role": "user", "content": "hi"}]})", &st);
    CHECK(st == 502);
    CHECK(j["error"]["message"].get<std::string>().find("HTTP 500") != std::string::npos);
    j = post_json(c, "/v1/chat/completions",
                  R"({"model": "gpt-9", "messages": [{"role": "user", "content": "hi"}]})", &st);
    CHECK(st == 404);
    j = post_json(c, "/v1/chat/completions", R"({"model": "large"})", &st);
    CHECK(st == 400);
    j = post_json(c, "/v1/chat/completions",
                  R"({"model": "large", "messages": [{"role": "user"}]})", &st);
    CHECK(st == 400);
    CHECK(j["error"]["message"].get<std::string>().find("messages[0].content") != std::string::npos);
  }
  SECTION("/metrics is Prometheus text with HTTP and cascade series") {
    post_json(c, "/route", R"({"query": "q"})", &st);
    post_json(c, "/route", "{bad", &st);
    auto res = c.Get("/metrics");
    REQUIRE(res);
    CHECK(res->status == 200);
    CHECK(res->body.find("routenlp_http_requests_total{route=\"/route\",code=\"200\"} 1") !=
          std::string::npos);
    CHECK(res->body.find("routenlp_http_requests_total{route=\"/route\",code=\"400\"} 1") !=
          std::string::npos);
    CHECK(res->body.find("routenlp_http_request_duration_seconds_bucket{route=\"/route\"") !=
          std::string::npos);
    CHECK(res->body.find("routenlp_route_decisions_total{tier=\"small\"} 1") != std::string::npos);
  }
}

TEST_CASE("route server: graceful stop finishes the in-flight request", "[serve][http]") {
  rn_test::FakeOpenAIServer fake;
  auto p = two_tiers();
  ServeSetup setup;
  setup.portfolio = p;
  setup.router = make_always_tier_router({"small", "large"}, 1);
  setup.tiers = {fake_tier(fake, "small", "echo", p), fake_tier(fake, "large", "slow", p)};
  LiveServer live(setup, ServeOptions{});
  int status = 0;
  std::string body;
  std::thread client([&] {
    auto c = live.client();
    auto res = c.Post("/v1/chat/completions",
                      R"({"model": "large", "messages": [{"role": "user", "content": "zzz"}]})",
                      "application/json");
    if (res) {
      status = res->status;
      body = res->body;
    }
  });
  // Wait until the slow upstream has the request, then stop the server.
  for (int i = 0; i < 500 && fake.count("slow") == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  REQUIRE(fake.count("slow") == 1);
  auto t0 = Clock::now();
  live.stop();
  double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  client.join();
  CHECK(status == 200);
  CHECK(body.find("echo: zzz") != std::string::npos);
  CHECK(ms > 500);  // stop() waited for the ~1.5 s answer
  // After stop, nothing listens.
  httplib::Client c2("127.0.0.1", live.port);
  c2.set_connection_timeout(1, 0);
  CHECK_FALSE(c2.Get("/health"));
}

TEST_CASE("load_serve_config: endpoints, server limits, and errors naming file:line:field",
          "[serve]") {
  std::string dir = std::string(RN_BINARY_DIR) + "/serve_cfg";
  std::filesystem::create_directories(dir);
  {
    std::ofstream(dir + "/portfolio.yaml")
        << "tiers:\n  - {name: small, price_per_1m_input: 1, price_per_1m_output: 1}\n"
           "  - {name: large, price_per_1m_input: 5, price_per_1m_output: 5}\n";
    std::ofstream(dir + "/serve.yaml")
        << "portfolio: portfolio.yaml\n"
           "router: {kind: always, tier: small}\n"
           "tiers:\n"
           "  - name: large\n"
           "    endpoint: {base_url: 'http://127.0.0.1:9', model: big-model, max_retries: 1,\n"
           "               max_response_bytes: 4096}\n"
           "server: {port: 0, threads: 3, max_body_bytes: 2048}\n";
  }
  auto cfg = load_serve_config(dir + "/serve.yaml");
  CHECK(cfg.options.threads == 3);
  CHECK(cfg.options.max_body_bytes == 2048);
  REQUIRE(cfg.setup.tiers.size() == 2);
  auto* big = dynamic_cast<OpenAICompatibleTier*>(cfg.setup.tiers[1].get());
  REQUIRE(big != nullptr);
  CHECK(big->options().model == "big-model");
  CHECK(big->options().max_response_bytes == 4096);
  CHECK(OpenAITierOptions{}.max_response_bytes == (size_t{8} << 20));  // well below 64 MiB
  // small has no endpoint: a failing placeholder tier.
  CHECK_FALSE(cfg.setup.tiers[0]->call(TierRequest{}).ok());

  std::ofstream(dir + "/bad.yaml") << "portfolio: portfolio.yaml\n"
                                      "router: {kind: always, tier: small}\n"
                                      "tiers:\n"
                                      "  - name: large\n"
                                      "    endpoint: {base_url: 'http://h', modle: x}\n";
  try {
    load_serve_config(dir + "/bad.yaml");
    FAIL("expected an error");
  } catch (const Error& e) {
    std::string m = e.what();
    CHECK(m.find("bad.yaml:5") != std::string::npos);
    CHECK(m.find("tiers[0].endpoint.modle") != std::string::npos);
  }
  // A repeated key is an error, not "the first one wins".
  std::ofstream(dir + "/dup.yaml") << "portfolio: portfolio.yaml\n"
                                      "router: {kind: always, tier: small}\n"
                                      "server: {port: 0, threads: 3, threads: 64}\n";
  CHECK_THROWS_WITH(load_serve_config(dir + "/dup.yaml"),
                    Catch::Contains("dup.yaml:3") && Catch::Contains("server.threads") &&
                        Catch::Contains("duplicate key"));
  // Where a neural router runs is checked at load, whatever the router kind.
  std::ofstream(dir + "/device.yaml") << "portfolio: portfolio.yaml\n"
                                         "router: {kind: always, tier: small}\n"
                                         "server: {router_device: tpu0}\n";
  CHECK_THROWS_WITH(load_serve_config(dir + "/device.yaml"),
                    Catch::Contains("device.yaml:3") && Catch::Contains("server.router_device") &&
                        Catch::Contains("unknown device 'tpu0'"));
  std::ofstream(dir + "/cpu.yaml") << "portfolio: portfolio.yaml\n"
                                      "router: {kind: always, tier: small}\n"
                                      "server: {router_device: cpu}\n";
  CHECK_NOTHROW(load_serve_config(dir + "/cpu.yaml"));
  // int8 routers: a boolean, and a CPU setting.
  std::ofstream(dir + "/int8.yaml") << "portfolio: portfolio.yaml\n"
                                       "router: {kind: always, tier: small}\n"
                                       "server: {router_int8: true}\n";
  CHECK_NOTHROW(load_serve_config(dir + "/int8.yaml"));
  std::ofstream(dir + "/int8-bad.yaml") << "portfolio: portfolio.yaml\n"
                                           "router: {kind: always, tier: small}\n"
                                           "server: {router_int8: maybe}\n";
  CHECK_THROWS_WITH(load_serve_config(dir + "/int8-bad.yaml"),
                    Catch::Contains("int8-bad.yaml:3") && Catch::Contains("server.router_int8"));
  std::ofstream(dir + "/int8-cuda.yaml") << "portfolio: portfolio.yaml\n"
                                            "router: {kind: always, tier: small}\n"
                                            "server: {router_device: cuda, router_int8: true}\n";
  CHECK_THROWS_WITH(load_serve_config(dir + "/int8-cuda.yaml"), Catch::Contains("server.router_device"));
}

TEST_CASE("chat completions: usage summed over called tiers and routing headers", "[serve][http][chat]") {
  rn_test::FakeOpenAIServer fake;
  auto p = two_tiers();
  // small answers (usage 10/2) and escalates; large answers (usage 7/3).
  ServeSetup setup = escalating_chat_setup(fake, p, "nologprobs");
  LiveServer live(setup, ServeOptions{});
  auto c = live.client();
  auto res = c.Post("/v1/chat/completions",
                    R"({"model": "router-always-small-0.5", "request_id": "abc-1",
                        "messages": [{"role": "user", "content": "hi"}]})",
                    "application/json");
  REQUIRE(res);
  REQUIRE(res->status == 200);
  auto j = json::parse(res->body);
  CHECK(j["usage"]["prompt_tokens"] == 17);
  CHECK(j["usage"]["completion_tokens"] == 5);
  CHECK(j["usage"]["total_tokens"] == 22);
  CHECK(j["routenlp"]["usage_estimated_calls"] == 0);
  CHECK(j["routenlp"]["tier"] == 1);
  CHECK(j["routenlp"]["tier_name"] == "large");
  CHECK(res->get_header_value("x-routenlp-tier") == "large");
  CHECK(res->get_header_value("x-routenlp-request-id") == "abc-1");
  CHECK(std::abs(std::stod(res->get_header_value("x-routenlp-cost")) - j["routenlp"]["cost_usd"].get<double>()) < 1e-9);
  CHECK(std::stod(res->get_header_value("x-routenlp-cost")) > 0);
}

TEST_CASE("chat completions: the answering upstream's tool_calls and finish_reason reach the client",
          "[serve][http][chat][tools]") {
  rn_test::FakeOpenAIServer fake;
  auto p = two_tiers();
  // small answers text and escalates; large answers with a tool call.
  ServeSetup setup = escalating_chat_setup(fake, p, "toolcall");
  LiveServer live(setup, ServeOptions{});
  auto c = live.client();
  const std::string body = R"({"model": "router-always-small-0.5",
      "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
      "messages": [{"role": "user", "content": "weather in Paris?"}]})";
  auto res = c.Post("/v1/chat/completions", body, "application/json");
  REQUIRE(res);
  REQUIRE(res->status == 200);
  auto j = json::parse(res->body);
  const auto& ch = j["choices"][0];
  CHECK(j["routenlp"]["tier_name"] == "large");
  CHECK(ch["finish_reason"] == "tool_calls");
  CHECK(ch["message"]["content"].is_null());
  REQUIRE(ch["message"]["tool_calls"].is_array());
  REQUIRE(ch["message"]["tool_calls"].size() == 1);
  CHECK(ch["message"]["tool_calls"][0]["id"] == "call_1");
  CHECK(ch["message"]["tool_calls"][0]["function"]["name"] == "get_weather");
  CHECK(ch["message"]["tool_calls"][0]["function"]["arguments"] == R"({"city":"Paris"})");
  CHECK(json::parse(fake.last_body())["tools"][0]["function"]["name"] == "get_weather");  // forwarded

  // The small tier answering (model names it: no escalation): its finish_reason, no tool calls.
  res = c.Post("/v1/chat/completions", R"({"model": "small", "messages": [{"role": "user", "content": "weather in Paris?"}]})",
               "application/json");
  REQUIRE(res);
  REQUIRE(res->status == 200);
  j = json::parse(res->body);
  CHECK(j["routenlp"]["tier_name"] == "small");
  CHECK(j["choices"][0]["finish_reason"] == "stop");
  CHECK_FALSE(j["choices"][0]["message"].contains("tool_calls"));
  CHECK(j["choices"][0]["message"]["content"] == "echo: weather in Paris?");
}

TEST_CASE("chat completions: usage is estimated when a tier reports none", "[serve][http][chat]") {
  auto p = two_tiers();
  ServeSetup setup;
  setup.portfolio = p;
  setup.router = make_always_tier_router({"small", "large"}, 1);
  auto answer = [](const TierRequest&) {
    TierResponse r;
    r.text = "12345678";  // 8 bytes: 2 tokens
    r.confidence = 0.9;
    return r;
  };
  setup.tiers = {std::make_shared<CallbackTier>("small", answer), std::make_shared<CallbackTier>("large", answer)};
  LiveServer live(setup, ServeOptions{});
  auto c = live.client();
  int st = 0;
  auto j = post_json(c, "/v1/chat/completions",
                     R"({"messages": [{"role": "user", "content": "abcdefghi"}]})", &st);  // 9 bytes: 3
  REQUIRE(st == 200);
  CHECK(j["usage"]["prompt_tokens"] == 3);
  CHECK(j["usage"]["completion_tokens"] == 2);
  CHECK(j["usage"]["total_tokens"] == 5);
  CHECK(j["routenlp"]["usage_estimated_calls"] == 1);
}

TEST_CASE("chat completions: content parts - generation parameters - task precedence - models",
          "[serve][http][chat]") {
  rn_test::FakeOpenAIServer fake;
  auto p = two_tiers();
  ServeSetup setup;
  setup.portfolio = p;
  setup.router = make_always_tier_router({"small", "large"}, 1);
  setup.tiers = {fake_tier(fake, "small", "echo", p), fake_tier(fake, "large", "echo", p)};
  LiveServer live(setup, ServeOptions{});
  auto c = live.client();
  int st = 0;

  SECTION("text parts are joined and non-text parts are a 400 naming the part") {
    auto j = post_json(c, "/v1/chat/completions",
                       R"({"messages": [{"role": "user", "content": [{"type": "text", "text": "a"},
                                                                     {"type": "text", "text": "b"}]}]})",
                       &st);
    REQUIRE(st == 200);
    CHECK(j["choices"][0]["message"]["content"] == "echo: a\nb");
    auto sent = json::parse(fake.last_body());
    CHECK(sent["messages"][0]["content"] == "a\nb");
    j = post_json(c, "/v1/chat/completions",
                  R"({"messages": [{"role": "user", "content": [{"type": "text", "text": "a"},
                                   {"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}]})",
                  &st);
    CHECK(st == 400);
    CHECK(j["error"]["message"].get<std::string>().find("messages[0].content[1].type: 'image_url'") != std::string::npos);
    CHECK(j["error"]["type"] == "invalid_request_error");
  }
  SECTION("generation parameters reach the upstream tier") {
    auto j = post_json(c, "/v1/chat/completions",
                       R"({"model": "large", "temperature": 0.7, "top_p": 0.9, "stop": ["\n\n"], "seed": 7,
                           "presence_penalty": 0.5, "frequency_penalty": 0.25, "max_completion_tokens": 33,
                           "response_format": {"type": "json_object"},
                           "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
                           "tool_choice": "auto", "logprobs": false, "model_extra": 1,
                           "messages": [{"role": "user", "content": "hi", "name": "bob"}]})",
                       &st);
    REQUIRE(st == 200);
    auto sent = json::parse(fake.last_body());
    CHECK(sent["model"] == "echo");
    CHECK(sent["temperature"] == 0.7);
    CHECK(sent["top_p"] == 0.9);
    CHECK(sent["stop"][0] == "\n\n");
    CHECK(sent["seed"] == 7);
    CHECK(sent["presence_penalty"] == 0.5);
    CHECK(sent["frequency_penalty"] == 0.25);
    CHECK(sent["max_tokens"] == 33);
    CHECK(sent["response_format"]["type"] == "json_object");
    CHECK(sent["tools"][0]["function"]["name"] == "f");
    CHECK(sent["tool_choice"] == "auto");
    CHECK(sent["logprobs"] == true);  // the tier's confidence needs them
    CHECK(sent["stream"] == false);
    CHECK_FALSE(sent.contains("model_extra"));  // only known generation parameters pass
    CHECK(sent["messages"][0]["name"] == "bob");
  }
  SECTION("task: body field over header over model suffix over default") {
    httplib::Headers h = {{"x-routenlp-task", "from-header"}};
    auto body = [](const std::string& extra) {
      return R"({"model": "router-always-large-0.5:from-model", "messages": [{"role": "user", "content": "q"}])" +
             extra + "}";
    };
    auto task_of = [&](const httplib::Headers& hh, const std::string& extra) {
      auto r = c.Post("/v1/chat/completions", hh, body(extra), "application/json");
      REQUIRE(r);
      REQUIRE(r->status == 200);
      return json::parse(r->body)["routenlp"]["task"].get<std::string>();
    };
    CHECK(task_of(h, R"(, "task": "from-body")") == "from-body");
    CHECK(task_of(h, "") == "from-header");
    CHECK(task_of({}, "") == "from-model");
    auto j = post_json(c, "/v1/chat/completions", R"({"messages": [{"role": "user", "content": "q"}]})", &st);
    CHECK(j["routenlp"]["task"] == "default");
    // A tier name with a task suffix calls that tier.
    j = post_json(c, "/v1/chat/completions", R"({"model": "small:t", "messages": [{"role": "user", "content": "q"}]})", &st);
    CHECK(st == 200);
    CHECK(j["model"] == "small");
  }
  SECTION("/v1/models lists the served names and an unknown model is an OpenAI error naming them") {
    auto r = c.Get("/v1/models");
    REQUIRE(r);
    auto m = json::parse(r->body);
    std::vector<std::string> ids;
    for (const auto& d : m["data"]) ids.push_back(d["id"]);
    CHECK(ids == std::vector<std::string>{"small", "large", "threshold", "router-always-large-0.5"});
    auto j = post_json(c, "/v1/chat/completions", R"({"model": "gpt-9", "messages": [{"role": "user", "content": "q"}]})", &st);
    CHECK(st == 404);
    CHECK(j["error"]["type"] == "not_found");
    CHECK(j["error"]["message"].get<std::string>().find("router-always-large-0.5") != std::string::npos);
    j = post_json(c, "/v1/chat/completions", R"({"n": 2, "messages": [{"role": "user", "content": "q"}]})", &st);
    CHECK(st == 400);
    CHECK(j["error"]["message"].get<std::string>().find("n:") != std::string::npos);
  }
}

TEST_CASE("several routers per server chosen by the model name", "[serve][http][routers]") {
  rn_test::FakeOpenAIServer fake;
  auto p = two_tiers();
  ServeSetup setup;
  setup.portfolio = p;
  setup.router = make_always_tier_router({"small", "large"}, 0);  // "always-small"
  setup.routers = {{"big", make_always_tier_router({"small", "large"}, 1)}};
  setup.tiers = {fake_tier(fake, "small", "echo", p), fake_tier(fake, "large", "echo", p)};
  LiveServer live(setup, ServeOptions{});
  auto c = live.client();
  int st = 0;
  auto j = post_json(c, "/route", R"({"query": "q", "policy": "router-big-0.5"})", &st);
  CHECK(st == 200);
  CHECK(j["tier_name"] == "large");
  j = post_json(c, "/route", R"({"query": "q", "policy": "router-always-small-0.5"})", &st);
  CHECK(st == 200);
  CHECK(j["tier_name"] == "small");
  j = post_json(c, "/v1/chat/completions",
                R"({"model": "router-big-0.5:gsm8k", "messages": [{"role": "user", "content": "q"}]})", &st);
  CHECK(st == 200);
  CHECK(j["routenlp"]["routing"]["tier_name"] == "large");
  CHECK(j["routenlp"]["task"] == "gsm8k");
  j = post_json(c, "/v1/chat/completions",
                R"({"model": "router-mf-0.116", "messages": [{"role": "user", "content": "q"}]})", &st);
  CHECK(st == 404);
  CHECK(j["error"]["type"] == "not_found");
  std::string m = j["error"]["message"];
  CHECK(m.find("no router named 'mf'") != std::string::npos);
  CHECK(m.find("router-big-<t>") != std::string::npos);
  CHECK(m.find("router-always-small-<t>") != std::string::npos);
  j = post_json(c, "/route", R"({"query": "q", "policy": "router-mf-0.116"})", &st);
  CHECK(st == 400);
  auto models = c.Get("/v1/models");
  REQUIRE(models);
  CHECK(models->body.find("\"router-big-0.5\"") != std::string::npos);
  auto health = json::parse(c.Get("/health")->body);
  CHECK(health["routers"] == json::array({"always-small", "big"}));
  // Duplicate names and mismatched tiers are refused at construction.
  ServeSetup dup = setup;
  dup.routers.push_back({"big", make_always_tier_router({"small", "large"}, 0)});
  CHECK_THROWS_WITH(RouteServer(dup, ServeOptions{}), Catch::Contains("two routers are named 'big'"));
  ServeSetup other = setup;
  other.routers = {{"x", make_always_tier_router({"a", "b"}, 0)}};
  CHECK_THROWS_WITH(RouteServer(other, ServeOptions{}), Catch::Contains("router 'x' has other tiers"));
}

TEST_CASE("load_serve_config: routers list of saved router directories", "[serve][routers]") {
  std::string dir = std::string(RN_BINARY_DIR) + "/serve_cfg_routers";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  save_router(*make_always_tier_router({"small", "large"}, 1), dir + "/big");
  save_router(*make_always_tier_router({"a", "b"}, 1), dir + "/other");
  std::ofstream(dir + "/portfolio.yaml")
      << "tiers:\n  - {name: small, price_per_1m_input: 1, price_per_1m_output: 1}\n"
         "  - {name: large, price_per_1m_input: 5, price_per_1m_output: 5}\n";
  auto write = [&](const std::string& name, const std::string& routers) {
    std::ofstream(dir + "/" + name) << "portfolio: portfolio.yaml\n"
                                       "router: {kind: always, tier: small}\n" << routers;
    return dir + "/" + name;
  };
  auto cfg = load_serve_config(write("ok.yaml", "routers:\n  - {name: big, dir: big}\n"));
  REQUIRE(cfg.setup.routers.size() == 1);
  CHECK(cfg.setup.routers[0].name == "big");
  CHECK(cfg.setup.routers[0].router->tiers() == std::vector<std::string>{"small", "large"});
  CHECK_THROWS_WITH(load_serve_config(write("missing.yaml", "routers:\n  - {name: big, dir: nowhere}\n")),
                    Catch::Contains("missing.yaml:4") && Catch::Contains("routers[0].dir"));
  CHECK_THROWS_WITH(load_serve_config(write("dup.yaml", "routers:\n  - {name: big, dir: big}\n  - {name: big, dir: big}\n")),
                    Catch::Contains("routers[1].name") && Catch::Contains("listed twice"));
  CHECK_THROWS_WITH(load_serve_config(write("tiers.yaml", "routers:\n  - {name: o, dir: other}\n")),
                    Catch::Contains("routers[0].dir") && Catch::Contains("other tiers"));
  CHECK_THROWS_WITH(load_serve_config(write("key.yaml", "routers:\n  - {name: big, dri: big}\n")),
                    Catch::Contains("routers[0].dri"));
}

namespace {
json post_auth(httplib::Client& c, const std::string& path, const std::string& body, const std::string& key,
               int* status, std::string* retry_after = nullptr, std::string* raw = nullptr) {
  httplib::Headers h;
  if (!key.empty()) h.emplace("Authorization", "Bearer " + key);
  auto res = c.Post(path.c_str(), h, body, "application/json");
  REQUIRE(res);
  *status = res->status;
  if (retry_after) *retry_after = res->get_header_value("Retry-After");
  if (raw) *raw += res->body;
  return json::parse(res->body, nullptr, false);
}
}  // namespace

TEST_CASE("API keys: 401 without a valid key - request and cost budgets - rate limit - access log",
          "[serve][http][auth]") {
  const std::string alice = "sk-alice-secret-123456", bob = "bob-secret-abcdefgh", carol = "carol-secret-xyz987";
  auto p = two_tiers();
  ServeSetup setup;
  setup.portfolio = p;
  setup.router = make_always_tier_router({"small", "large"}, 1);
  auto paid = [](const TierRequest& r) {
    TierResponse out;
    out.text = "answer to " + r.query;
    out.confidence = 0.99;
    out.cost = 1.0;
    return out;
  };
  setup.tiers = {std::make_shared<CallbackTier>("small", paid), std::make_shared<CallbackTier>("large", paid)};
  ApiKey a{"alice", alice, 4, -1, 0, 0}, b{"bob", bob, -1, -1, 0.5, 2}, c3{"carol", carol, -1, 1.5, 0, 0};
  setup.api_keys = {a, b, c3};
  std::string log = std::string(RN_BINARY_DIR) + "/serve_access_test.jsonl";
  std::filesystem::remove(log);
  setup.access_log = log;
  LiveServer live(setup, ServeOptions{});
  auto c = live.client();
  int st = 0;
  std::string everything;  // every response body and header the server sent
  const std::string chat = R"({"messages": [{"role": "user", "content": "capital of France?"}]})";

  auto j = post_auth(c, "/v1/chat/completions", chat, "", &st, nullptr, &everything);
  CHECK(st == 401);
  CHECK(j["error"]["type"] == "invalid_api_key");
  CHECK(j["error"]["message"].get<std::string>().find("Bearer") != std::string::npos);
  j = post_auth(c, "/v1/chat/completions", chat, alice + "x", &st, nullptr, &everything);
  CHECK(st == 401);
  CHECK(j["error"]["message"] == "invalid API key");
  CHECK(c.Get("/health")->status == 200);  // open
  CHECK(c.Get("/v1/models")->status == 401);

  // alice: 4 requests, then her request budget is spent.
  for (int i = 0; i < 4; ++i) {
    post_auth(c, i % 2 ? "/route" : "/v1/chat/completions",
              i % 2 ? R"({"query": "capital of France?"})" : chat, alice, &st, nullptr, &everything);
    CHECK(st == 200);
  }
  j = post_auth(c, "/route", R"({"query": "q"})", alice, &st, nullptr, &everything);
  CHECK(st == 429);
  CHECK(j["error"]["type"] == "insufficient_quota");
  CHECK(j["error"]["message"].get<std::string>().find("'alice'") != std::string::npos);

  // bob: burst 2 at 0.5/s; the third request at once is rate limited with Retry-After.
  std::string retry;
  post_auth(c, "/route", R"({"query": "q"})", bob, &st, &retry, &everything);
  CHECK(st == 200);
  post_auth(c, "/route", R"({"query": "q"})", bob, &st, &retry, &everything);
  CHECK(st == 200);
  j = post_auth(c, "/route", R"({"query": "q"})", bob, &st, &retry, &everything);
  CHECK(st == 429);
  CHECK(j["error"]["type"] == "rate_limit_exceeded");
  CHECK(std::atoi(retry.c_str()) >= 1);
  CHECK(std::atoi(retry.c_str()) <= 2);

  // carol: each answer costs 1 USD; budget 1.5 covers two requests (the second overshoots).
  post_auth(c, "/v1/chat/completions", chat, carol, &st, nullptr, &everything);
  CHECK(st == 200);
  post_auth(c, "/v1/chat/completions", chat, carol, &st, nullptr, &everything);
  CHECK(st == 200);
  j = post_auth(c, "/v1/chat/completions", chat, carol, &st, nullptr, &everything);
  CHECK(st == 429);
  CHECK(j["error"]["type"] == "insufficient_quota");

  httplib::Headers hb = {{"Authorization", "Bearer " + alice}};
  std::string m = live.server->metrics_text();
  CHECK(m.find("routenlp_key_requests_total{key=\"bob\",code=\"429\"} 1") != std::string::npos);
  CHECK(m.find("routenlp_key_requests_total{key=\"alice\",code=\"200\"} 4") != std::string::npos);
  CHECK(m.find("routenlp_key_cost_usd_total{key=\"carol\"} 2") != std::string::npos);
  CHECK(m.find("routenlp_policy_requests_total{policy=\"threshold\"}") != std::string::npos);
  everything += c.Get("/metrics")->body;
  live.stop();

  std::ifstream in(log);
  std::string line, all;
  int lines = 0;
  while (std::getline(in, line)) {
    auto e = json::parse(line);
    all += line + "\n";
    ++lines;
    CHECK(e.contains("time"));
    CHECK(e.contains("latency_ms"));
  }
  CHECK(lines == 15);  // every authenticated route request, refused ones included
  CHECK(all.find("\"key_id\":\"carol\"") != std::string::npos);
  CHECK(all.find("\"status\":429") != std::string::npos);
  CHECK(all.find("capital of France") == std::string::npos);  // no prompt text by default
  for (const auto& k : {alice, bob, carol}) {
    CHECK(all.find(k) == std::string::npos);
    CHECK(everything.find(k) == std::string::npos);
    CHECK(m.find(k) == std::string::npos);
  }
}

TEST_CASE("load_serve_config: API keys from a file and an environment variable", "[serve][auth]") {
  std::string dir = std::string(RN_BINARY_DIR) + "/serve_cfg_auth";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/portfolio.yaml")
      << "tiers:\n  - {name: small, price_per_1m_input: 1, price_per_1m_output: 1}\n"
         "  - {name: large, price_per_1m_input: 5, price_per_1m_output: 5}\n";
  std::ofstream(dir + "/keys.txt") << "# id key limits\nalice sk-alice-0123456789 max_requests=10 rate_per_s=2\n\n"
                                      "bob bob-key-0123456789   # defaults\n";
  std::ofstream(dir + "/badkeys.txt") << "alice sk-alice-0123456789 max_request=10\n";
  auto write = [&](const std::string& name, const std::string& auth) {
    std::ofstream(dir + "/" + name) << "portfolio: portfolio.yaml\nrouter: {kind: always, tier: small}\n"
                                    << auth << "server: {access_log: access.jsonl}\n";
    return dir + "/" + name;
  };
  ::setenv("RN_TEST_SERVE_KEYS", "carol carol-key-0123456789 max_cost_usd=2;dave dave-key-0123456789", 1);
  auto cfg = load_serve_config(write("ok.yaml", "auth:\n  keys_file: keys.txt\n  keys_env: RN_TEST_SERVE_KEYS\n"
                                                "  defaults: {max_cost_usd: 5, burst: 3}\n"));
  REQUIRE(cfg.setup.api_keys.size() == 4);
  CHECK(cfg.setup.api_keys[0].id == "alice");
  CHECK(cfg.setup.api_keys[0].max_requests == 10);
  CHECK(cfg.setup.api_keys[0].rate_per_s == 2);
  CHECK(cfg.setup.api_keys[0].max_cost_usd == 5);
  CHECK(cfg.setup.api_keys[1].burst == 3);
  CHECK(cfg.setup.api_keys[2].id == "carol");
  CHECK(cfg.setup.api_keys[2].max_cost_usd == 2);
  CHECK(cfg.setup.api_keys[3].key == "dave-key-0123456789");
  CHECK(cfg.setup.access_log == dir + "/access.jsonl");
  std::string what;
  try {
    load_serve_config(write("bad.yaml", "auth: {keys_file: badkeys.txt}\n"));
  } catch (const Error& e) {
    what = e.what();
  }
  CHECK(what.find("auth.keys_file") != std::string::npos);
  CHECK(what.find("line 1") != std::string::npos);
  CHECK(what.find("unknown limit 'max_request'") != std::string::npos);
  CHECK(what.find("sk-alice-0123456789") == std::string::npos);
  ::unsetenv("RN_TEST_SERVE_UNSET");
  CHECK_THROWS_WITH(load_serve_config(write("unset.yaml", "auth: {keys_env: RN_TEST_SERVE_UNSET}\n")),
                    Catch::Contains("RN_TEST_SERVE_UNSET is not set"));
}

TEST_CASE("chat completions: stream true gives server-sent events ending with DONE", "[serve][http][chat][stream]") {
  auto p = two_tiers();
  ServeSetup setup;
  setup.portfolio = p;
  setup.router = make_always_tier_router({"small", "large"}, 0);
  std::string long_answer;
  for (int i = 0; i < 40; ++i) long_answer += "word" + std::to_string(i) + " ";
  long_answer += "caf\xc3\xa9";
  auto fails = [](const TierRequest&) { return TierResponse::failure(Status::tier, "small is down"); };
  auto answers = [long_answer](const TierRequest&) {
    TierResponse r;
    r.text = long_answer;
    r.confidence = 0.9;
    r.cost = 0.5;
    r.input_tokens = 11;
    r.output_tokens = 7;
    return r;
  };
  setup.tiers = {std::make_shared<CallbackTier>("small", fails), std::make_shared<CallbackTier>("large", answers)};
  LiveServer live(setup, ServeOptions{});
  auto c = live.client();
  auto res = c.Post("/v1/chat/completions",
                    R"({"stream": true, "stream_options": {"include_usage": true},
                        "messages": [{"role": "user", "content": "q"}]})",
                    "application/json");
  REQUIRE(res);
  REQUIRE(res->status == 200);
  CHECK(res->get_header_value("Content-Type").rfind("text/event-stream", 0) == 0);
  CHECK(res->get_header_value("x-routenlp-tier") == "large");
  // Parse the events.
  std::vector<std::string> data;
  size_t pos = 0;
  while ((pos = res->body.find("data: ", pos)) != std::string::npos) {
    size_t end = res->body.find("\n\n", pos);
    REQUIRE(end != std::string::npos);
    data.push_back(res->body.substr(pos + 6, end - pos - 6));
    pos = end + 2;
  }
  REQUIRE(data.size() >= 5);
  CHECK(data.back() == "[DONE]");
  std::string text;
  int content_chunks = 0;
  json finish, usage;
  for (size_t i = 0; i + 1 < data.size(); ++i) {
    auto j = json::parse(data[i]);  // every chunk is valid JSON (no UTF-8 character cut)
    CHECK(j["object"] == "chat.completion.chunk");
    CHECK(j["model"] == "large");
    if (j["choices"].empty()) {
      usage = j["usage"];
      continue;
    }
    const auto& ch = j["choices"][0];
    if (i == 0) CHECK(ch["delta"]["role"] == "assistant");
    if (ch["delta"].contains("content") && !ch["delta"]["content"].get<std::string>().empty()) {
      text += ch["delta"]["content"].get<std::string>();
      ++content_chunks;
    }
    if (!ch["finish_reason"].is_null()) finish = j;
  }
  CHECK(text == long_answer);
  CHECK(content_chunks >= 3);
  REQUIRE(finish.is_object());
  CHECK(finish["choices"][0]["finish_reason"] == "stop");
  CHECK(finish["routenlp"]["tier_name"] == "large");
  CHECK(finish["routenlp"]["trace"].size() == 2);  // small failed first: escalation happened before streaming
  CHECK(usage["total_tokens"] == 18);

  // No tier answering: a JSON error, not an event stream.
  ServeSetup down = setup;
  down.tiers = {std::make_shared<CallbackTier>("small", fails), std::make_shared<CallbackTier>("large", fails)};
  LiveServer live2(down, ServeOptions{});
  auto c2 = live2.client();
  auto bad = c2.Post("/v1/chat/completions", R"({"stream": true, "messages": [{"role": "user", "content": "q"}]})",
                     "application/json");
  REQUIRE(bad);
  CHECK(bad->status == 502);
  CHECK(json::parse(bad->body)["error"]["type"] == "upstream_error");
}
