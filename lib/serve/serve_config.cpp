// Serve config (YAML): portfolio, router, calibration, tier endpoints, server limits.
// Format: docs/serving.md. Errors name file:line:field.
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/yaml_reader.hpp"
#include "routenlp/router/io.hpp"
#include "routenlp/tiers/openai_tier.hpp"
#include "routenlp/serve/serve.hpp"

namespace routenlp {

namespace {

namespace fs = std::filesystem;

using Reader = detail::YamlReader;

// Without a pipeline: the portfolio, a router and optionally calibration thresholds.
void load_parts(const Reader& r, const YAML::Node& root, const RouterRuntime& runtime, ServeConfig& cfg) {
  if (!root["portfolio"]) r.fail(root, "portfolio", "required (path of the portfolio YAML)");
  cfg.setup.portfolio = load_portfolio(r.path(root["portfolio"], "portfolio"));
  const auto& portfolio = cfg.setup.portfolio;
  std::vector<std::string> tier_names;
  for (const auto& t : portfolio.tiers) tier_names.push_back(t.name);

  // Router.
  YAML::Node rn = root["router"];
  if (!rn) r.fail(root, "router", "required (kind: neural | random | always | task-prior | tfidf-logreg | knn)");
  r.check_keys(rn, "router", {"kind", "checkpoint", "seed", "tier", "train_data"});
  std::string kind = rn["kind"] ? r.string(rn["kind"], "router.kind") : "neural";
  if (kind == "neural") {
    if (!rn["checkpoint"]) r.fail(rn, "router.checkpoint", "required for kind neural");
    cfg.setup.router = std::make_shared<NeuralRouter>(
        NeuralRouter::load(r.path(rn["checkpoint"], "router.checkpoint"), runtime));
  } else if (kind == "random") {
    uint64_t seed = rn["seed"] ? static_cast<uint64_t>(r.integer(rn["seed"], "router.seed", 0, 1L << 53)) : 0;
    cfg.setup.router = make_random_router(tier_names, seed);
  } else if (kind == "always") {
    if (!rn["tier"]) r.fail(rn, "router.tier", "required for kind always");
    std::string t = r.string(rn["tier"], "router.tier");
    int k = portfolio.tier_index(t);
    if (k < 0) r.fail(rn["tier"], "router.tier", "'" + t + "' is not a portfolio tier");
    cfg.setup.router = make_always_tier_router(tier_names, k);
  } else if (kind == "task-prior" || kind == "tfidf-logreg" || kind == "knn") {
    if (!rn["train_data"]) r.fail(rn, "router.train_data", "required for kind " + kind);
    ReadOptions ro;
    ro.portfolio = &portfolio;
    Dataset data = read_dataset(r.path(rn["train_data"], "router.train_data"), ro);
    RoutingLabels labels = make_labels(data, portfolio, Split::train);
    if (kind == "task-prior") cfg.setup.router = make_task_prior_router(labels);
    else if (kind == "tfidf-logreg") cfg.setup.router = make_tfidf_logreg_router(labels);
    else cfg.setup.router = make_knn_router(labels);
  } else {
    r.fail(rn["kind"], "router.kind", "unknown kind '" + kind + "' (neural, random, always, task-prior, tfidf-logreg, knn)");
  }

  if (root["calibration"]) {
    auto cal = std::make_shared<const ConformalCalibrator>(
        ConformalCalibrator::load(r.path(root["calibration"], "calibration")));
    cfg.setup.thresholds = cal->thresholds();
    cfg.setup.calibration = cal;
  }
}

}  // namespace

ServeConfig load_serve_config(const std::string& path, const std::string& pipeline_dir) {
  Reader r(path);
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw Error(Status::io, path + ": cannot open serve config");
  } catch (const YAML::Exception& e) {
    throw Error(Status::parse, path + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  r.check_keys(root, "", {"pipeline", "portfolio", "router", "routers", "calibration", "tiers", "server", "auth",
                         "state", "state_on_start_failure"});
  ServeConfig cfg;
  // Where a neural router runs (read first: loading the router needs it).
  RouterRuntime runtime;
  if (YAML::Node s = root["server"]; s && s.IsMap() && (s["router_device"] || s["router_int8"])) {
    if (s["router_device"]) runtime.device = r.string(s["router_device"], "server.router_device");
    if (s["router_int8"]) runtime.int8_dynamic = r.boolean(s["router_int8"], "server.router_int8");
    const char* key = s["router_device"] ? "router_device" : "router_int8";  // where errors point
    try {
      NeuralRouter::resolve_device(runtime);  // checked whatever the router kind
    } catch (const Error& e) {
      r.fail(s[key], std::string("server.") + key, e.what());
    }
  }
  if (root["pipeline"] || !pipeline_dir.empty()) {
    // A fitted artifact brings the portfolio, router and thresholds: giving them too is ambiguous.
    for (const char* k : {"portfolio", "router", "calibration"})
      if (root[k]) r.fail(root[k], k, "not allowed with a pipeline (the artifact holds it)");
    const std::string dir = pipeline_dir.empty() ? r.path(root["pipeline"], "pipeline") : pipeline_dir;
    cfg.setup.pipeline = std::make_shared<const Pipeline>(Pipeline::load(dir, runtime));
    cfg.setup.portfolio = cfg.setup.pipeline->portfolio();
  } else {
    load_parts(r, root, runtime, cfg);
  }
  const auto& portfolio = cfg.setup.portfolio;

  // More routers, each a saved router directory (save_router) or a pipeline artifact directory
  // (its router), chosen per request by "router-<name>-<t>".
  if (YAML::Node rs = root["routers"]) {
    if (!rs.IsSequence()) r.fail(rs, "routers", "expected a list of {name, dir}");
    std::vector<std::string> tier_names;
    for (const auto& t : portfolio.tiers) tier_names.push_back(t.name);
    for (size_t i = 0; i < rs.size(); ++i) {
      const std::string where = "routers[" + std::to_string(i) + "]";
      YAML::Node n = rs[i];
      if (!n.IsMap()) r.fail(n, where, "expected {name, dir}");
      r.check_keys(n, where, {"name", "dir"});
      if (!n["name"]) r.fail(n, where + ".name", "required");
      if (!n["dir"]) r.fail(n, where + ".dir", "required");
      NamedRouter nr;
      nr.name = r.string(n["name"], where + ".name");
      if (nr.name.empty() || nr.name.find_first_of(" :/") != std::string::npos)
        r.fail(n["name"], where + ".name", "must be non-empty, without spaces, ':' or '/'");
      for (const auto& other : cfg.setup.routers)
        if (other.name == nr.name) r.fail(n["name"], where + ".name", "'" + nr.name + "' is listed twice");
      const std::string dir = r.path(n["dir"], where + ".dir");
      try {
        if (std::filesystem::exists(std::filesystem::path(dir) / "manifest.json")) {
          nr.router = Pipeline::load(dir, runtime).router();
          if (!nr.router) throw Error(Status::invalid_argument, "the pipeline in " + dir + " has no router");
        } else {
          nr.router = load_router(dir, runtime);
        }
      } catch (const Error& e) {
        r.fail(n["dir"], where + ".dir", e.what());
      }
      if (nr.router->tiers() != tier_names)
        r.fail(n["dir"], where + ".dir", "router '" + nr.name + "' was fitted on other tiers than the portfolio's");
      cfg.setup.routers.push_back(std::move(nr));
    }
  }

  // Server.
  if (YAML::Node s = root["server"]) {
    r.check_keys(s, "server", {"host", "port", "threads", "max_body_bytes", "max_batch", "read_timeout_s",
                         "write_timeout_s", "keep_alive_timeout_s", "default_deadline_ms",
                         "default_policy", "audit_rate", "decision_log", "request_read_timeout_s",
                         "max_connections_per_client", "reserve_threads", "keep_alive_max_count",
                         "router_device", "router_int8", "listen_backlog", "access_log", "access_log_prompts"});
    auto& o = cfg.options;
    if (s["host"]) o.host = r.string(s["host"], "server.host");
    if (s["port"]) o.port = static_cast<int>(r.integer(s["port"], "server.port", 0, 65535));
    if (s["listen_backlog"])
      o.listen_backlog = static_cast<int>(r.integer(s["listen_backlog"], "server.listen_backlog", 1, 65535));
    if (s["threads"]) o.threads = static_cast<size_t>(r.integer(s["threads"], "server.threads", 1, 1024));
    if (s["max_body_bytes"])
      o.max_body_bytes = static_cast<size_t>(r.integer(s["max_body_bytes"], "server.max_body_bytes", 1024, 1L << 30));
    if (s["max_batch"]) o.max_batch = static_cast<size_t>(r.integer(s["max_batch"], "server.max_batch", 1, 100000));
    if (s["read_timeout_s"]) o.read_timeout_s = static_cast<int>(r.integer(s["read_timeout_s"], "server.read_timeout_s", 1, 3600));
    if (s["write_timeout_s"]) o.write_timeout_s = static_cast<int>(r.integer(s["write_timeout_s"], "server.write_timeout_s", 1, 3600));
    if (s["keep_alive_timeout_s"])
      o.keep_alive_timeout_s = static_cast<int>(r.integer(s["keep_alive_timeout_s"], "server.keep_alive_timeout_s", 1, 3600));
    if (s["keep_alive_max_count"])
      o.keep_alive_max_count = static_cast<size_t>(
          r.integer(s["keep_alive_max_count"], "server.keep_alive_max_count", 1, 1000000));
    if (s["request_read_timeout_s"]) {
      o.request_read_timeout_s = r.number(s["request_read_timeout_s"], "server.request_read_timeout_s");
      if (o.request_read_timeout_s < 0.1 || o.request_read_timeout_s > 3600)
        r.fail(s["request_read_timeout_s"], "server.request_read_timeout_s", "must be in [0.1, 3600]");
    }
    if (s["max_connections_per_client"])
      o.max_connections_per_client = static_cast<int>(
          r.integer(s["max_connections_per_client"], "server.max_connections_per_client", 0, 1 << 20));
    if (s["reserve_threads"])
      o.reserve_threads = static_cast<size_t>(r.integer(s["reserve_threads"], "server.reserve_threads", 0, 1023));
    if (s["default_deadline_ms"]) {
      o.default_deadline_ms = r.number(s["default_deadline_ms"], "server.default_deadline_ms");
      if (o.default_deadline_ms < 0) r.fail(s["default_deadline_ms"], "server.default_deadline_ms", "must be >= 0");
    }
    if (s["default_policy"]) o.default_policy = r.string(s["default_policy"], "server.default_policy");
    if (s["audit_rate"]) {
      double a = r.number(s["audit_rate"], "server.audit_rate");
      if (a < 0 || a > 1) r.fail(s["audit_rate"], "server.audit_rate", "must be in [0,1]");
      cfg.setup.audit_rate = a;
    }
    if (s["decision_log"]) cfg.setup.decision_log = r.path(s["decision_log"], "server.decision_log");
    if (s["access_log"]) cfg.setup.access_log = r.path(s["access_log"], "server.access_log");
    if (s["access_log_prompts"])
      cfg.setup.access_log_prompts = r.boolean(s["access_log_prompts"], "server.access_log_prompts");
  }

  // API keys: lines "<id> <key> [max_requests=N] [max_cost_usd=X] [rate_per_s=R] [burst=B]" from
  // auth.keys_file and/or the environment variable auth.keys_env (lines or ';'-separated).
  // Errors name the source and line, never the key.
  if (YAML::Node a = root["auth"]) {
    r.check_keys(a, "auth", {"keys_file", "keys_env", "defaults"});
    ApiKey defaults;
    if (YAML::Node d = a["defaults"]) {
      r.check_keys(d, "auth.defaults", {"max_requests", "max_cost_usd", "rate_per_s", "burst"});
      if (d["max_requests"]) defaults.max_requests = r.integer(d["max_requests"], "auth.defaults.max_requests", 0, 1L << 53);
      if (d["max_cost_usd"]) defaults.max_cost_usd = r.number(d["max_cost_usd"], "auth.defaults.max_cost_usd");
      if (d["rate_per_s"]) defaults.rate_per_s = r.number(d["rate_per_s"], "auth.defaults.rate_per_s");
      if (d["burst"]) defaults.burst = r.number(d["burst"], "auth.defaults.burst");
      if (defaults.max_cost_usd < -0.0 && d["max_cost_usd"]) r.fail(d["max_cost_usd"], "auth.defaults.max_cost_usd", "must be >= 0");
      if (defaults.rate_per_s < 0) r.fail(d["rate_per_s"], "auth.defaults.rate_per_s", "must be >= 0");
      if (defaults.burst < 0) r.fail(d["burst"], "auth.defaults.burst", "must be >= 0");
    }
    auto parse_keys = [&](const std::string& text, const std::string& source) {
      std::string norm = text;
      if (source.rfind("environment", 0) == 0) std::replace(norm.begin(), norm.end(), ';', '\n');
      std::istringstream lines(norm);
      std::string line;
      for (int no = 1; std::getline(lines, line); ++no) {
        auto hash = line.find('#');
        if (hash != std::string::npos) line = line.substr(0, hash);
        std::istringstream words(line);
        std::vector<std::string> w;
        for (std::string x; words >> x;) w.push_back(x);
        if (w.empty()) continue;
        const std::string where = source + " line " + std::to_string(no);
        if (w.size() < 2) throw Error(Status::parse, where + ": expected '<id> <key> [limit=value ...]'");
        ApiKey k = defaults;
        k.id = w[0];
        k.key = w[1];
        if (k.key.size() < 8) throw Error(Status::parse, where + " (key '" + k.id + "'): the key is shorter than 8 characters");
        for (size_t i = 2; i < w.size(); ++i) {
          auto eq = w[i].find('=');
          std::string name = w[i].substr(0, eq), val = eq == std::string::npos ? "" : w[i].substr(eq + 1);
          char* end = nullptr;
          double v = std::strtod(val.c_str(), &end);
          if (val.empty() || end != val.c_str() + val.size() || !std::isfinite(v) || v < 0)
            throw Error(Status::parse, where + " (key '" + k.id + "'): " + name + " needs a number >= 0");
          if (name == "max_requests") k.max_requests = static_cast<int64_t>(v);
          else if (name == "max_cost_usd") k.max_cost_usd = v;
          else if (name == "rate_per_s") k.rate_per_s = v;
          else if (name == "burst") k.burst = v;
          else throw Error(Status::parse, where + " (key '" + k.id + "'): unknown limit '" + name +
                                              "' (max_requests, max_cost_usd, rate_per_s, burst)");
        }
        for (const auto& o : cfg.setup.api_keys)
          if (o.id == k.id) throw Error(Status::parse, where + ": key id '" + k.id + "' is listed twice");
        cfg.setup.api_keys.push_back(std::move(k));
      }
    };
    if (a["keys_file"]) {
      const std::string f = r.path(a["keys_file"], "auth.keys_file");
      std::ifstream in(f);
      if (!in) r.fail(a["keys_file"], "auth.keys_file", "cannot read " + f);
      std::stringstream ss;
      ss << in.rdbuf();
      try {
        parse_keys(ss.str(), f);
      } catch (const Error& e) {
        r.fail(a["keys_file"], "auth.keys_file", e.what());
      }
    }
    if (a["keys_env"]) {
      const std::string var = r.string(a["keys_env"], "auth.keys_env");
      const char* v = std::getenv(var.c_str());
      if (v == nullptr || !*v) r.fail(a["keys_env"], "auth.keys_env", "environment variable " + var + " is not set");
      try {
        parse_keys(v, "environment variable " + var);
      } catch (const Error& e) {
        r.fail(a["keys_env"], "auth.keys_env", e.what());
      }
    }
    if (cfg.setup.api_keys.empty()) r.fail(a, "auth", "no API keys (give keys_file or keys_env with at least one key)");
  }

  // Shared online state: `state: redis://...` or `state: {url | url_env, prefix, ...}`. The URL
  // may hold a password: errors never quote it.
  // "error" or "degraded", from state.on_start_failure or the top-level state_on_start_failure.
  auto on_start_failure = [&](const YAML::Node& n, const std::string& field) {
    const std::string v = r.string(n, field);
    if (v != "error" && v != "degraded") r.fail(n, field, "expected error or degraded");
    cfg.setup.state.degraded_on_start_failure = v == "degraded";
  };
  if (YAML::Node st = root["state"]) {
    auto& so = cfg.setup.state;
    auto check_url = [&](const YAML::Node& n, const std::string& field, const std::string& url) {
      if (url.rfind("redis://", 0) != 0)
        r.fail(n, field, "expected a redis://[[user]:password@]host[:port][/db] URL");
      so.url = url;
    };
    if (st.IsScalar()) {
      check_url(st, "state", r.string(st, "state"));
    } else {
      r.check_keys(st, "state", {"url", "url_env", "prefix", "on_start_failure", "queue_max", "checkpoint_every",
                                 "checkpoint_interval_s", "note_ttl_s", "feedback_ttl_s", "timeout_ms"});
      if (st["url"] && st["url_env"]) r.fail(st, "state", "give url or url_env, not both");
      if (st["url"]) {
        check_url(st["url"], "state.url", r.string(st["url"], "state.url"));
      } else if (st["url_env"]) {
        const std::string var = r.string(st["url_env"], "state.url_env");
        const char* v = std::getenv(var.c_str());
        if (v == nullptr || !*v) r.fail(st["url_env"], "state.url_env", "environment variable " + var + " is not set");
        check_url(st["url_env"], "state.url_env (" + var + ")", v);
      } else {
        r.fail(st, "state.url", "required (or url_env)");
      }
      if (st["prefix"]) so.prefix = r.string(st["prefix"], "state.prefix");
      if (st["on_start_failure"]) on_start_failure(st["on_start_failure"], "state.on_start_failure");
      if (st["queue_max"]) so.queue_max = static_cast<size_t>(r.integer(st["queue_max"], "state.queue_max", 0, 100000000));
      if (st["checkpoint_every"])
        so.checkpoint_every = static_cast<uint64_t>(r.integer(st["checkpoint_every"], "state.checkpoint_every", 1, 1L << 40));
      if (st["checkpoint_interval_s"]) {
        so.checkpoint_interval_s = r.number(st["checkpoint_interval_s"], "state.checkpoint_interval_s");
        if (!(so.checkpoint_interval_s > 0 && so.checkpoint_interval_s <= 86400))
          r.fail(st["checkpoint_interval_s"], "state.checkpoint_interval_s", "must be in (0, 86400]");
      }
      if (st["note_ttl_s"]) so.note_ttl_s = static_cast<int>(r.integer(st["note_ttl_s"], "state.note_ttl_s", 1, 1L << 30));
      if (st["feedback_ttl_s"])
        so.feedback_ttl_s = static_cast<int>(r.integer(st["feedback_ttl_s"], "state.feedback_ttl_s", 1, 1L << 30));
      if (st["timeout_ms"]) so.timeout_ms = static_cast<int>(r.integer(st["timeout_ms"], "state.timeout_ms", 10, 600000));
    }
  }
  if (YAML::Node sf = root["state_on_start_failure"]) on_start_failure(sf, "state_on_start_failure");
  if (!cfg.setup.state.url.empty() && !root["tiers"])
    r.fail(root["state"], "state", "shared state needs tiers (the online state is the cascade's)");

  // Tier endpoints: tiers[] = {name, endpoint: {...}}; tiers without one fail when called.
  if (YAML::Node ts = root["tiers"]) {
    if (!ts.IsSequence()) r.fail(ts, "tiers", "expected a list");
    std::vector<std::shared_ptr<ModelTier>> tiers(portfolio.tiers.size());
    for (size_t i = 0; i < ts.size(); ++i) {
      std::string f = "tiers[" + std::to_string(i) + "]";
      YAML::Node t = ts[i];
      r.check_keys(t, f, {"name", "endpoint"});
      if (!t["name"]) r.fail(t, f + ".name", "required");
      std::string name = r.string(t["name"], f + ".name");
      int k = portfolio.tier_index(name);
      if (k < 0) r.fail(t["name"], f + ".name", "'" + name + "' is not a portfolio tier");
      if (tiers[k]) r.fail(t["name"], f + ".name", "'" + name + "' is listed twice");
      YAML::Node e = t["endpoint"];
      if (!e) r.fail(t, f + ".endpoint", "required");
      std::string ef = f + ".endpoint";
      r.check_keys(e, ef, {"base_url", "model", "api_key_env", "timeout_ms", "connect_timeout_ms", "max_retries",
                     "backoff_initial_ms", "backoff_max_ms", "max_tokens", "temperature", "logprobs",
                     "system_prompt", "max_connections", "max_response_bytes"});
      OpenAITierOptions o;
      o.name = name;
      if (!e["base_url"]) r.fail(e, ef + ".base_url", "required");
      o.base_url = r.string(e["base_url"], ef + ".base_url");
      o.model = e["model"] ? r.string(e["model"], ef + ".model") : name;
      if (e["api_key_env"]) o.api_key_env = r.string(e["api_key_env"], ef + ".api_key_env");
      if (e["timeout_ms"]) o.timeout_ms = r.number(e["timeout_ms"], ef + ".timeout_ms");
      if (e["connect_timeout_ms"]) o.connect_timeout_ms = r.number(e["connect_timeout_ms"], ef + ".connect_timeout_ms");
      if (e["max_retries"]) o.max_retries = static_cast<int>(r.integer(e["max_retries"], ef + ".max_retries", 0, 20));
      if (e["backoff_initial_ms"]) o.backoff_initial_ms = r.number(e["backoff_initial_ms"], ef + ".backoff_initial_ms");
      if (e["backoff_max_ms"]) o.backoff_max_ms = r.number(e["backoff_max_ms"], ef + ".backoff_max_ms");
      if (e["max_tokens"]) o.max_tokens = static_cast<int>(r.integer(e["max_tokens"], ef + ".max_tokens", 0, 1000000));
      if (e["temperature"]) o.temperature = r.number(e["temperature"], ef + ".temperature");
      if (e["logprobs"]) o.request_logprobs = r.boolean(e["logprobs"], ef + ".logprobs");
      if (e["system_prompt"]) o.system_prompt = r.string(e["system_prompt"], ef + ".system_prompt");
      if (e["max_response_bytes"])
        o.max_response_bytes = static_cast<size_t>(
            r.integer(e["max_response_bytes"], ef + ".max_response_bytes", 1024, 1L << 30));
      if (e["max_connections"])
        o.max_idle_connections = static_cast<size_t>(r.integer(e["max_connections"], ef + ".max_connections", 1, 1024));
      try {
        tiers[k] = std::make_shared<OpenAICompatibleTier>(o, &portfolio);
      } catch (const Error& err) {
        r.fail(e, ef, err.what());
      }
    }
    for (size_t k = 0; k < tiers.size(); ++k)
      if (!tiers[k]) {
        std::string n = portfolio.tiers[k].name;
        tiers[k] = std::make_shared<CallbackTier>(n, [n](const TierRequest&) {
          return TierResponse::failure(Status::tier, "tier '" + n + "' has no endpoint in the serve config");
        });
      }
    cfg.setup.tiers = std::move(tiers);
  }
  return cfg;
}

}  // namespace routenlp
