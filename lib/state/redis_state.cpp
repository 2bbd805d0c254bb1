// The Redis state backend (hiredis, synchronous API). Two connections: one shared by request
// threads under a mutex (notes, feedback) and by the consumer's checkpoints, one owned by the
// consumer thread (XREAD BLOCK). Request threads never connect: when Redis is lost they fall back
// at once (local notes, the feedback queue) and the consumer thread reconnects with backoff.
#include <hiredis/hiredis.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <limits>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "routenlp/error.hpp"
#include "state/redis_state.hpp"

namespace routenlp::state {

bool redis_available() { return true; }

namespace {

using Clock = std::chrono::steady_clock;

struct ReplyFree {
  void operator()(redisReply* r) const {
    if (r) freeReplyObject(r);
  }
};
using Reply = std::unique_ptr<redisReply, ReplyFree>;

struct ContextFree {
  void operator()(redisContext* c) const {
    if (c) redisFree(c);
  }
};
using Context = std::unique_ptr<redisContext, ContextFree>;

timeval to_tv(int ms) {
  timeval tv;
  tv.tv_sec = ms / 1000;
  tv.tv_usec = (ms % 1000) * 1000;
  return tv;
}

// A stream id "<ms>-<seq>" as a comparable pair; {0, 0} when malformed.
std::pair<uint64_t, uint64_t> stream_id(const std::string& s) {
  auto dash = s.find('-');
  if (dash == std::string::npos) return {0, 0};
  try {
    return {std::stoull(s.substr(0, dash)), std::stoull(s.substr(dash + 1))};
  } catch (...) {
    return {0, 0};
  }
}

std::string reply_str(const redisReply* r) {
  return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ||
               r->type == REDIS_REPLY_ERROR)
             ? std::string(r->str, r->len)
             : std::string();
}

// SET <fb key> NX EX ttl: only the first label of a request id enters the stream, with a
// fleet-wide sequence number (for lag).
const char* kFeedbackScript = R"lua(
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return false end
local n = redis.call('INCR', KEYS[3])
return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'id', ARGV[3], 'ok', ARGV[4],
                  'note', ARGV[5], 't', ARGV[6], 'n', n)
)lua";

// Replaces the checkpoint only with a newer stream position.
const char* kCheckpointScript = R"lua(
local cur = redis.call('HGET', KEYS[1], 'id')
if cur then
  local a, b = string.match(cur, '^(%d+)-(%d+)$')
  local c, d = string.match(ARGV[1], '^(%d+)-(%d+)$')
  a, b, c, d = tonumber(a), tonumber(b), tonumber(c), tonumber(d)
  if a > c or (a == c and b >= d) then return 0 end
end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'state', ARGV[2], 'table', ARGV[3], 'seq', ARGV[4])
return 1
)lua";

}  // namespace

struct RedisState::Impl {
  RedisStateOptions opt;
  RedisUrl url;
  std::shared_ptr<OnlineRecalibrator> online;
  ApplyFn apply;
  std::string k_stream, k_seq, k_checkpoint, k_note, k_fb, fingerprint;

  std::mutex cmd_mu;
  Context cmd;  // under cmd_mu
  Context rd;   // consumer thread (or start() before it runs)

  std::atomic<bool> connected{false}, synced{false}, stopping{false}, started{false};
  std::thread consumer;
  std::mutex wake_mu;
  std::condition_variable wake_cv;

  std::mutex notes_mu;
  std::unordered_map<std::string, std::string> notes;  // id -> note JSON
  std::deque<std::string> notes_order;

  struct Queued {
    std::string id, note;
    bool ok;
    long long t_ms;
  };
  std::mutex q_mu;
  std::deque<Queued> queue;

  std::atomic<uint64_t> applied{0}, lag{0}, dropped{0}, checkpoints{0}, errors{0};
  std::atomic<uint64_t> notes_local_only{0}, recorded{0}, duplicates{0}, queued_total{0}, unknown{0};
  std::atomic<uint64_t> unavailable{0};
  mutable std::mutex pos_mu;
  std::string last_id = "0-0";  // written by the consumer under pos_mu
  uint64_t last_seq = 0;
  uint64_t since_checkpoint = 0;
  Clock::time_point last_checkpoint = Clock::now(), last_lag = Clock::now();

  void log(const std::string& msg) {
    std::fprintf(stderr, "routenlp serve: state: %s\n", msg.c_str());
    std::fflush(stderr);
  }

  // A connected, authenticated context on the URL's database, or null with *why set.
  Context connect(int timeout_ms, std::string* why) {
    const timeval tv = to_tv(opt.timeout_ms);
    Context c(redisConnectWithTimeout(url.host.c_str(), url.port, tv));
    if (!c) {
      *why = "cannot allocate a Redis context";
      return nullptr;
    }
    if (c->err) {
      *why = c->errstr;
      return nullptr;
    }
    const timeval ctv = to_tv(timeout_ms);
    redisSetTimeout(c.get(), ctv);
    auto run = [&](std::vector<std::string> args) -> bool {
      std::vector<const char*> argv;
      std::vector<size_t> lens;
      for (const auto& a : args) {
        argv.push_back(a.data());
        lens.push_back(a.size());
      }
      Reply r(static_cast<redisReply*>(
          redisCommandArgv(c.get(), static_cast<int>(argv.size()), argv.data(), lens.data())));
      if (!r) {
        *why = c->errstr;
        return false;
      }
      if (r->type == REDIS_REPLY_ERROR) {
        // AUTH errors do not echo the password; say which step failed.
        *why = args[0] + " failed: " + reply_str(r.get());
        return false;
      }
      return true;
    };
    if (!url.password.empty()) {
      if (!(url.user.empty() ? run({"AUTH", url.password}) : run({"AUTH", url.user, url.password})))
        return nullptr;
    }
    if (url.db != 0 && !run({"SELECT", std::to_string(url.db)})) return nullptr;
    if (!run({"PING"})) return nullptr;
    return c;
  }

  static Reply command(redisContext* c, const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    argv.reserve(args.size());
    lens.reserve(args.size());
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    return Reply(static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data())));
  }

  // A command on the shared connection. Null: no connection or it failed (then dropped, and
  // the consumer reconnects). An error reply is returned (and counted).
  Reply shared_command(const std::vector<std::string>& args) {
    std::lock_guard<std::mutex> lock(cmd_mu);
    if (!cmd) return nullptr;
    Reply r = command(cmd.get(), args);
    if (!r) {
      errors.fetch_add(1, std::memory_order_relaxed);
      if (connected.exchange(false)) log("lost Redis at " + url.redacted() + " (" + cmd->errstr + "); serving on the last snapshot");
      cmd.reset();
      wake_cv.notify_all();
      return nullptr;
    }
    if (r->type == REDIS_REPLY_ERROR) errors.fetch_add(1, std::memory_order_relaxed);
    return r;
  }

  void drop_read_connection(const char* what) {
    errors.fetch_add(1, std::memory_order_relaxed);
    if (connected.exchange(false))
      log(std::string("lost Redis at ") + url.redacted() + " (" + what + "); serving on the last snapshot");
    rd.reset();
    // The shared connection went with it (same server): reconnect both rather than find out
    // on the next request.
    std::lock_guard<std::mutex> lock(cmd_mu);
    cmd.reset();
  }

  Reply eval_feedback(const Queued& q) {
    return shared_command({"EVAL", kFeedbackScript, "3", k_fb + q.id, k_stream, k_seq,
                           std::to_string(opt.dedup_ttl_s), std::to_string(opt.stream_maxlen), q.id,
                           q.ok ? "1" : "0", q.note, std::to_string(q.t_ms)});
  }

  std::string current_id() const {
    std::lock_guard<std::mutex> lock(pos_mu);
    return last_id;
  }

  // Applies the entries of one XREAD reply; false when the reply was not what XREAD returns.
  // Returns how many entries were read through *n.
  bool apply_xread(const redisReply* r, size_t* n) {
    *n = 0;
    if (r->type == REDIS_REPLY_NIL) return true;
    if (r->type != REDIS_REPLY_ARRAY) return false;
    for (size_t s = 0; s < r->elements; ++s) {
      const redisReply* stream = r->element[s];
      if (stream->type != REDIS_REPLY_ARRAY || stream->elements != 2) return false;
      const redisReply* entries = stream->element[1];
      if (entries->type != REDIS_REPLY_ARRAY) return false;
      for (size_t e = 0; e < entries->elements; ++e) {
        const redisReply* entry = entries->element[e];
        if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2) return false;
        const std::string sid = reply_str(entry->element[0]);
        const redisReply* f = entry->element[1];
        std::string id, ok, note, t, seq;
        if (f->type == REDIS_REPLY_ARRAY)
          for (size_t i = 0; i + 1 < f->elements; i += 2) {
            const std::string k = reply_str(f->element[i]);
            std::string v = reply_str(f->element[i + 1]);
            if (k == "id") id = std::move(v);
            else if (k == "ok") ok = std::move(v);
            else if (k == "note") note = std::move(v);
            else if (k == "t") t = std::move(v);
            else if (k == "n") seq = std::move(v);
          }
        DecisionNote dn;
        // A malformed event is skipped by every replica alike (same stream, same rule).
        if (!id.empty() && (ok == "0" || ok == "1") && note_from_json(note, dn)) {
          double t_s = std::numeric_limits<double>::quiet_NaN();
          try {
            t_s = static_cast<double>(std::stoll(t)) / 1000.0;
          } catch (...) {
          }
          try {
            apply(id, dn, ok == "1", t_s);
          } catch (const std::exception& e) {
            // Deterministic code on the same event fails alike on every replica; count it and
            // move on rather than stop the consumer.
            errors.fetch_add(1, std::memory_order_relaxed);
            log(std::string("applying stream event ") + sid + " failed: " + e.what());
          }
          applied.fetch_add(1, std::memory_order_relaxed);
          ++since_checkpoint;
        } else {
          errors.fetch_add(1, std::memory_order_relaxed);
        }
        {
          std::lock_guard<std::mutex> lock(notes_mu);
          notes.erase(id);
        }
        std::lock_guard<std::mutex> lock(pos_mu);
        last_id = sid;
        try {
          if (!seq.empty()) last_seq = std::stoull(seq);
        } catch (...) {
        }
        ++*n;
      }
    }
    return true;
  }

  // One XREAD on the consumer connection; false when the connection failed.
  bool read_once(int block_ms, size_t* n) {
    std::vector<std::string> args = {"XREAD", "COUNT", "512"};
    if (block_ms > 0) {
      args.push_back("BLOCK");
      args.push_back(std::to_string(block_ms));
    }
    args.insert(args.end(), {"STREAMS", k_stream, current_id()});
    Reply r = command(rd.get(), args);
    if (!r) {
      drop_read_connection(rd->errstr);
      return false;
    }
    if (r->type == REDIS_REPLY_ERROR) {
      errors.fetch_add(1, std::memory_order_relaxed);
      log("XREAD failed: " + reply_str(r.get()));
      *n = 0;
      return true;
    }
    if (!apply_xread(r.get(), n)) {
      errors.fetch_add(1, std::memory_order_relaxed);
      *n = 0;
    }
    return true;
  }

  // Restores the newest checkpoint when it is ahead of this replica, then applies the stream
  // after it until it is read to the end. Throws Error(invalid_argument) on another table's
  // checkpoint; false when the connection failed.
  bool sync() {
    Reply cp = command(rd.get(), {"HGETALL", k_checkpoint});
    if (!cp) {
      drop_read_connection(rd->errstr);
      return false;
    }
    if (cp->type == REDIS_REPLY_ARRAY && cp->elements >= 2) {
      std::unordered_map<std::string, std::string> h;
      for (size_t i = 0; i + 1 < cp->elements; i += 2)
        h[reply_str(cp->element[i])] = reply_str(cp->element[i + 1]);
      if (h["table"] != fingerprint)
        throw Error(Status::invalid_argument,
                    "state: the checkpoint in Redis (" + url.redacted() + ", key " + k_checkpoint +
                        ") was written over another threshold table (fingerprint " + h["table"] +
                        ", this replica's " + fingerprint +
                        "): serve the same pipeline / calibration on every replica, or use another state prefix");
      if (stream_id(h["id"]) > stream_id(current_id())) {
        online->restore_state(h["state"]);
        std::lock_guard<std::mutex> lock(pos_mu);
        last_id = h["id"];
        try {
          last_seq = std::stoull(h["seq"]);
        } catch (...) {
        }
      }
    }
    for (;;) {
      size_t n = 0;
      if (!read_once(0, &n)) return false;
      if (n == 0) break;
    }
    synced = true;
    return true;
  }

  bool ensure_connected() {
    std::string why;
    if (!rd) {
      rd = connect(std::max(opt.timeout_ms, 200 + 2000), &why);
      if (!rd) return false;
    }
    bool need_cmd;
    {
      std::lock_guard<std::mutex> lock(cmd_mu);
      need_cmd = !cmd;
    }
    if (need_cmd) {
      // Connect outside the lock: a hung Redis must not hold request threads on cmd_mu.
      Context c = connect(opt.timeout_ms, &why);
      if (!c) return false;
      std::lock_guard<std::mutex> lock(cmd_mu);
      if (!cmd) cmd = std::move(c);
    }
    if (!connected.exchange(true)) log("connected to Redis at " + url.redacted());
    return true;
  }

  void flush_queue() {
    for (;;) {
      Queued q;
      {
        std::lock_guard<std::mutex> lock(q_mu);
        if (queue.empty()) return;
        q = queue.front();
      }
      Reply r = eval_feedback(q);
      if (!r) return;  // connection lost: keep it queued
      // Sent (or a duplicate, or refused: an error reply would repeat forever). Counted once,
      // as "queued", when /feedback answered 202.
      if (r->type == REDIS_REPLY_ERROR) log("Redis refused a queued label: " + reply_str(r.get()));
      std::lock_guard<std::mutex> lock(q_mu);
      if (!queue.empty() && queue.front().id == q.id && queue.front().t_ms == q.t_ms) queue.pop_front();
    }
  }

  void maybe_checkpoint(bool force) {
    const auto now = Clock::now();
    if (since_checkpoint == 0) return;
    if (!force && since_checkpoint < opt.checkpoint_every &&
        std::chrono::duration<double>(now - last_checkpoint).count() < opt.checkpoint_interval_s)
      return;
    std::string id, seq;
    {
      std::lock_guard<std::mutex> lock(pos_mu);
      id = last_id;
      seq = std::to_string(last_seq);
    }
    // Only the consumer thread applies events, so this state is exactly the state at `id`.
    Reply r = shared_command({"EVAL", kCheckpointScript, "1", k_checkpoint, id, online->state_json(),
                              fingerprint, seq});
    if (!r) return;
    since_checkpoint = 0;
    last_checkpoint = now;
    if (r->type == REDIS_REPLY_INTEGER && r->integer == 1) checkpoints.fetch_add(1, std::memory_order_relaxed);
  }

  void update_lag() {
    const auto now = Clock::now();
    if (now - last_lag < std::chrono::milliseconds(500)) return;
    last_lag = now;
    Reply r = shared_command({"GET", k_seq});
    if (!r || r->type != REDIS_REPLY_STRING) return;
    uint64_t head = 0;
    try {
      head = std::stoull(reply_str(r.get()));
    } catch (...) {
      return;
    }
    std::lock_guard<std::mutex> lock(pos_mu);
    lag = head > last_seq ? head - last_seq : 0;
  }

  void run() {
    int backoff_ms = 100;
    while (!stopping) {
      if (!rd || !connected) {
        if (!ensure_connected()) {
          std::unique_lock<std::mutex> lock(wake_mu);
          wake_cv.wait_for(lock, std::chrono::milliseconds(backoff_ms), [&] { return stopping.load(); });
          backoff_ms = std::min(backoff_ms * 2, 2000);
          continue;
        }
        backoff_ms = 100;
      }
      {
        std::lock_guard<std::mutex> lock(cmd_mu);
        if (!cmd) {
          connected = false;
          continue;
        }
      }
      if (!synced) {
        try {
          if (!sync()) continue;
        } catch (const Error& e) {
          log(std::string(e.what()) + "; staying on local state");
          stopping = true;
          return;
        } catch (const std::exception& e) {
          errors.fetch_add(1, std::memory_order_relaxed);
          log(std::string("sync failed: ") + e.what());
          continue;
        }
      }
      flush_queue();
      size_t n = 0;
      if (!read_once(200, &n)) continue;
      maybe_checkpoint(false);
      update_lag();
    }
    if (connected) maybe_checkpoint(true);
  }
};

RedisState::RedisState(RedisStateOptions options, std::shared_ptr<OnlineRecalibrator> online, ApplyFn apply)
    : impl_(std::make_unique<Impl>()) {
  auto& I = *impl_;
  I.opt = std::move(options);
  I.url = parse_redis_url(I.opt.url);
  if (!online) throw Error(Status::invalid_argument, "state: no online recalibrator");
  if (!apply) throw Error(Status::invalid_argument, "state: no apply function");
  I.online = std::move(online);
  I.apply = std::move(apply);
  const std::string& p = I.opt.prefix;
  I.k_stream = p + "feedback";
  I.k_seq = p + "feedback:seq";
  I.k_checkpoint = p + "checkpoint";
  I.k_note = p + "note:";
  I.k_fb = p + "fb:";
  I.fingerprint = I.online->table_fingerprint();
}

RedisState::~RedisState() { stop(); }

void RedisState::start() {
  auto& I = *impl_;
  if (I.started.exchange(true)) return;
  std::string why;
  bool up = false;
  {
    I.rd = I.connect(std::max(I.opt.timeout_ms, 200 + 2000), &why);
    if (I.rd) {
      std::lock_guard<std::mutex> lock(I.cmd_mu);
      I.cmd = I.connect(I.opt.timeout_ms, &why);
      up = I.cmd != nullptr;
    }
  }
  if (up) {
    I.connected = true;
    if (!I.sync()) up = false;  // lost between connect and sync
    else I.log("connected to Redis at " + I.url.redacted() + "; resumed at stream id " + I.current_id());
  }
  if (!up) {
    if (!I.opt.degraded_on_start_failure)
      throw Error(Status::io, "state: cannot reach Redis at " + I.url.redacted() + " (" + why +
                                  "); start Redis, or set state.on_start_failure: degraded to serve on "
                                  "local state until it is reachable");
    I.log("cannot reach Redis at " + I.url.redacted() + " (" + why +
          "); degraded: serving on local state, feedback is queued until Redis is reachable");
    I.rd.reset();
    std::lock_guard<std::mutex> lock(I.cmd_mu);
    I.cmd.reset();
    I.connected = false;
  }
  I.consumer = std::thread([this] { impl_->run(); });
}

void RedisState::stop() {
  auto& I = *impl_;
  {
    std::lock_guard<std::mutex> lock(I.wake_mu);
    I.stopping = true;
  }
  I.wake_cv.notify_all();
  if (I.consumer.joinable()) I.consumer.join();
}

void RedisState::note_decision(const std::string& request_id, const DecisionNote& note) {
  auto& I = *impl_;
  std::string j = note_to_json(note);
  {
    std::lock_guard<std::mutex> lock(I.notes_mu);
    if (I.notes.insert_or_assign(request_id, j).second) I.notes_order.push_back(request_id);
    while (I.notes.size() > I.opt.max_notes && !I.notes_order.empty()) {
      I.notes.erase(I.notes_order.front());
      I.notes_order.pop_front();
    }
    while (!I.notes_order.empty() && !I.notes.count(I.notes_order.front())) I.notes_order.pop_front();
  }
  Reply r;
  if (I.connected) r = I.shared_command({"SET", I.k_note + request_id, j, "EX", std::to_string(I.opt.note_ttl_s)});
  if (!r || r->type == REDIS_REPLY_ERROR) I.notes_local_only.fetch_add(1, std::memory_order_relaxed);
}

RedisState::Feedback RedisState::feedback(const std::string& request_id, bool acceptable,
                                          std::string* stream_id) {
  auto& I = *impl_;
  Impl::Queued q;
  q.id = request_id;
  q.ok = acceptable;
  q.t_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
               .count();
  bool local = false;
  {
    std::lock_guard<std::mutex> lock(I.notes_mu);
    auto it = I.notes.find(request_id);
    if (it != I.notes.end()) {
      q.note = it->second;
      local = true;
    }
  }
  bool reachable = I.connected.load();
  if (!local && reachable) {
    Reply r = I.shared_command({"GET", I.k_note + request_id});
    if (r && r->type == REDIS_REPLY_STRING) {
      q.note = reply_str(r.get());
    } else if (r && r->type == REDIS_REPLY_NIL) {
      I.unknown.fetch_add(1, std::memory_order_relaxed);
      return Feedback::unknown;
    } else {
      reachable = false;
    }
  }
  if (q.note.empty()) {
    if (reachable) {
      I.unknown.fetch_add(1, std::memory_order_relaxed);
      return Feedback::unknown;
    }
    I.unavailable.fetch_add(1, std::memory_order_relaxed);
    return Feedback::unavailable;
  }
  if (reachable) {
    Reply r = I.eval_feedback(q);
    if (r && r->type == REDIS_REPLY_STRING) {
      I.recorded.fetch_add(1, std::memory_order_relaxed);
      if (stream_id) *stream_id = reply_str(r.get());
      return Feedback::recorded;
    }
    if (r && r->type == REDIS_REPLY_NIL) {
      I.duplicates.fetch_add(1, std::memory_order_relaxed);
      return Feedback::duplicate;
    }
    if (r && r->type == REDIS_REPLY_ERROR)
      throw Error(Status::io, "state: Redis refused the feedback: " + reply_str(r.get()));
  }
  {
    std::lock_guard<std::mutex> lock(I.q_mu);
    I.queue.push_back(std::move(q));
    while (I.queue.size() > I.opt.queue_max) {
      I.queue.pop_front();
      I.dropped.fetch_add(1, std::memory_order_relaxed);
    }
  }
  I.queued_total.fetch_add(1, std::memory_order_relaxed);
  I.wake_cv.notify_all();
  return Feedback::queued;
}

RedisState::Stats RedisState::stats() const {
  const auto& I = *impl_;
  Stats s;
  s.connected = I.connected;
  s.synced = I.synced;
  s.applied = I.applied;
  s.lag = I.lag;
  {
    std::lock_guard<std::mutex> lock(const_cast<Impl&>(I).q_mu);
    s.queued = I.queue.size();
  }
  s.dropped = I.dropped;
  s.checkpoints = I.checkpoints;
  s.errors = I.errors;
  s.notes_local_only = I.notes_local_only;
  s.recorded = I.recorded;
  s.duplicates = I.duplicates;
  s.queued_total = I.queued_total;
  s.unknown = I.unknown;
  s.unavailable = I.unavailable;
  std::lock_guard<std::mutex> lock(I.pos_mu);
  s.last_id = I.last_id;
  s.last_seq = I.last_seq;
  return s;
}

std::string RedisState::url_redacted() const { return impl_->url.redacted(); }

std::string RedisState::metrics_prometheus() const {
  const Stats s = stats();
  std::string o;
  auto one = [&](const char* name, const char* type, const char* help, uint64_t v) {
    o += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " +
         std::to_string(v) + "\n";
  };
  one("routenlp_state_connected", "gauge", "1 while this replica reaches the shared-state Redis.", s.connected ? 1 : 0);
  one("routenlp_state_events_applied_total", "counter", "Feedback events applied from the shared stream (every replica's).", s.applied);
  one("routenlp_state_stream_lag", "gauge", "Feedback events in the stream this replica has not applied yet.", s.lag);
  one("routenlp_state_feedback_queued", "gauge", "Feedback buffered here while Redis is unreachable.", s.queued);
  one("routenlp_state_feedback_dropped_total", "counter", "Buffered feedback dropped (queue full: oldest first).", s.dropped);
  one("routenlp_state_checkpoints_written_total", "counter", "Threshold-state checkpoints this replica wrote.", s.checkpoints);
  one("routenlp_state_redis_errors_total", "counter", "Failed Redis commands and connections.", s.errors);
  one("routenlp_state_notes_local_only_total", "counter", "Audited notes not shared (Redis unreachable): only this replica accepts their feedback.", s.notes_local_only);
  o += "# HELP routenlp_state_feedback_total Replies to /feedback on this replica, by outcome.\n"
       "# TYPE routenlp_state_feedback_total counter\n";
  o += "routenlp_state_feedback_total{result=\"recorded\"} " + std::to_string(s.recorded) + "\n";
  o += "routenlp_state_feedback_total{result=\"duplicate\"} " + std::to_string(s.duplicates) + "\n";
  o += "routenlp_state_feedback_total{result=\"queued\"} " + std::to_string(s.queued_total) + "\n";
  o += "routenlp_state_feedback_total{result=\"unknown\"} " + std::to_string(s.unknown) + "\n";
  o += "routenlp_state_feedback_total{result=\"unavailable\"} " + std::to_string(s.unavailable) + "\n";
  return o;
}

}  // namespace routenlp::state
