// Test helper: a fake OpenAI-compatible /v1/chat/completions server on 127.0.0.1 (ephemeral
// port), driven by the request's "model" field:
//   echo          200, answer "echo: <last user message>", logprobs [-0.1, -0.3], usage 10/2
//   nologprobs    200, answer without logprobs, usage 7/3
//   fail500       500 always               flaky429    429 (Retry-After: 0) twice, then echo
//   bad400        400 always               malformed   200 with a body that is not JSON
//   nochoices     200 {"choices": []}      slow        sleeps 1500 ms, then echo
//   auth          401 unless "Authorization: Bearer sekret"
//   authecho      401 whose message echoes the Authorization header (a leaky upstream)
//   malformedecho 200 with a non-JSON body that echoes the Authorization header
//   huge          200, a valid answer whose content is 3 MiB
// Counts requests per model so tests can check retries.
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

namespace rn_test {

class FakeOpenAIServer {
 public:
  FakeOpenAIServer() {
    svr_.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
      handle(req, res);
    });
    port_ = svr_.bind_to_any_port("127.0.0.1");
    // bind_to_any_port() already listens: connections queue until the loop accepts them.
    thread_ = std::thread([this] { svr_.listen_after_bind(); });
    // stop() is a no-op until the accept loop runs (httplib 0.11): wait for it.
    while (!svr_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~FakeOpenAIServer() {
    svr_.stop();
    thread_.join();
  }
  int port() const { return port_; }
  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int count(const std::string& model) {
    std::lock_guard<std::mutex> lock(mu_);
    return counts_[model];
  }
  std::string last_body() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_body_;
  }

 private:
  static nlohmann::json answer(const std::string& text, bool logprobs, int in, int out) {
    nlohmann::json choice = {{"index", 0},
                             {"message", {{"role", "assistant"}, {"content", text}}},
                             {"finish_reason", "stop"}};
    if (logprobs)
      choice["logprobs"] = {{"content", nlohmann::json::array({{{"token", "a"}, {"logprob", -0.1}},
                                                                {{"token", "b"}, {"logprob", -0.3}}})}};
    return {{"id", "chatcmpl-fake"},
            {"object", "chat.completion"},
            {"choices", nlohmann::json::array({choice})},
            {"usage", {{"prompt_tokens", in}, {"completion_tokens", out}, {"total_tokens", in + out}}}};
  }

  void handle(const httplib::Request& req, httplib::Response& res) {
    auto body = nlohmann::json::parse(req.body, nullptr, false);
    std::string model = body.is_object() && body.contains("model") ? body["model"].get<std::string>() : "";
    std::string last;
    if (body.is_object() && body.contains("messages") && body["messages"].is_array() &&
        !body["messages"].empty())
      last = body["messages"].back().value("content", "");
    int n;
    {
      std::lock_guard<std::mutex> lock(mu_);
      n = ++counts_[model];
      last_body_ = req.body;
    }
    auto ok = [&](bool lp, int in, int out) {
      res.set_content(answer("echo: " + last, lp, in, out).dump(), "application/json");
    };
    if (model == "echo") return ok(true, 10, 2);
    if (model == "nologprobs") return ok(false, 7, 3);
    if (model == "toolcall") {  // a tool call, no content, finish_reason tool_calls
      nlohmann::json a = answer("", false, 9, 4);
      a["choices"][0]["message"] = {
          {"role", "assistant"}, {"content", nullptr},
          {"tool_calls", nlohmann::json::array({{{"id", "call_1"}, {"type", "function"},
                                                 {"function", {{"name", "get_weather"},
                                                               {"arguments", R"({"city":"Paris"})"}}}}})}};
      a["choices"][0]["finish_reason"] = "tool_calls";
      return res.set_content(a.dump(), "application/json");
    }
    if (model == "fail500") {
      res.status = 500;
      res.set_content(R"({"error":{"message":"upstream exploded"}})", "application/json");
      return;
    }
    if (model == "flaky429") {
      if (n <= 2) {
        res.status = 429;
        res.set_header("Retry-After", "0");
        res.set_content(R"({"error":{"message":"rate limited"}})", "application/json");
        return;
      }
      return ok(true, 10, 2);
    }
    if (model == "bad400") {
      res.status = 400;
      res.set_content(R"({"error":{"message":"bad request: max_tokens too large"}})",
                      "application/json");
      return;
    }
    if (model == "malformed") return res.set_content("{\"choices\": [oops", "application/json");
    if (model == "nochoices") return res.set_content(R"({"choices": []})", "application/json");
    if (model == "slow") {
      std::this_thread::sleep_for(std::chrono::milliseconds(1500));
      return ok(true, 10, 2);
    }
    if (model == "auth") {
      if (req.get_header_value("Authorization") != "Bearer sekret") {
        res.status = 401;
        res.set_content(R"({"error":{"message":"invalid api key"}})", "application/json");
        return;
      }
      return ok(true, 10, 2);
    }
    if (model == "authecho") {
      res.status = 401;
      nlohmann::json e = {{"error", {{"message", "Incorrect API key provided: " +
                                                     req.get_header_value("Authorization")}}}};
      return res.set_content(e.dump(), "application/json");
    }
    if (model == "huge") return res.set_content(answer(std::string(3u << 20, 'x'), false, 1, 1).dump(),
                                                "application/json");
    if (model == "malformedecho")
      return res.set_content("oops " + req.get_header_value("Authorization"), "text/plain");
    res.status = 404;
    res.set_content(R"({"error":{"message":"unknown model"}})", "application/json");
  }

  httplib::Server svr_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::map<std::string, int> counts_;
  std::string last_body_;
};

}  // namespace rn_test
