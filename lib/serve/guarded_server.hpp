// GuardedServer: cpp-httplib's Server with its connection loop replaced so that slow or greedy
// clients cannot hold every worker (docs/serving.md "Slow clients and connection limits").
//
// httplib's own loop gives each socket read its own timeout, so a client that sends one byte
// per second keeps a worker forever. Here each connection is served by our own loop and stream:
//   - a request (headers and body) must arrive within request_read_timeout_s in total;
//   - a client address holds at most max_connections_per_client workers; more are refused
//     with a minimal 503;
//   - when fewer than reserve_threads workers are free (counting connections waiting in the
//     queue), a connection that has waited more than slow_client_s for the rest of its request,
//     or sat idle between requests that long, is closed, so that quick requests (/health,
//     /metrics) still find a worker.
// Limits are only enforced while the server would have to wait for the client: a request whose
// bytes are already in the socket buffer is always read, however long it queued.
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>

namespace routenlp::serve_detail {

struct GuardOptions {
  size_t threads = 8;
  double request_read_timeout_s = 10.0;  // total time to read one request (headers + body)
  size_t max_connections_per_client = 0;  // 0: no cap
  size_t reserve_threads = 1;
  double slow_client_s = 1.0;  // under pressure: longest wait for a request's bytes / idle time
  int read_timeout_s = 5;      // longest single wait for bytes
  int write_timeout_s = 5;
  int keep_alive_timeout_s = 5;
  size_t keep_alive_max_count = 1000;
  int listen_backlog = 1024;  // pending connections the kernel queues (capped by net.core.somaxconn)
};

// Why the request being handled on this thread was not read whole (set while httplib writes its
// error response for it; null otherwise).
const char*& current_cut();

struct GuardStats {
  std::atomic<uint64_t> refused_per_client{0};
  std::atomic<uint64_t> cut_read_timeout{0};   // request not read within request_read_timeout_s
  std::atomic<uint64_t> cut_slow{0};           // slow request cut under pressure
  std::atomic<uint64_t> cut_idle{0};           // idle connection closed under pressure
  std::atomic<int64_t> busy{0};                // workers serving a connection
  std::atomic<int64_t> queued{0};              // accepted connections waiting for a worker
};

class GuardedServer : public httplib::Server {
 public:
  GuardedServer();
  // Call before listening; installs the worker pool (replaces new_task_queue).
  void configure(const GuardOptions& o);
  const GuardOptions& guard_options() const { return opts_; }
  GuardStats& stats() { return stats_; }
  // Prometheus lines for the counters and gauges above.
  std::string metrics_text() const;
  // Fewer than reserve_threads workers are free.
  bool under_pressure() const;
  bool stopping() const { return svr_sock_ == INVALID_SOCKET; }
  // Binds host:port (0: an ephemeral port) with SO_REUSEADDR only - never SO_REUSEPORT, so a
  // second server on a busy port fails here - and listens with opts.listen_backlog. Returns
  // the port; throws Error(io) naming host:port and the reason.
  int bind_listen(const std::string& host, int port);

 protected:
  bool process_and_close_socket(socket_t sock) override;

 private:
  bool admit(const std::string& peer);
  void release(const std::string& peer);

  GuardOptions opts_;
  GuardStats stats_;
  std::mutex peers_mu_;
  std::unordered_map<std::string, size_t> peers_;
};

}  // namespace routenlp::serve_detail
