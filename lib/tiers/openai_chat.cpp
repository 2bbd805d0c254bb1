// OpenAI-compatible chat completions client (see openai_chat.hpp).
#include "tiers/openai_chat.hpp"

#include <algorithm>
#include <cctype>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <thread>

namespace routenlp::openai {

using json = nlohmann::json;

namespace {

std::string clip(const std::string& s, size_t n = 200) {
  std::string out = s.size() > n ? s.substr(0, n) + "..." : s;
  for (char& c : out)
    if (c == '\n' || c == '\r') c = ' ';
  return out;
}

// Error message from an OpenAI-style error body {"error": {"message": ...}} if present.
std::string server_error_message(const std::string& body) {
  json j = json::parse(body, nullptr, false);
  if (!j.is_discarded() && j.is_object() && j.contains("error")) {
    const auto& e = j["error"];
    if (e.is_object() && e.contains("message") && e["message"].is_string())
      return clip(e["message"].get<std::string>());
    if (e.is_string()) return clip(e.get<std::string>());
  }
  return clip(body);
}

bool retryable_status(long s) { return s == 408 || s == 429 || (s >= 500 && s <= 599); }

// Mean token log-probability of choices[0], or nullopt when absent. Accepts the chat format
// (logprobs.content[].logprob) and the legacy completions one (logprobs.token_logprobs[]).
std::optional<double> mean_logprob(const json& choice) {
  if (!choice.contains("logprobs") || !choice["logprobs"].is_object()) return std::nullopt;
  const auto& lp = choice["logprobs"];
  double sum = 0.0;
  size_t n = 0;
  auto add = [&](const json& v) {
    if (v.is_number()) {
      double x = v.get<double>();
      if (std::isfinite(x)) {
        sum += std::min(0.0, x);
        ++n;
      }
    }
  };
  if (lp.contains("content") && lp["content"].is_array()) {
    for (const auto& t : lp["content"])
      if (t.is_object() && t.contains("logprob")) add(t["logprob"]);
  } else if (lp.contains("token_logprobs") && lp["token_logprobs"].is_array()) {
    for (const auto& v : lp["token_logprobs"]) add(v);
  }
  if (n == 0) return std::nullopt;
  return sum / static_cast<double>(n);
}

}  // namespace

ChatExtras& last_chat_extras() {
  thread_local ChatExtras extras;
  return extras;
}

std::string chat_url(const std::string& base_url) {
  std::string b = base_url;
  while (!b.empty() && b.back() == '/') b.pop_back();
  if (b.size() >= 3 && b.compare(b.size() - 3, 3, "/v1") == 0) return b + "/chat/completions";
  return b + "/v1/chat/completions";
}

ChatResult parse_chat_response(const std::string& body) {
  ChatResult r;
  auto fail = [&](std::string why) {
    r.ok = false;
    r.status = Status::tier;
    r.error = std::move(why);
    return r;
  };
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded()) return fail("malformed JSON in response: " + clip(body, 80));
  if (!j.is_object()) return fail("response is not a JSON object");
  if (!j.contains("choices") || !j["choices"].is_array() || j["choices"].empty())
    return fail("response has no choices");
  const auto& c = j["choices"][0];
  if (!c.is_object()) return fail("choices[0] is not an object");
  if (c.contains("message") && c["message"].is_object()) {
    const auto& m = c["message"];
    if (m.contains("content") && m["content"].is_string())
      r.text = m["content"].get<std::string>();
    else if (!(m.contains("content") && m["content"].is_null()) &&
             !(m.contains("tool_calls") && m["tool_calls"].is_array()))
      return fail("choices[0].message.content missing or not a string");
  } else if (c.contains("text") && c["text"].is_string()) {
    r.text = c["text"].get<std::string>();
  } else {
    return fail("choices[0] has no message");
  }
  if (c.contains("finish_reason") && c["finish_reason"].is_string())
    r.finish_reason = c["finish_reason"].get<std::string>();
  if (c.contains("message") && c["message"].is_object()) {
    const auto& m = c["message"];
    if (m.contains("tool_calls") && m["tool_calls"].is_array() && !m["tool_calls"].empty())
      r.tool_calls = m["tool_calls"].dump(-1, ' ', false, json::error_handler_t::replace);
  }
  if (auto m = mean_logprob(c)) r.confidence = std::exp(*m);
  if (j.contains("usage") && j["usage"].is_object()) {
    const auto& u = j["usage"];
    auto get = [&](const char* k) -> int64_t {
      if (u.contains(k) && u[k].is_number_integer()) return std::max<int64_t>(0, u[k].get<int64_t>());
      return 0;
    };
    r.prompt_tokens = get("prompt_tokens");
    r.completion_tokens = get("completion_tokens");
    r.usage_reported = u.contains("prompt_tokens") || u.contains("completion_tokens");
  }
  r.ok = true;
  return r;
}

ChatClient::ChatClient(OpenAITierOptions options)
    : opts_(std::move(options)), pool_(std::max<size_t>(1, opts_.max_idle_connections)) {
  if (opts_.base_url.empty())
    throw Error(Status::invalid_argument, "OpenAICompatibleTier '" + opts_.name + "': base_url is empty");
  if (opts_.base_url.rfind("http://", 0) != 0 && opts_.base_url.rfind("https://", 0) != 0)
    throw Error(Status::invalid_argument, "OpenAICompatibleTier '" + opts_.name +
                                              "': base_url must start with http:// or https:// (got '" +
                                              opts_.base_url + "')");
  if (opts_.model.empty())
    throw Error(Status::invalid_argument, "OpenAICompatibleTier '" + opts_.name + "': model is empty");
  if (opts_.max_retries < 0 || opts_.timeout_ms <= 0 || opts_.connect_timeout_ms <= 0 ||
      opts_.backoff_initial_ms < 0 || opts_.backoff_max_ms < opts_.backoff_initial_ms ||
      !std::isfinite(opts_.temperature) || opts_.temperature < 0)
    throw Error(Status::invalid_argument, "OpenAICompatibleTier '" + opts_.name +
                                              "': invalid timeout/retry/temperature option");
  url_ = chat_url(opts_.base_url);
  rng_.seed(opts_.jitter_seed != 0 ? opts_.jitter_seed : std::random_device{}());
}

std::string ChatClient::request_body(const std::vector<Message>& messages, int max_tokens,
                                     const std::string& extra_body) const {
  json msgs = json::array();
  if (!opts_.system_prompt.empty())
    msgs.push_back({{"role", "system"}, {"content", opts_.system_prompt}});
  json extra = extra_body.empty() ? json::object() : json::parse(extra_body);
  if (!extra.is_object()) throw Error(Status::invalid_argument, "chat extra_body: expected a JSON object");
  if (auto it = extra.find("messages"); it != extra.end() && it->is_array()) {
    for (const auto& m : *it) msgs.push_back(m);
  } else {
    for (const auto& m : messages) msgs.push_back({{"role", m.role}, {"content", m.content}});
  }
  json body = {{"model", opts_.model}, {"messages", std::move(msgs)},
               {"temperature", opts_.temperature}, {"stream", false}};
  if (max_tokens > 0) body["max_tokens"] = max_tokens;
  if (opts_.request_logprobs) body["logprobs"] = true;
  for (auto it = extra.begin(); it != extra.end(); ++it) {
    const std::string& k = it.key();
    if (k == "messages" || k == "model" || k == "stream") continue;
    if (k == "logprobs" && opts_.request_logprobs) continue;  // kept on: it is the confidence
    body[k] = it.value();
  }
  // Replace invalid UTF-8 rather than throwing: the query text comes from outside.
  return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

double ChatClient::backoff_ms(int retry) {
  double cap = std::min(opts_.backoff_max_ms, opts_.backoff_initial_ms * std::ldexp(1.0, retry));
  std::lock_guard<std::mutex> lock(rng_mu_);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  // "Equal jitter": half fixed, half random, so a retry never fires instantly.
  return cap * 0.5 + cap * 0.5 * u(rng_);
}

// After a large response the allocator may keep its pages: hand them back to the system so one
// huge upstream body does not raise the server's memory for good (glibc only).
void ChatClient::release_large_buffers() {
#if defined(__GLIBC__)
  if (last_body_bytes_.exchange(0) >= (size_t{1} << 20)) malloc_trim(0);
#endif
}

std::string redact_secrets(std::string s, const std::string& key, bool shapes) {
  if (key.size() >= 4)
    for (size_t p = s.find(key); p != std::string::npos; p = s.find(key, p + 10))
      s.replace(p, key.size(), "[redacted]");
  if (!shapes) return s;
  auto token_char = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
           c == '~' || c == '+' || c == '/' || c == '=';
  };
  // "Bearer <token>" (any case) and "sk-<token>": the token itself goes.
  for (const std::string& lead : {std::string("bearer "), std::string("sk-")}) {
    std::string lower = s;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    size_t p = 0;
    std::string out;
    size_t copied = 0;
    while ((p = lower.find(lead, p)) != std::string::npos) {
      size_t b = p + lead.size(), e = b;
      while (e < s.size() && token_char(s[e])) ++e;
      if (e - b >= 4 && s.compare(b, 10, "[redacted]") != 0) {
        out.append(s, copied, b - copied);
        out += "[redacted]";
        copied = e;
      }
      p = e > p ? e : p + 1;
    }
    out.append(s, copied, std::string::npos);
    s = std::move(out);
  }
  return s;
}

ChatResult ChatClient::call(const std::vector<Message>& messages, http::Clock::time_point deadline,
                            const std::function<bool()>& cancelled, int max_tokens_override,
                            const std::string& extra_body) {
  std::string key;
  if (!opts_.api_key_env.empty())
    if (const char* k = std::getenv(opts_.api_key_env.c_str())) key = k;
  // Nothing the upstream said leaves the tier with the key (or another secret) in it.
  ChatResult r = call_once_with_retries(messages, deadline, cancelled, max_tokens_override, key, extra_body);
  release_large_buffers();
  r.error = redact_secrets(std::move(r.error), key);
  r.text = redact_secrets(std::move(r.text), key, /*shapes=*/false);
  r.tool_calls = redact_secrets(std::move(r.tool_calls), key, /*shapes=*/false);
  return r;
}

ChatResult ChatClient::call_once_with_retries(const std::vector<Message>& messages,
                                              http::Clock::time_point deadline,
                                              const std::function<bool()>& cancelled,
                                              int max_tokens_override, const std::string& key,
                                              const std::string& extra_body) {
  auto start = http::Clock::now();
  auto own = start + std::chrono::microseconds(static_cast<int64_t>(opts_.timeout_ms * 1000.0));
  deadline = std::min(deadline, own);

  http::PostRequest req;
  req.url = url_;
  req.body = request_body(messages, max_tokens_override > 0 ? max_tokens_override : opts_.max_tokens, extra_body);
  req.headers = {"Content-Type: application/json", "Accept: application/json"};
  if (!opts_.api_key_env.empty()) {
    if (key.empty()) {
      ChatResult r;
      r.status = Status::tier;
      r.error = "tier '" + opts_.name + "': environment variable " + opts_.api_key_env +
                " (API key) is not set";
      return r;
    }
    req.headers.push_back(std::string("Authorization: Bearer ") + key);
  }
  req.connect_timeout_ms = static_cast<long>(opts_.connect_timeout_ms);
  req.max_response_bytes = opts_.max_response_bytes;
  req.deadline = deadline;
  req.cancelled = cancelled;

  const std::string where = "tier '" + opts_.name + "' (" + url_ + ")";
  ChatResult last;
  for (int attempt = 0;; ++attempt) {
    http::PostResult pr = pool_.post(req);
    size_t seen = last_body_bytes_.load();
    while (pr.body.size() > seen && !last_body_bytes_.compare_exchange_weak(seen, pr.body.size())) {
    }
    ChatResult r;
    r.attempts = attempt + 1;
    bool retry = false;
    if (pr.outcome == http::Outcome::ok) {
      r.http_status = pr.status;
      if (pr.status >= 200 && pr.status < 300) {
        ChatResult parsed = parse_chat_response(pr.body);
        parsed.attempts = r.attempts;
        parsed.http_status = pr.status;
        if (!parsed.ok) parsed.error = where + ": " + parsed.error;
        parsed.latency_ms =
            std::chrono::duration<double, std::milli>(http::Clock::now() - start).count();
        return parsed;  // malformed bodies are not retried: the server answered
      }
      r.status = Status::tier;
      r.error = where + ": HTTP " + std::to_string(pr.status) + ": " + server_error_message(pr.body);
      retry = retryable_status(pr.status);
    } else if (pr.outcome == http::Outcome::timeout) {
      r.status = Status::timeout;
      r.error = where + ": timed out after " + std::to_string(static_cast<long>(
                    std::chrono::duration<double, std::milli>(http::Clock::now() - start).count())) +
                " ms (" + pr.error + ")";
    } else if (pr.outcome == http::Outcome::cancelled) {
      r.status = Status::cancelled;
      r.error = where + ": cancelled";
    } else {
      r.status = Status::tier;
      r.error = where + ": " + http::outcome_name(pr.outcome) + ": " + pr.error;
      retry = pr.outcome == http::Outcome::connect || pr.outcome == http::Outcome::transport;
    }
    r.latency_ms = std::chrono::duration<double, std::milli>(http::Clock::now() - start).count();
    last = r;
    if (!retry || attempt >= opts_.max_retries) break;

    double wait = backoff_ms(attempt);
    if (!pr.retry_after.empty()) {  // seconds form only (HTTP-date form ignored)
      char* end = nullptr;
      double s = std::strtod(pr.retry_after.c_str(), &end);
      if (end != pr.retry_after.c_str() && std::isfinite(s) && s >= 0)
        wait = std::max(wait, std::min(s * 1000.0, opts_.backoff_max_ms));
    }
    auto wake = http::Clock::now() + std::chrono::microseconds(static_cast<int64_t>(wait * 1000));
    if (wake >= deadline) {
      last.error += " (no time left to retry)";
      break;
    }
    while (http::Clock::now() < wake) {  // sleep in slices so cancellation is prompt
      if (cancelled && cancelled()) {
        last.status = Status::cancelled;
        last.error = where + ": cancelled during retry backoff";
        return last;
      }
      std::this_thread::sleep_for(std::min<http::Clock::duration>(
          std::chrono::milliseconds(10), wake - http::Clock::now()));
    }
  }
  if (last.attempts > 1) last.error += " [after " + std::to_string(last.attempts) + " attempts]";
  return last;
}

}  // namespace routenlp::openai
