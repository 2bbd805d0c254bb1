// `routenlp serve` under hostile or failing conditions: slow clients (slowloris), too many
// connections from one address, and a router that fails while scoring (a server error, never
// the client's). Real sockets on loopback only; timing margins are seconds because the machine
// running the tests is shared.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "routenlp/router/model.hpp"
#include "routenlp/router/baselines.hpp"
#include "routenlp/tiers/tier.hpp"
#include "routenlp/serve/serve.hpp"
#include "live_server.hpp"

using namespace routenlp;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

PortfolioConfig two_tiers() {
  return parse_portfolio(
      "tiers:\n"
      "  - {name: small, price_per_1m_input: 1.0, price_per_1m_output: 2.0}\n"
      "  - {name: large, price_per_1m_input: 10.0, price_per_1m_output: 30.0}\n"
      "alpha: 0.1\n",
      "two_tiers");
}

using rn_test::LiveServer;

ServeSetup routing_setup(std::shared_ptr<const RouterModel> router = nullptr) {
  ServeSetup s;
  s.portfolio = two_tiers();
  s.router = router ? router : make_always_tier_router({"small", "large"}, 0);
  return s;
}

// A TCP connection to 127.0.0.1:port from the loopback address `from` (127.0.0.x: a distinct
// client address as far as the server can tell). -1 on failure.
int connect_from(const char* from, int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in src{};
  src.sin_family = AF_INET;
  ::inet_pton(AF_INET, from, &src.sin_addr);
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

bool send_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// Reads one HTTP response (Content-Length framed); status 0 when the connection closed or timed
// out first.
struct RawResponse {
  int status = 0;
  std::string body;
};
RawResponse read_response(int fd) {
  std::string data;
  char buf[4096];
  size_t header_end = std::string::npos;
  size_t want = std::numeric_limits<size_t>::max();
  while (data.size() < want) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return {};
    data.append(buf, static_cast<size_t>(n));
    if (header_end == std::string::npos && (header_end = data.find("\r\n\r\n")) != std::string::npos) {
      size_t cl = data.find("Content-Length: ");
      size_t len = cl == std::string::npos || cl > header_end ? 0 : std::stoul(data.substr(cl + 16));
      want = header_end + 4 + len;
    }
  }
  RawResponse r;
  r.status = std::atoi(data.substr(9, 3).c_str());
  r.body = data.substr(header_end + 4, want - header_end - 4);
  return r;
}

// One GET on a fresh connection from `from`.
RawResponse get_once(int port, const std::string& path, const char* from = "127.0.0.1") {
  int fd = connect_from(from, port);
  if (fd < 0) return {};
  RawResponse r;
  if (send_all(fd, "GET " + path + " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")) r = read_response(fd);
  ::close(fd);
  return r;
}

// A slowloris client: a request line, then one header line every `every`, never the blank line.
// closed_after: seconds until the server closed the connection (< 0 while it is open).
class Trickler {
 public:
  Trickler(int port, std::chrono::milliseconds every, const char* from = "127.0.0.1") {
    fd_ = connect_from(from, port);
    thread_ = std::thread([this, every] {
      auto t0 = Clock::now();
      bool ok = fd_ >= 0 && send_all(fd_, "GET /health HTTP/1.1\r\nHost: t\r\n");
      for (int i = 0; ok && !stop_; ++i) {
        std::this_thread::sleep_for(every);
        ok = send_all(fd_, "X-Slow-" + std::to_string(i) + ": 1\r\n");
        // The server closing shows as a readable EOF (or a reset on the next send).
        char c;
        ssize_t n = ::recv(fd_, &c, 1, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) ok = false;
      }
      if (!ok) closed_after_ = since(t0);
    });
  }
  ~Trickler() {
    stop_ = true;
    thread_.join();
    if (fd_ >= 0) ::close(fd_);
  }
  double closed_after() const { return closed_after_; }
  bool connected() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<double> closed_after_{-1.0};
  std::thread thread_;
};

double metric(const std::string& text, const std::string& series) {
  auto pos = text.find("\n" + series + " ");
  if (pos == std::string::npos) return -1;
  return std::atof(text.c_str() + pos + series.size() + 2);
}

}  // namespace

TEST_CASE("slowloris: 16 trickling connections do not stop /health answering", "[serve][hardening]") {
  ServeOptions o;
  o.threads = 4;
  o.reserve_threads = 1;
  o.max_connections_per_client = 0;   // the reserve alone must keep /health alive
  o.request_read_timeout_s = 60;      // longer than the test: not what frees the workers here
  LiveServer live(routing_setup(), o);

  std::vector<std::unique_ptr<Trickler>> slow;
  for (int i = 0; i < 16; ++i)
    slow.push_back(std::make_unique<Trickler>(live.port, std::chrono::milliseconds(300)));
  for (const auto& t : slow) REQUIRE(t->connected());

  // For ~6 s, /health (same client address) answers within 2 s every time.
  auto t0 = Clock::now();
  int probes = 0;
  double worst = 0;
  while (since(t0) < 6.0) {
    auto p0 = Clock::now();
    RawResponse r = get_once(live.port, "/health");
    double took = since(p0);
    worst = std::max(worst, took);
    INFO("probe " << probes << " at " << since(t0) << " s took " << took << " s");
    CHECK(r.status == 200);
    CHECK(took < 2.0);
    ++probes;
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  CHECK(probes >= 5);
  std::string m = live.server->metrics_text();
  CHECK(metric(m, "routenlp_http_connections_cut_total{reason=\"slow_client\"}") >= 4);
}

TEST_CASE("a request trickled header by header is cut after request_read_timeout_s in total",
          "[serve][hardening]") {
  ServeOptions o;
  o.threads = 4;
  o.reserve_threads = 0;  // no pressure rule: only the total deadline applies
  o.max_connections_per_client = 0;
  o.read_timeout_s = 5;  // each read is quick (300 ms), so this never fires
  o.request_read_timeout_s = 2;
  LiveServer live(routing_setup(), o);

  Trickler slow(live.port, std::chrono::milliseconds(300));
  REQUIRE(slow.connected());
  auto t0 = Clock::now();
  while (slow.closed_after() < 0 && since(t0) < 12.0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  INFO("closed after " << slow.closed_after() << " s");
  CHECK(slow.closed_after() > 1.0);
  CHECK(slow.closed_after() < 6.0);
  CHECK(metric(live.server->metrics_text(),
               "routenlp_http_connections_cut_total{reason=\"request_read_timeout\"}") == 1);
  // A normal request on another connection is unaffected.
  CHECK(get_once(live.port, "/health").status == 200);
}

TEST_CASE("connections beyond max_connections_per_client are refused while other clients are served",
          "[serve][hardening]") {
  ServeOptions o;
  o.threads = 8;
  o.reserve_threads = 0;
  o.max_connections_per_client = 2;
  o.request_read_timeout_s = 60;
  LiveServer live(routing_setup(), o);
  {
    Trickler a(live.port, std::chrono::milliseconds(300));
    Trickler b(live.port, std::chrono::milliseconds(300));
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // both hold a worker
    auto t0 = Clock::now();
    RawResponse refused = get_once(live.port, "/health", "127.0.0.1");
    CHECK(refused.status == 503);
    CHECK(refused.body.find("max_connections_per_client") != std::string::npos);
    CHECK(since(t0) < 2.0);
    CHECK(get_once(live.port, "/health", "127.0.0.2").status == 200);
    CHECK(a.closed_after() < 0);  // the ones admitted are untouched
    CHECK(b.closed_after() < 0);
  }
  // Once they are gone the address is welcome again.
  auto t0 = Clock::now();
  RawResponse again;
  while (again.status != 200 && since(t0) < 5.0) {
    again = get_once(live.port, "/health", "127.0.0.1");
    if (again.status != 200) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  CHECK(again.status == 200);
  CHECK(metric(live.server->metrics_text(),
               "routenlp_http_connections_refused_total{reason=\"per_client_cap\"}") >= 1);
}

TEST_CASE("keep-alive clients are unaffected by the limits", "[serve][hardening]") {
  ServeOptions o;
  o.threads = 4;  // default cap: 2 per address; reserve 1
  o.request_read_timeout_s = 2;
  LiveServer live(routing_setup(), o);

  // Two keep-alive connections, 40 requests each, a pause between requests.
  std::atomic<int> ok{0};
  auto client = [&] {
    int fd = connect_from("127.0.0.1", live.port);
    if (fd < 0) return;
    for (int i = 0; i < 40; ++i) {
      std::string body = R"({"query": "q)" + std::to_string(i) + R"(", "task": "t"})";
      if (!send_all(fd, "POST /route HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: " +
                            std::to_string(body.size()) + "\r\n\r\n" + body))
        break;
      if (read_response(fd).status == 200) ++ok;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ::close(fd);
  };
  std::thread c1(client), c2(client);
  c1.join();
  c2.join();
  CHECK(ok == 80);
  // The server notices the two closes within its 100 ms poll slice; on a loaded machine later.
  // Until then both still count against the per-client cap of 2: wait for them to be released.
  for (auto w0 = Clock::now(); since(w0) < 5.0 &&
                               metric(live.server->metrics_text(), "routenlp_http_workers_busy") > 0;)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));

  // A connection idle longer than request_read_timeout_s between requests (but within the
  // keep-alive timeout) still works: idle time is not reading time.
  int fd = connect_from("127.0.0.1", live.port);
  REQUIRE(fd >= 0);
  REQUIRE(send_all(fd, "GET /health HTTP/1.1\r\nHost: t\r\n\r\n"));
  CHECK(read_response(fd).status == 200);
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  REQUIRE(send_all(fd, "GET /health HTTP/1.1\r\nHost: t\r\n\r\n"));
  CHECK(read_response(fd).status == 200);
  ::close(fd);

  std::string m = live.server->metrics_text();
  CHECK(metric(m, "routenlp_http_connections_refused_total{reason=\"per_client_cap\"}") == 0);
  CHECK(metric(m, "routenlp_http_connections_cut_total{reason=\"idle_under_pressure\"}") == 0);
  CHECK(metric(m, "routenlp_http_connections_cut_total{reason=\"request_read_timeout\"}") == 0);
}

// ---------------------------------------------------------------------------------------------
// A router that fails while scoring is the server's fault (5xx), a bad client field is 400.

namespace {

class FailingRouter : public RouterModel {
 public:
  enum Mode { error_invalid_argument, foreign_exception, nan_scores };
  explicit FailingRouter(Mode m) : mode_(m) {}
  std::vector<RouterScores> score(const std::vector<RouteQuery>& batch) const override {
    if (mode_ == error_invalid_argument) throw Error(Status::invalid_argument, "weights are not finite");
    if (mode_ == foreign_exception) throw std::runtime_error("torch: tensor shape mismatch");
    std::vector<RouterScores> out(batch.size());
    for (auto& s : out) s.p_acceptable = {std::nan(""), std::nan("")};  // the policy rejects these
    return out;
  }
  std::string name() const override { return "failing"; }
  std::vector<std::string> tiers() const override { return {"small", "large"}; }

 private:
  Mode mode_;
};

RawResponse post_once(int port, const std::string& path, const std::string& body) {
  int fd = connect_from("127.0.0.1", port);
  if (fd < 0) return {};
  RawResponse r;
  if (send_all(fd, "POST " + path + " HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/json\r\n"
                   "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body))
    r = read_response(fd);
  ::close(fd);
  return r;
}

}  // namespace

TEST_CASE("a router failing at run time gives 5xx, a bad client field 400", "[serve][hardening]") {
  auto mode = GENERATE(FailingRouter::error_invalid_argument, FailingRouter::foreign_exception,
                       FailingRouter::nan_scores);
  ServeSetup setup = routing_setup(std::make_shared<FailingRouter>(mode));
  auto ok_tier = [](const std::string& n) {
    return std::make_shared<CallbackTier>(n, [](const TierRequest&) {
      TierResponse r;
      r.text = "fine";
      r.confidence = 0.9;
      return r;
    });
  };
  setup.tiers = {ok_tier("small"), ok_tier("large")};
  LiveServer live(setup, ServeOptions{});
  INFO("mode " << static_cast<int>(mode));

  for (const char* path : {"/route", "/v1/chat/completions", "/route/batch"}) {
    std::string body = std::string(path) == "/route/batch"           ? R"({"queries": [{"query": "2+2?"}]})"
                       : std::string(path) == "/v1/chat/completions" ? R"({"messages": [{"role": "user", "content": "2+2?"}]})"
                                                                     : R"({"query": "2+2?", "task": "math"})";
    RawResponse r = post_once(live.port, path, body);
    INFO(path << " -> " << r.status << " " << r.body);
    CHECK(r.status == 500);
    json j = json::parse(r.body, nullptr, false);
    REQUIRE(j.is_object());
    CHECK(j["error"]["type"] == "server_error");
    CHECK(j["error"]["message"].get<std::string>().find("routing failed on the server (router 'failing')") !=
          std::string::npos);
  }
  // Client mistakes are still 400 / 404, and name the field: the router is never reached.
  CHECK(post_once(live.port, "/route", R"({"task": "math"})").status == 400);
  CHECK(post_once(live.port, "/route", R"({"query": 3})").status == 400);
  CHECK(post_once(live.port, "/route", R"({"query": "q", "policy": "nonsense"})").status == 400);
  CHECK(post_once(live.port, "/v1/chat/completions",
                  R"({"model": "nonsense", "messages": [{"role": "user", "content": "q"}]})")
            .status == 404);
  std::string m = live.server->metrics_text();
  CHECK(m.find("routenlp_http_requests_total{route=\"/route\",code=\"500\"} 1") != std::string::npos);
}

TEST_CASE("a second server on a busy port fails at bind naming the port", "[serve][hardening][listen]") {
  LiveServer first(routing_setup(), ServeOptions{});
  ServeOptions o;
  o.host = "127.0.0.1";
  o.port = first.port;
  RouteServer second(routing_setup(), o);
  std::string what;
  try {
    second.bind();
  } catch (const Error& e) {
    what = e.what();
    CHECK(e.code() == Status::io);
  }
  INFO(what);
  CHECK(what.find("127.0.0.1:" + std::to_string(first.port)) != std::string::npos);
  CHECK(what.find("already in use") != std::string::npos);
  // The first server still answers every request (no connection went to the second).
  for (int i = 0; i < 5; ++i) CHECK(get_once(first.port, "/health").status == 200);
}

namespace {
// Non-blocking connects to a bound server that is not accepting; how many complete within 1 s
// (the kernel completes at most about `backlog` handshakes for an unaccepting listener).
int completed_connects(int port, int n) {
  std::vector<int> fds;
  for (int i = 0; i < n; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    (void)!::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    fds.push_back(fd);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  int done = 0;
  for (int fd : fds) {
    int err = 0;
    socklen_t len = sizeof err;
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, 0) == 1 && ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) ++done;
    ::close(fd);
  }
  return done;
}
}  // namespace

TEST_CASE("listen_backlog sizes the kernel queue for connection bursts", "[serve][hardening][listen]") {
  const int burst = 64;
  ServeOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.listen_backlog = 1024;
  {
    RouteServer big(routing_setup(), o);
    int port = big.bind();  // bound and listening, not yet accepting
    CHECK(completed_connects(port, burst) == burst);
  }
  o.listen_backlog = 4;
  {
    RouteServer small(routing_setup(), o);
    int port = small.bind();
    int done = completed_connects(port, burst);
    INFO(done << " of " << burst << " completed with backlog 4");
    CHECK(done < 16);
  }
}
