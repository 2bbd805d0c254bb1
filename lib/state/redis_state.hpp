// Online state shared by replicas of `routenlp serve` through Redis (internal; hiredis stays in
// redis_state.cpp). A replicated state machine: feedback events go to one Redis stream, every
// replica applies the whole stream in stream order (its own feedback too), so all replicas'
// OnlineRecalibrator states are the same function of the same ordered events; checkpoints let a
// (re)starting replica resume where the fleet is. Protocol and failure behaviour:
// docs/serving.md ("Replicas sharing state through Redis").
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "routenlp/calibration/online.hpp"

namespace routenlp::state {

struct RedisStateOptions {
  std::string url;                    // redis://[[user]:password@]host[:port][/db]
  std::string prefix = "routenlp:";   // every key starts with it (several fleets per Redis)
  bool degraded_on_start_failure = false;  // Redis down at start: serve on local state (true) or throw
  size_t queue_max = 10000;           // feedback buffered while Redis is unreachable; oldest dropped
  size_t max_notes = 100000;          // audited notes kept locally; oldest dropped
  int note_ttl_s = 86400;             // audited notes in Redis: /feedback after this is a 404
  int dedup_ttl_s = 7 * 86400;        // feedback ids remembered for duplicate detection
  size_t stream_maxlen = 1000000;     // approximate stream trim (XADD MAXLEN ~)
  uint64_t checkpoint_every = 1000;   // applied events between checkpoints
  double checkpoint_interval_s = 10;  // ... or this long, when anything was applied
  int timeout_ms = 1000;              // connect and command timeout
};

// The parts of a redis:// URL. redacted(): the URL with any password replaced by "***", the
// only form that may appear in logs, errors or /health.
struct RedisUrl {
  std::string host = "127.0.0.1";
  int port = 6379;
  int db = 0;
  std::string user, password;
  std::string redacted() const;
};
// Throws Error(invalid_argument) naming what is wrong, never the password.
RedisUrl parse_redis_url(const std::string& url);

// A feedback event as it travels through the stream.
std::string note_to_json(const DecisionNote& note);
bool note_from_json(const std::string& text, DecisionNote& out);  // false: malformed

// Whether this build has the Redis backend (hiredis found at configure time).
bool redis_available();

class RedisState {
 public:
  // apply: called on the consumer thread for every stream event, in stream order (the server
  // passes CascadeEngine::apply_outcome). online: the state that checkpoints save and restore.
  using ApplyFn = std::function<void(const std::string& request_id, const DecisionNote& note,
                                     bool acceptable, double event_unix_s)>;
  RedisState(RedisStateOptions options, std::shared_ptr<OnlineRecalibrator> online, ApplyFn apply);
  ~RedisState();  // stops the consumer thread
  RedisState(const RedisState&) = delete;
  RedisState& operator=(const RedisState&) = delete;

  // Connects, restores the newest checkpoint, applies the stream after it and starts the
  // consumer thread. Redis unreachable: Error(io) naming the redacted URL, or (degraded) serve
  // on the local state and keep trying. A checkpoint of another table: Error(invalid_argument).
  void start();
  void stop();

  // An audited request's note (CascadeOptions::on_audit): kept locally and in Redis with a TTL
  // so /feedback on any replica finds it. Never throws; Redis down: local only (counted).
  void note_decision(const std::string& request_id, const DecisionNote& note);

  enum class Feedback {
    recorded,     // in the stream: durable as Redis is (200)
    duplicate,    // this request id's label is already in the stream; nothing changed (200)
    queued,       // Redis unreachable: buffered here, sent on reconnect; lost if this replica dies (202)
    unknown,      // no note for this request id (not audited, too old) (404)
    unavailable,  // Redis unreachable and the note is not on this replica (503)
  };
  // stream_id (optional): the label's stream id when recorded; a replica whose /health last_id
  // is at or past it has applied it.
  Feedback feedback(const std::string& request_id, bool acceptable, std::string* stream_id = nullptr);

  struct Stats {
    bool connected = false, synced = false;
    uint64_t applied = 0, lag = 0, queued = 0, dropped = 0, checkpoints = 0, errors = 0;
    uint64_t notes_local_only = 0, recorded = 0, duplicates = 0, queued_total = 0, unknown = 0;
    uint64_t unavailable = 0;
    uint64_t last_seq = 0;
    std::string last_id = "0-0";
  };
  Stats stats() const;
  std::string url_redacted() const;
  // routenlp_state_* series (Prometheus text).
  std::string metrics_prometheus() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace routenlp::state
