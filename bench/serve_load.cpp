// Load client for `routenlp serve` (not a Google Benchmark; driven by bench/serve_load.sh).
//   serve_load client --port P [--clients 8] [--seconds 30] [--mix route:3,chat:1,batch:1]
//       [--model router-...] [--queries FILE.jsonl]
//     Closed loop: each client thread sends its next request when the previous one returns,
//     over one keep-alive connection. Prints one JSON summary: requests, throughput, latency
//     p50/p90/p99/max (ms), status-code counts, transport errors.
//   serve_load fake-upstream --port P
//     An OpenAI-compatible echo server on 127.0.0.1:P (with log-probabilities and usage),
//     standing in for vLLM so the cascade path can be loaded without a model.
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

std::string arg(int argc, char** argv, const std::string& name, const std::string& def) {
  for (int i = 2; i + 1 < argc; ++i)
    if (argv[i] == name) return argv[i + 1];
  return def;
}

int fake_upstream(int port) {
  httplib::Server svr;
  std::atomic<uint64_t> n{0};
  svr.Post("/v1/chat/completions", [&](const httplib::Request& req, httplib::Response& res) {
    auto body = json::parse(req.body, nullptr, false);
    std::string last;
    if (body.is_object() && body.contains("messages") && body["messages"].is_array() &&
        !body["messages"].empty())
      last = body["messages"].back().value("content", "");
    // Confidence varies with the query so that some requests escalate.
    double lp = -0.05 - 0.5 * static_cast<double>(std::hash<std::string>{}(last) % 100) / 100.0;
    json out = {{"id", "chatcmpl-" + std::to_string(++n)},
                {"object", "chat.completion"},
                {"choices", json::array({{{"index", 0},
                                          {"message", {{"role", "assistant"}, {"content", "echo: " + last.substr(0, 64)}}},
                                          {"finish_reason", "stop"},
                                          {"logprobs", {{"content", json::array({{{"token", "x"}, {"logprob", lp}}})}}}}})},
                {"usage", {{"prompt_tokens", 20}, {"completion_tokens", 8}}}};
    res.set_content(out.dump(), "application/json");
  });
  svr.new_task_queue = [] { return new httplib::ThreadPool(16); };
  svr.set_tcp_nodelay(true);
  std::printf("fake-upstream: listening on 127.0.0.1:%d\n", port);
  std::fflush(stdout);
  return svr.listen("127.0.0.1", port) ? 0 : 1;
}

int client(int argc, char** argv) {
  int port = std::atoi(arg(argc, argv, "--port", "8080").c_str());
  int clients = std::atoi(arg(argc, argv, "--clients", "8").c_str());
  double seconds = std::atof(arg(argc, argv, "--seconds", "30").c_str());
  std::string mix = arg(argc, argv, "--mix", "route:1");
  std::string model = arg(argc, argv, "--model", "threshold");
  std::string qfile = arg(argc, argv, "--queries", "");

  std::vector<std::pair<std::string, std::string>> queries;  // (query, task)
  if (!qfile.empty()) {
    std::ifstream in(qfile);
    std::string line;
    while (std::getline(in, line) && queries.size() < 2000) {
      auto j = json::parse(line, nullptr, false);
      if (j.is_object() && j.contains("query")) queries.emplace_back(j["query"], j.value("task", "default"));
    }
  }
  if (queries.empty())
    for (int i = 0; i < 100; ++i) queries.emplace_back("synthetic query number " + std::to_string(i), "default");

  // Weighted request kinds.
  std::vector<std::string> kinds;
  size_t pos = 0;
  while (pos < mix.size()) {
    auto comma = mix.find(',', pos);
    std::string item = mix.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    auto colon = item.find(':');
    std::string kind = item.substr(0, colon);
    int w = colon == std::string::npos ? 1 : std::atoi(item.substr(colon + 1).c_str());
    for (int i = 0; i < w; ++i) kinds.push_back(kind);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }

  std::mutex mu;
  std::vector<double> lat_ms;
  std::map<int, uint64_t> codes;
  uint64_t transport_errors = 0;
  std::atomic<bool> stop{false};
  auto t0 = Clock::now();
  std::vector<std::thread> ts;
  for (int c = 0; c < clients; ++c) {
    ts.emplace_back([&, c] {
      httplib::Client cli("127.0.0.1", port);
      cli.set_keep_alive(true);
      cli.set_tcp_nodelay(true);
      cli.set_read_timeout(30, 0);
      std::vector<double> mine;
      std::map<int, uint64_t> my_codes;
      uint64_t my_err = 0;
      size_t i = static_cast<size_t>(c) * 7919;
      while (!stop) {
        const auto& q = queries[i % queries.size()];
        const std::string& kind = kinds[i % kinds.size()];
        ++i;
        std::string path, body;
        if (kind == "route") {
          path = "/route";
          body = json{{"query", q.first}, {"task", q.second}}.dump();
        } else if (kind == "batch") {
          path = "/route/batch";
          json arr = json::array();
          for (int k = 0; k < 8; ++k) {
            const auto& b = queries[(i + k) % queries.size()];
            arr.push_back({{"query", b.first}, {"task", b.second}});
          }
          body = json{{"queries", arr}}.dump();
        } else if (kind == "chat") {
          path = "/v1/chat/completions";
          body = json{{"model", model}, {"task", q.second},
                      {"messages", json::array({{{"role", "user"}, {"content", q.first}}})}}.dump();
        } else {
          path = "/health";
        }
        auto s = Clock::now();
        auto res = path == "/health" ? cli.Get(path.c_str()) : cli.Post(path.c_str(), body, "application/json");
        double ms = std::chrono::duration<double, std::milli>(Clock::now() - s).count();
        if (!res) {
          ++my_err;
        } else {
          ++my_codes[res->status];
          mine.push_back(ms);
        }
      }
      std::lock_guard<std::mutex> lock(mu);
      lat_ms.insert(lat_ms.end(), mine.begin(), mine.end());
      for (auto& [k, v] : my_codes) codes[k] += v;
      transport_errors += my_err;
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : ts) t.join();
  double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  std::sort(lat_ms.begin(), lat_ms.end());
  auto pct = [&](double p) {
    if (lat_ms.empty()) return 0.0;
    size_t k = static_cast<size_t>(p * static_cast<double>(lat_ms.size() - 1) + 0.5);
    return lat_ms[std::min(k, lat_ms.size() - 1)];
  };
  json codes_j = json::object();
  uint64_t non2xx = 0;
  for (auto& [k, v] : codes) {
    codes_j[std::to_string(k)] = v;
    if (k < 200 || k > 299) non2xx += v;
  }
  json out = {{"clients", clients},
              {"seconds", wall},
              {"mix", mix},
              {"requests", lat_ms.size()},
              {"throughput_rps", static_cast<double>(lat_ms.size()) / wall},
              {"latency_ms", {{"p50", pct(0.50)}, {"p90", pct(0.90)}, {"p99", pct(0.99)},
                              {"max", lat_ms.empty() ? 0.0 : lat_ms.back()}}},
              {"status_codes", codes_j},
              {"non_2xx", non2xx},
              {"transport_errors", transport_errors}};
  std::printf("%s\n", out.dump(2).c_str());
  return (non2xx == 0 && transport_errors == 0) ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "fake-upstream") return fake_upstream(std::atoi(arg(argc, argv, "--port", "18081").c_str()));
  if (mode == "client") return client(argc, argv);
  std::fprintf(stderr, "usage: serve_load client --port P [--clients N] [--seconds S] [--mix route:3,chat:1]\n"
                       "       serve_load fake-upstream --port P\n");
  return 2;
}
