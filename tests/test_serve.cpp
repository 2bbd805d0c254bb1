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
