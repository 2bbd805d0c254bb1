// `routenlp serve`: an HTTP server over the library (cpp-httplib, private): POST /route,
// /route/batch, /v1/chat/completions (OpenAI-compatible, routed + cascaded, optional SSE), /feedback,
// GET /health, /metrics. Endpoints, config and limits: docs/serving.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "routenlp/cascade/decision_log.hpp"
#include "routenlp/cascade/engine.hpp"
#include "routenlp/export.h"
#include "routenlp/pipeline/pipeline.hpp"
#include "routenlp/data/portfolio.hpp"
#include "routenlp/router/model.hpp"
#include "routenlp/router/policies.hpp"
#include "routenlp/router/neural.hpp"
#include "routenlp/tiers/tier.hpp"

namespace routenlp {

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                     // 0: an ephemeral port (RouteServer::port())
  size_t threads = 8;                  // worker threads; each serves one connection at a time
  size_t max_body_bytes = 1u << 20;    // larger request bodies get 413
  size_t max_batch = 256;              // queries per /route/batch request
  int read_timeout_s = 5;              // per socket read / write
  int write_timeout_s = 5;
  int keep_alive_timeout_s = 5;
  size_t keep_alive_max_count = 1000;  // requests per connection
  int listen_backlog = 1024;           // kernel queue of pending connections (bursts); capped by somaxconn
  // Slow and greedy clients (docs/serving.md "Slow clients and connection limits"):
  double request_read_timeout_s = 10;  // total time to receive one request (headers + body)
  int max_connections_per_client = -1;  // per client address; -1: threads / 2 (at least 1); 0: no cap
  size_t reserve_threads = 1;          // workers kept free for quick requests by closing slow clients
  double default_deadline_ms = 60000;  // cascade deadline when a request gives none
  // Policy when a request names none; with a pipeline, "threshold" (the default) means the
  // pipeline ("pipeline").
  std::string default_policy = "threshold";
};

// A further router a server offers, chosen per request by the policy name
// "router-<name>-<t>" (RouteLLM style). Its tiers() must equal the portfolio's tier names.
struct NamedRouter {
  std::string name;  // non-empty; unique among the server's routers
  std::shared_ptr<const RouterModel> router;
};

// A client API key (serve config `auth:`): requests must send `Authorization: Bearer <key>`.
// The key is compared in constant time and never logged, echoed or exported; `id` names it in
// the access log, errors and /metrics.
struct ApiKey {
  std::string id;
  std::string key;
  int64_t max_requests = -1;   // admitted requests over the server's life; -1: no limit
  double max_cost_usd = -1;    // USD spent by its cascades; -1: no limit
  double rate_per_s = 0;       // token bucket refill; 0: no rate limit
  double burst = 0;            // bucket size; 0: max(1, rate_per_s)
};

// Online state shared by replicas (serve config `state:`; docs/serving.md "Replicas sharing
// state through Redis"). An empty url keeps this process's own state (the default).
struct StateOptions {
  std::string url;                    // redis://[[user]:password@]host[:port][/db]; never logged with its password
  std::string prefix = "routenlp:";   // key prefix: one fleet (one pipeline) per prefix
  bool degraded_on_start_failure = false;  // Redis down at start: exit with an error (false) or serve degraded
  size_t queue_max = 10000;           // feedback buffered while Redis is unreachable (oldest dropped, counted)
  uint64_t checkpoint_every = 1000;   // applied events between threshold-state checkpoints
  double checkpoint_interval_s = 10;  // ... or this long when anything was applied
  int note_ttl_s = 86400;             // how long an audited request accepts feedback on any replica
  int feedback_ttl_s = 7 * 86400;     // how long a feedback id is remembered (duplicates ignored)
  int timeout_ms = 1000;              // Redis connect / command timeout
};

// What the server serves. The router's tiers() must equal the portfolio's tier names.
struct ServeSetup {
  // When set, the portfolio, router, thresholds and acceptance score are the pipeline's (the
  // fields below are overwritten) and the policy "pipeline" routes exactly as the pipeline does.
  std::shared_ptr<const Pipeline> pipeline;
  PortfolioConfig portfolio;
  std::shared_ptr<const RouterModel> router;      // required without a pipeline
  // More routers, by name (serve config `routers:`); "router-<name>-<t>" selects one. The
  // main router is also selectable by its own name().
  std::vector<NamedRouter> routers;
  std::vector<std::shared_ptr<ModelTier>> tiers;  // one per portfolio tier, or empty: routing only
  std::shared_ptr<const ThresholdTable> thresholds;  // null: every non-final tier escalates
  // The calibration behind `thresholds` (optional): its delta(alpha) curves let feedback move
  // each cell's threshold (online recalibration). A pipeline brings its own.
  std::shared_ptr<const ConformalCalibrator> calibration;
  double audit_rate = 0.1;                        // share of cascaded requests open to /feedback
  std::string decision_log;                       // JSONL decision log path ("" = none)
  // Empty: no authentication. Otherwise every endpoint but /health and /metrics needs a key.
  std::vector<ApiKey> api_keys;
  std::string access_log;  // JSONL access log path ("" = none): one line per request
  bool access_log_prompts = false;  // also log the query / last user message (off: no prompt text)
  StateOptions state;      // shared online state (needs tiers); empty url: in-process
};

// A serve config file (YAML, docs/serving.md) resolved into a setup and options.
struct ServeConfig {
  ServeSetup setup;
  ServeOptions options;
};
// Loads the file, the portfolio, the router, calibration thresholds and tier endpoints.
// Errors name file:line:field.
// pipeline_dir: serve this artifact (as if the file said `pipeline: DIR`, overriding it).
RN_API ServeConfig load_serve_config(const std::string& path, const std::string& pipeline_dir = {});

// Routing policy named by a string (the /route "policy" and the chat "model" field; with a
// pipeline also "pipeline", which "routenlp", "auto" and an absent name select):
//   "threshold" (portfolio targets 1 - alpha), "threshold-<p>", "knob-<lambda>" (cost knob on
//   the portfolio's relative prices), "router-<router name>-<t>" (RouteLLM: strong tier iff
//   1 - p[cheapest] >= t). Throws Error(invalid_argument) naming the string.
RN_API std::unique_ptr<RoutingPolicy> make_named_policy(const std::string& spec,
                                                        const PortfolioConfig& portfolio,
                                                        const RouterModel& router);

class RN_API RouteServer {
 public:
  RouteServer(ServeSetup setup, ServeOptions options);
  ~RouteServer();  // stops and joins
  RouteServer(const RouteServer&) = delete;
  RouteServer& operator=(const RouteServer&) = delete;

  // Binds host:port and returns the port. Throws Error(io) naming host:port when it cannot bind
  // (a port in use by another server fails: SO_REUSEADDR only, never SO_REUSEPORT).
  int bind();
  // Serves until stop(); returns once in-flight requests have finished. Binds if needed.
  void run();
  // Thread-safe (not async-signal-safe: call it from a normal thread). Idempotent.
  void stop();
  int port() const;
  // The /metrics text.
  std::string metrics_text() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace routenlp
