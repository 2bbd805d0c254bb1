// Load client for replicas of `routenlp serve` sharing state through Redis (bench/serve/replicas.sh;
// not a Google Benchmark).
//   replica_load --ports P1,P2,... [--clients 8] [--seconds 30] [--probe-ms 100]
// Closed loop: each client sends a chat completion to the replicas in turn (one keep-alive
// connection per replica) and, when the answer was audited ("feedback": true; the servers'
// audit_rate sets how often), posts its label to the next replica. A probe thread measures
// feedback-to-convergence: every probe-ms it labels one audited request and polls every
// replica's /health until its state.last_id reaches the label's stream_id. Prints one JSON
// summary.
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

std::string arg(int argc, char** argv, const std::string& name, const std::string& def) {
  for (int i = 1; i + 1 < argc; ++i)
    if (argv[i] == name) return argv[i + 1];
  return def;
}

std::pair<uint64_t, uint64_t> sid(const std::string& s) {
  auto d = s.find('-');
  if (d == std::string::npos) return {0, 0};
  return {std::strtoull(s.substr(0, d).c_str(), nullptr, 10), std::strtoull(s.substr(d + 1).c_str(), nullptr, 10)};
}

double pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

std::unique_ptr<httplib::Client> client(int port) {
  auto c = std::make_unique<httplib::Client>("127.0.0.1", port);
  c->set_keep_alive(true);
  c->set_tcp_nodelay(true);
  c->set_read_timeout(30, 0);
  c->set_connection_timeout(5, 0);
  return c;
}

json chat_body(const std::string& id, uint64_t n) {
  return {{"messages", json::array({{{"role", "user"}, {"content", "question " + std::to_string(n % 997) + " of the load"}}})},
          {"task", "gsm8k"},
          {"request_id", id}};
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> ports;
  {
    std::stringstream ss(arg(argc, argv, "--ports", ""));
    for (std::string p; std::getline(ss, p, ',');) ports.push_back(std::atoi(p.c_str()));
  }
  if (ports.empty()) {
    std::fprintf(stderr, "usage: replica_load --ports P1,P2,... [--clients 8] [--seconds 30] [--probe-ms 100]\n");
    return 2;
  }
  const int clients = std::atoi(arg(argc, argv, "--clients", "8").c_str());
  const double seconds = std::atof(arg(argc, argv, "--seconds", "30").c_str());
  const int probe_ms = std::atoi(arg(argc, argv, "--probe-ms", "100").c_str());
  const size_t P = ports.size();

  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<double> lat_ms;
  std::map<std::string, uint64_t> status;
  uint64_t chats = 0, audited = 0, feedbacks = 0, transport_errors = 0;

  auto worker = [&](int w) {
    std::vector<std::unique_ptr<httplib::Client>> cs;
    for (int p : ports) cs.push_back(client(p));
    std::vector<double> my_lat;
    std::map<std::string, uint64_t> my_status;
    uint64_t my_chats = 0, my_audited = 0, my_fb = 0, my_err = 0;
    for (uint64_t n = 0; !stop; ++n) {
      const size_t at = (static_cast<size_t>(w) + n) % P;
      const std::string id = "c" + std::to_string(w) + "-" + std::to_string(n);
      auto t0 = Clock::now();
      auto r = cs[at]->Post("/v1/chat/completions", chat_body(id, n * 31 + static_cast<uint64_t>(w)).dump(), "application/json");
      my_lat.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      if (!r) {
        ++my_err;
        continue;
      }
      ++my_chats;
      my_status["chat " + std::to_string(r->status)]++;
      if (r->status != 200) continue;
      auto j = json::parse(r->body, nullptr, false);
      if (j.is_discarded() || !j.contains("routenlp") || !j["routenlp"].value("feedback", false)) continue;
      ++my_audited;
      const bool ok = (std::hash<std::string>{}(id) % 100) < 85;
      auto f = cs[(at + 1) % P]->Post("/feedback", json{{"request_id", id}, {"acceptable", ok}}.dump(), "application/json");
      if (!f) {
        ++my_err;
        continue;
      }
      ++my_fb;
      my_status["feedback " + std::to_string(f->status)]++;
    }
    std::lock_guard<std::mutex> lock(mu);
    lat_ms.insert(lat_ms.end(), my_lat.begin(), my_lat.end());
    for (auto& [k, v] : my_status) status[k] += v;
    chats += my_chats;
    audited += my_audited;
    feedbacks += my_fb;
    transport_errors += my_err;
  };

  std::vector<double> conv_ms;
  uint64_t probe_timeouts = 0;
  auto probe = [&] {
    std::vector<std::unique_ptr<httplib::Client>> cs;
    for (int p : ports) cs.push_back(client(p));
    for (uint64_t k = 0; !stop; ++k) {
      std::this_thread::sleep_for(std::chrono::milliseconds(probe_ms));
      // An audited request (the audit sample is a hash of the id: try ids until one is).
      std::string id;
      for (uint64_t a = 0; a < 200 && !stop; ++a) {
        const std::string cand = "probe-" + std::to_string(k) + "-" + std::to_string(a);
        auto r = cs[k % P]->Post("/v1/chat/completions", chat_body(cand, k + a).dump(), "application/json");
        if (!r || r->status != 200) {
          if (std::getenv("RN_LOAD_DEBUG")) std::fprintf(stderr, "probe chat: %d %s\n", r ? r->status : -1, r ? r->body.substr(0, 100).c_str() : httplib::to_string(r.error()).c_str());
          continue;
        }
        auto j = json::parse(r->body, nullptr, false);
        if (!j.is_discarded() && j.contains("routenlp") && j["routenlp"].value("feedback", false)) {
          id = cand;
          break;
        }
      }
      if (id.empty()) {
        if (std::getenv("RN_LOAD_DEBUG")) std::fprintf(stderr, "probe: no audited request\n");
        continue;
      }
      auto f = cs[(k + 1) % P]->Post("/feedback", json{{"request_id", id}, {"acceptable", k % 3 != 0}}.dump(), "application/json");
      const auto t_ack = Clock::now();
      if (!f || f->status != 200) {
        if (std::getenv("RN_LOAD_DEBUG")) std::fprintf(stderr, "probe feedback: %d %s\n", f ? f->status : -1, f ? f->body.c_str() : "");
        continue;
      }
      auto fj = json::parse(f->body, nullptr, false);
      if (fj.is_discarded() || !fj.contains("stream_id")) {
        if (std::getenv("RN_LOAD_DEBUG")) std::fprintf(stderr, "probe feedback body: %s\n", f->body.c_str());
        continue;
      }  // in-process state: nothing to converge
      const auto want = sid(fj["stream_id"].get<std::string>());
      std::vector<bool> done(P, false);
      size_t left = P;
      while (left > 0 && Clock::now() - t_ack < std::chrono::seconds(10)) {
        for (size_t i = 0; i < P; ++i) {
          if (done[i]) continue;
          auto h = cs[i]->Get("/health");
          if (!h || h->status != 200) continue;
          auto hj = json::parse(h->body, nullptr, false);
          if (!hj.is_discarded() && hj.contains("state") && sid(hj["state"].value("last_id", "0-0")) >= want) {
            done[i] = true;
            --left;
          }
        }
        if (left > 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
      std::lock_guard<std::mutex> lock(mu);
      if (left == 0)
        conv_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t_ack).count());
      else
        ++probe_timeouts;
    }
  };

  const auto t0 = Clock::now();
  std::vector<std::thread> ts;
  for (int w = 0; w < clients; ++w) ts.emplace_back(worker, w);
  if (probe_ms > 0) ts.emplace_back(probe);
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : ts) t.join();
  const double wall = std::chrono::duration<double>(Clock::now() - t0).count();

  json st = json::object();
  for (auto& [k, v] : status) st[k] = v;
  json out = {{"replicas", P},
              {"clients", clients},
              {"seconds", wall},
              {"chat_requests", chats},
              {"audited", audited},
              {"feedback_posted", feedbacks},
              {"feedback_share", chats ? static_cast<double>(feedbacks) / static_cast<double>(chats) : 0.0},
              {"chat_per_s", static_cast<double>(chats) / wall},
              {"http_per_s", static_cast<double>(chats + feedbacks) / wall},
              {"chat_latency_ms", {{"p50", pct(lat_ms, 0.5)}, {"p99", pct(lat_ms, 0.99)}}},
              {"convergence_ms", {{"n", conv_ms.size()}, {"p50", pct(conv_ms, 0.5)}, {"p99", pct(conv_ms, 0.99)},
                                  {"max", conv_ms.empty() ? 0.0 : *std::max_element(conv_ms.begin(), conv_ms.end())},
                                  {"timeouts", probe_timeouts}}},
              {"status", st},
              {"transport_errors", transport_errors}};
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}
