// GuardedServer: per-request read deadline, per-client connection cap and a worker reserve on
// top of cpp-httplib's request parser. See guarded_server.hpp and docs/serving.md.
#include "guarded_server.hpp"

#include "routenlp/error.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

namespace routenlp::serve_detail {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// When the connection a worker is about to serve was accepted (set by the pool around each task).
Clock::time_point& task_accepted_at() {
  thread_local Clock::time_point t;
  return t;
}

// Fixed-size worker pool that knows how many connections wait and how many are being served.
class GuardPool : public httplib::TaskQueue {
 public:
  GuardPool(size_t n, GuardStats* stats) : stats_(stats) {
    for (size_t i = 0; i < n; ++i) workers_.emplace_back([this] { work(); });
  }
  ~GuardPool() override { shutdown(); }

  void enqueue(std::function<void()> fn) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      jobs_.push_back({std::move(fn), Clock::now()});
      ++stats_->queued;
    }
    cv_.notify_one();
  }
  // Serves what is queued (the server's loop drops those connections once stopped), then joins.
  void shutdown() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }

 private:
  struct Job {
    std::function<void()> fn;
    Clock::time_point accepted;
  };
  void work() {
    for (;;) {
      Job job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
        ++stats_->busy;  // before `queued` drops, so busy + queued never under-counts
        --stats_->queued;
      }
      task_accepted_at() = job.accepted;
      job.fn();
      --stats_->busy;
    }
  }

  GuardStats* stats_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;
  bool stop_ = false;
  std::vector<std::thread> workers_;
};

std::string peer_address(socket_t fd, int* port) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  *port = 0;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "";
  char buf[INET6_ADDRSTRLEN] = {0};
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
    *port = ntohs(a->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
    *port = ntohs(a->sin6_port);
  }
  return buf;
}

std::string local_address(socket_t fd, int* port) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  *port = 0;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "";
  char buf[INET6_ADDRSTRLEN] = {0};
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
    *port = ntohs(a->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
    *port = ntohs(a->sin6_port);
  }
  return buf;
}

// Waits up to `ms` for `events` on fd: >0 ready, 0 not yet, <0 error/hang-up.
int wait_fd(socket_t fd, short events, int ms) {
  pollfd p{fd, events, 0};
  int r = ::poll(&p, 1, std::max(0, ms));
  if (r < 0) return errno == EINTR ? 0 : -1;
  if (r == 0) return 0;
  if (p.revents & events) return 1;  // readable includes "peer closed": recv reports it
  return -1;
}

enum class Cut { none, read_timeout, slow, closed, timeout };

}  // namespace

const char*& current_cut() {
  thread_local const char* why = nullptr;
  return why;
}

namespace {

// The stream httplib's request parser reads from. Buffers reads (the parser reads headers a byte
// at a time) and enforces the per-request limits whenever it has to wait for the client.
class GuardedStream : public httplib::Stream {
 public:
  GuardedStream(socket_t fd, GuardedServer& server) : fd_(fd), server_(server) {}

  // Start of the request being read (the parser's first read of it).
  void begin_request(Clock::time_point t) { request_start_ = t; }
  bool has_buffered() const { return pos_ < len_; }
  Cut cut() const { return cut_; }

  bool is_readable() const override { return has_buffered() || wait_fd(fd_, POLLIN, 0) > 0; }
  bool is_writable() const override {
    return wait_fd(fd_, POLLOUT, server_.guard_options().write_timeout_s * 1000) > 0;
  }
  ssize_t read(char* ptr, size_t size) override {
    if (!has_buffered() && !fill()) return -1;
    size_t n = std::min(size, len_ - pos_);
    std::memcpy(ptr, buf_ + pos_, n);
    pos_ += n;
    return static_cast<ssize_t>(n);
  }
  ssize_t write(const char* ptr, size_t size) override {
    const auto& o = server_.guard_options();
    auto deadline = Clock::now() + std::chrono::seconds(o.write_timeout_s);
    for (;;) {
      ssize_t n = ::send(fd_, ptr, size, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n >= 0) return n;
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return -1;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0 || wait_fd(fd_, POLLOUT, static_cast<int>(left)) < 0) return -1;
    }
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override { ip = peer_address(fd_, &port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { ip = local_address(fd_, &port); }
  socket_t socket() const override { return fd_; }

 private:
  // Reads what the socket has; waits (within the limits) only when it has nothing.
  bool fill() {
    const auto& o = server_.guard_options();
    const auto wait_start = Clock::now();
    for (;;) {
      ssize_t n = ::recv(fd_, buf_, sizeof buf_, MSG_DONTWAIT);
      if (n > 0) {
        pos_ = 0;
        len_ = static_cast<size_t>(n);
        return true;
      }
      if (n == 0) return fail(Cut::closed);
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return fail(Cut::closed);
      // Nothing there: the client is making us wait.
      if (server_.stopping()) return fail(Cut::closed);
      double reading = seconds_since(request_start_);
      if (reading >= o.request_read_timeout_s) return fail(Cut::read_timeout);
      if (reading >= o.slow_client_s && server_.under_pressure()) return fail(Cut::slow);
      if (seconds_since(wait_start) >= o.read_timeout_s) return fail(Cut::timeout);
      // Short slices so that pressure and stop are noticed while waiting.
      if (wait_fd(fd_, POLLIN, 100) < 0) return fail(Cut::closed);
    }
  }
  bool fail(Cut c) {
    cut_ = c;
    if (c == Cut::read_timeout)
      current_cut() = "request not received within request_read_timeout_s";
    else if (c == Cut::slow)
      current_cut() = "request too slow while the server is busy";
    else if (c == Cut::timeout)
      current_cut() = "no data within read_timeout_s";
    return false;
  }

  socket_t fd_;
  GuardedServer& server_;
  Clock::time_point request_start_ = Clock::now();
  Cut cut_ = Cut::none;
  char buf_[4096];
  size_t pos_ = 0, len_ = 0;
};

void refuse(socket_t fd, const std::string& why) {
  std::string body = "{\"error\":{\"message\":\"" + why + "\",\"type\":\"unavailable\",\"code\":503}}";
  std::string msg = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                    "Retry-After: 1\r\nConnection: close\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\n\r\n" + body;
  (void)!::send(fd, msg.data(), msg.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

}  // namespace

GuardedServer::GuardedServer() {
  configure(GuardOptions{});
  // httplib's default sets SO_REUSEPORT, which lets a second process bind a port that is in use
  // (the kernel then splits connections between the two). SO_REUSEADDR only: restart after a
  // crash still works (TIME_WAIT), a port held by a live server does not.
  set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
}

int GuardedServer::bind_listen(const std::string& host, int port) {
  errno = 0;
  int bound = port == 0 ? bind_to_any_port(host) : (bind_to_port(host, port) ? port : -1);
  if (bound < 0) {
    int err = errno;
    std::string why = err == EADDRINUSE ? "address already in use (is another server running on it?)"
                      : err != 0        ? std::string(std::strerror(err))
                                        : "cannot resolve or bind the address";
    throw Error(Status::io, "serve: cannot listen on " + host + ":" + std::to_string(port) + ": " + why);
  }
  // httplib listens with a fixed backlog of 5; a burst of connections beyond it is dropped by the
  // kernel (SYN retries: a 1 s stall). listen() again on the bound socket resizes the queue.
  if (::listen(svr_sock_, std::max(1, opts_.listen_backlog)) != 0) {
    int err = errno;
    throw Error(Status::io, "serve: listen on " + host + ":" + std::to_string(bound) + " with backlog " +
                                std::to_string(opts_.listen_backlog) + ": " + std::strerror(err));
  }
  return bound;
}

void GuardedServer::configure(const GuardOptions& o) {
  opts_ = o;
  opts_.threads = std::max<size_t>(1, opts_.threads);
  opts_.reserve_threads = std::min(opts_.reserve_threads, opts_.threads - 1);
  opts_.keep_alive_max_count = std::max<size_t>(1, opts_.keep_alive_max_count);
  size_t n = opts_.threads;
  GuardStats* s = &stats_;
  new_task_queue = [n, s] { return new GuardPool(n, s); };
}

bool GuardedServer::under_pressure() const {
  if (opts_.reserve_threads == 0) return false;
  int64_t used = stats_.busy.load() + stats_.queued.load();
  return used > static_cast<int64_t>(opts_.threads - opts_.reserve_threads);
}

bool GuardedServer::admit(const std::string& peer) {
  std::lock_guard<std::mutex> lock(peers_mu_);
  size_t& n = peers_[peer];
  if (opts_.max_connections_per_client > 0 && n >= opts_.max_connections_per_client) return false;
  ++n;
  return true;
}

void GuardedServer::release(const std::string& peer) {
  std::lock_guard<std::mutex> lock(peers_mu_);
  auto it = peers_.find(peer);
  if (it != peers_.end() && --it->second == 0) peers_.erase(it);
}

bool GuardedServer::process_and_close_socket(socket_t sock) {
  const Clock::time_point accepted = task_accepted_at();
  int port = 0;
  const std::string peer = peer_address(sock, &port);
  if (!admit(peer)) {
    ++stats_.refused_per_client;
    refuse(sock, "too many connections from " + peer + " (max_connections_per_client " +
                     std::to_string(opts_.max_connections_per_client) + ")");
    ::shutdown(sock, SHUT_RDWR);
    ::close(sock);
    return false;
  }

  GuardedStream strm(sock, *this);
  bool ret = false;
  Clock::time_point idle_since = accepted;
  for (size_t count = opts_.keep_alive_max_count; count > 0 && !stopping(); --count) {
    // Wait for the next request; under pressure an idle connection gives its worker up.
    bool ready = strm.has_buffered();
    for (int wait_ms = 0; !ready && !stopping(); wait_ms = 100) {
      int r = wait_fd(sock, POLLIN, wait_ms);  // first look without waiting
      if (r != 0) {
        ready = r > 0;
        break;
      }
      double idle = seconds_since(idle_since);
      if (idle >= opts_.keep_alive_timeout_s) break;
      if (idle >= opts_.slow_client_s && under_pressure()) {
        ++stats_.cut_idle;
        break;
      }
    }
    if (!ready) break;
    // The first request's clock starts when the connection was accepted (a slow client gains
    // nothing by having queued); later ones when their first byte arrived.
    strm.begin_request(count == opts_.keep_alive_max_count ? accepted : Clock::now());
    bool connection_closed = false;
    ret = process_request(strm, count == 1, connection_closed, nullptr);
    current_cut() = nullptr;
    if (strm.cut() == Cut::read_timeout) ++stats_.cut_read_timeout;
    if (strm.cut() == Cut::slow) ++stats_.cut_slow;
    // A request that was not read whole leaves the stream mid-request: never read on from there.
    if (!ret || connection_closed || strm.cut() != Cut::none) break;
    idle_since = Clock::now();
  }
  // Free the client's slot before it can see the close: a client that reconnects at once
  // (after a 413, or httplib's reconnect on a closed keep-alive) must not meet its own old
  // connection in the per-client cap.
  release(peer);
  ::shutdown(sock, SHUT_RDWR);
  ::close(sock);
  return ret;
}

std::string GuardedServer::metrics_text() const {
  std::string out;
  out += "# HELP routenlp_http_connections_refused_total Connections refused before reading a request.\n";
  out += "# TYPE routenlp_http_connections_refused_total counter\n";
  out += "routenlp_http_connections_refused_total{reason=\"per_client_cap\"} " +
         std::to_string(stats_.refused_per_client.load()) + "\n";
  out += "# HELP routenlp_http_connections_cut_total Connections closed by the server's read limits.\n";
  out += "# TYPE routenlp_http_connections_cut_total counter\n";
  out += "routenlp_http_connections_cut_total{reason=\"request_read_timeout\"} " +
         std::to_string(stats_.cut_read_timeout.load()) + "\n";
  out += "routenlp_http_connections_cut_total{reason=\"slow_client\"} " + std::to_string(stats_.cut_slow.load()) + "\n";
  out += "routenlp_http_connections_cut_total{reason=\"idle_under_pressure\"} " +
         std::to_string(stats_.cut_idle.load()) + "\n";
  out += "# HELP routenlp_http_workers_busy Workers serving a connection.\n";
  out += "# TYPE routenlp_http_workers_busy gauge\n";
  out += "routenlp_http_workers_busy " + std::to_string(stats_.busy.load()) + "\n";
  out += "# HELP routenlp_http_connections_queued Accepted connections waiting for a worker.\n";
  out += "# TYPE routenlp_http_connections_queued gauge\n";
  out += "routenlp_http_connections_queued " + std::to_string(stats_.queued.load()) + "\n";
  return out;
}

}  // namespace routenlp::serve_detail
