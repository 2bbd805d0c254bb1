// The replicated online state without Redis (issue #15): replicas that apply the same feedback
// events in the same order reach bit-identical states, state_json()/restore_state() round-trip
// exactly and refuse another table's state, the engine's apply path matches record_outcome, and
// the redis:// URL parser never lets the password out. The process-level test with a real
// redis-server and 3 replicas is tests/test_redis_replicas.py.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <thread>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "routenlp/calibration/online.hpp"
#include "routenlp/cascade/engine.hpp"
#include "routenlp/error.hpp"
#include "routenlp/serve/serve.hpp"
#include "state/redis_state.hpp"

using namespace routenlp;

namespace {

std::shared_ptr<const ThresholdTable> table(double d0 = 0.3) {
  auto t = std::make_shared<ThresholdTable>();
  t->reset_shape({"small", "mid", "large"}, {"a", "b", "*"}, {0.05}, 0);
  for (size_t k = 0; k < 2; ++k)
    for (size_t c = 0; c < 3; ++c) t->at(0, k, c) = d0 + 0.01 * static_cast<double>(k + c);
  return t;
}

std::unique_ptr<OnlineRecalibrator> make_rec(double d0 = 0.3, double gamma = 0.01) {
  OnlineOptions o;
  o.aci.gamma = gamma;
  o.audit_rate = 1.0;
  o.cusum_h = 2.0;  // alarms within the run below
  o.window = 50;
  o.window_alarm = 5;
  auto rec = std::make_unique<OnlineRecalibrator>(table(d0), o);
  ThresholdCurve c;
  c.step = 0.005;
  for (double a : ThresholdCurve::grid(0.005, 0.5)) c.delta.push_back(a * 4);
  rec->set_curve(0, "a", c);
  rec->set_curve(1, "b", c);
  return rec;
}

struct Event {
  DecisionNote note;
  bool ok;
  double t;
};

// A fixed, seeded sequence of labels over every kind of note (rejections, accepted answers,
// forced last answers, an unknown task).
std::vector<Event> events(size_t n, uint64_t seed) {
  std::vector<Event> out;
  uint64_t s = seed;
  auto next = [&] {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    return s >> 33;
  };
  const char* tasks[] = {"a", "b", "zzz"};
  for (size_t i = 0; i < n; ++i) {
    Event e;
    e.note.task = tasks[next() % 3];
    const int tier = static_cast<int>(next() % 3);
    for (int k = 0; k < tier; ++k) e.note.rejected_tiers.push_back(k);
    e.note.answer_tier = tier;
    e.note.answer_accepted = next() % 4 != 0;
    e.ok = next() % 5 != 0;
    e.t = 1.7e9 + static_cast<double>(i);
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace

TEST_CASE("replicas applying the same ordered events have identical states", "[redis][state]") {
  auto ev = events(3000, 15);
  auto r1 = make_rec(), r2 = make_rec();
  for (const auto& e : ev) r1->apply_outcome(e.note, e.ok, e.t);
  for (const auto& e : ev) r2->apply_outcome(e.note, e.ok, e.t);
  CHECK(r1->state_json() == r2->state_json());
  CHECK(r1->state_digest() == r2->state_digest());
  CHECK(r1->snapshot()->delta == r2->snapshot()->delta);
  // The events moved something: thresholds and alarms.
  auto fresh = make_rec();
  CHECK(r1->state_digest() != fresh->state_digest());
  CHECK(r1->snapshot()->delta != fresh->snapshot()->delta);
  uint64_t alarms = 0;
  for (const auto& c : r1->cells()) alarms += c.cusum_alarms + c.window_alarms;
  CHECK(alarms > 0);
  // Alarm times are the events' times, not the wall clock.
  bool stamped = false;
  for (const auto& c : r1->cells())
    if (!c.last_alarm.empty()) stamped = stamped || (c.last_alarm_unix_s >= 1.7e9 && c.last_alarm_unix_s < 1.7e9 + 3000);
  CHECK(stamped);

  // Another order of the same events is another state (why the stream fixes one order).
  auto r3 = make_rec();
  for (size_t i = ev.size(); i-- > 0;) r3->apply_outcome(ev[i].note, ev[i].ok, ev[i].t);
  CHECK(r3->state_digest() != r1->state_digest());
}

TEST_CASE("record_outcome is apply_outcome of the recorded note", "[redis][state]") {
  auto ev = events(500, 7);
  auto a = make_rec(), b = make_rec();
  for (size_t i = 0; i < ev.size(); ++i) {
    const std::string id = "r" + std::to_string(i);
    a->record_decision(id, ev[i].note);
    REQUIRE(a->record_outcome(id, ev[i].ok));
    CHECK_FALSE(a->record_outcome(id, ev[i].ok));  // consumed: a repeat changes nothing
    b->apply_outcome(ev[i].note, ev[i].ok);
  }
  // Same thresholds and counters (alarm times differ: both are "now").
  CHECK(a->snapshot()->delta == b->snapshot()->delta);
  auto ca = a->cells(), cb = b->cells();
  REQUIRE(ca.size() == cb.size());
  for (size_t i = 0; i < ca.size(); ++i) {
    CHECK(ca[i].alpha_t == cb[i].alpha_t);
    CHECK(ca[i].labels == cb[i].labels);
    CHECK(ca[i].cusum == cb[i].cusum);
    CHECK(ca[i].cusum_alarms == cb[i].cusum_alarms);
  }
  a->record_decision("x", ev[0].note);
  CHECK(a->pending() == 1);
  CHECK(a->discard_decision("x"));
  CHECK_FALSE(a->discard_decision("x"));
  CHECK(a->pending() == 0);
}

TEST_CASE("state_json / restore_state round trip is exact and resumable", "[redis][state]") {
  auto ev = events(2000, 99);
  auto full = make_rec();
  for (const auto& e : ev) full->apply_outcome(e.note, e.ok, e.t);

  // A replica that restores a checkpoint taken at event 1234 and applies the rest ends where
  // one that applied everything ends: bit for bit.
  auto first = make_rec();
  for (size_t i = 0; i < 1234; ++i) first->apply_outcome(ev[i].note, ev[i].ok, ev[i].t);
  const std::string checkpoint = first->state_json();
  auto resumed = make_rec();
  resumed->restore_state(checkpoint);
  CHECK(resumed->state_json() == checkpoint);
  CHECK(resumed->snapshot()->delta == first->snapshot()->delta);
  for (size_t i = 1234; i < ev.size(); ++i) resumed->apply_outcome(ev[i].note, ev[i].ok, ev[i].t);
  CHECK(resumed->state_json() == full->state_json());

  // -inf thresholds survive (alpha_t driven to <= 0 on a cell without a curve).
  auto stalled = make_rec();
  DecisionNote bad{"b", {}, 0, true};
  for (int i = 0; i < 200; ++i) stalled->apply_outcome(bad, false, 1.7e9);
  REQUIRE(std::isinf(stalled->cell_state(0, "b").delta));
  auto back = make_rec();
  back->restore_state(stalled->state_json());
  CHECK(std::isinf(back->cell_state(0, "b").delta));
  CHECK(back->state_json() == stalled->state_json());
}

TEST_CASE("restore_state refuses another table's state and malformed text", "[redis][state]") {
  auto a = make_rec(0.3), other = make_rec(0.31), other_gamma = make_rec(0.3, 0.02);
  CHECK(a->table_fingerprint() == make_rec(0.3)->table_fingerprint());
  CHECK(a->table_fingerprint() != other->table_fingerprint());
  CHECK(a->table_fingerprint() != other_gamma->table_fingerprint());
  auto ev = events(100, 3);
  for (const auto& e : ev) a->apply_outcome(e.note, e.ok, e.t);
  const std::string before = other->state_json();
  try {
    other->restore_state(a->state_json());
    FAIL("restored another table's state");
  } catch (const Error& e) {
    CHECK(e.code() == Status::invalid_argument);
    CHECK(std::string(e.what()).find("another threshold table") != std::string::npos);
  }
  CHECK(other->state_json() == before);  // unchanged
  CHECK_THROWS_AS(other->restore_state("not json"), Error);
  CHECK_THROWS_AS(other->restore_state("{\"format\":\"routenlp-online-state\",\"version\":2}"), Error);
  std::string cut = a->state_json();
  auto pos = cut.find("\"alpha_t\"");
  REQUIRE(pos != std::string::npos);
  cut.replace(pos, 9, "\"alpha_x\"");
  auto fresh = make_rec();
  const std::string fresh_before = fresh->state_json();
  CHECK_THROWS_AS(fresh->restore_state(cut), Error);
  CHECK(fresh->state_json() == fresh_before);
}

TEST_CASE("restore_state: a float or out-of-range integer field is a parse error naming it and changes nothing",
          "[redis][state]") {
  using nlohmann::json;
  auto a = make_rec();
  for (const auto& e : events(100, 3)) a->apply_outcome(e.note, e.ok, e.t);
  const json good = json::parse(a->state_json());
  auto fresh = make_rec();
  const std::string before = fresh->state_json();
  // version and snapshots were read with value(): a float such as 1e300 overflowed the cast.
  for (const char* pointer : {"/version", "/snapshots", "/cells/0/updates", "/cells/1/labels"})
    for (const char* value : {"1e300", "-1e300", "1.0", pointer[1] == 'v' ? "4294967297" : "-1"}) {
      json bad = good;
      bad[json::json_pointer(pointer)] = json::parse(value);
      const std::string field = std::string(pointer).substr(std::string(pointer).rfind('/') + 1);
      INFO(pointer << " = " << value);
      try {
        fresh->restore_state(bad.dump());
        FAIL("expected a parse error");
      } catch (const Error& e) {
        CHECK(e.code() == Status::parse);
        CHECK_THAT(e.what(), Catch::Contains("online state: " + field + ": expected an integer"));
      }
      CHECK(fresh->state_json() == before);
    }
  // Decision notes from the stream: a tier outside int is malformed, not wrapped to 0.
  DecisionNote n;
  CHECK(state::note_from_json("{\"task\":\"a\",\"rejected\":[0],\"tier\":1,\"accepted\":true}", n));
  for (const char* bad : {"4294967296", "-2147483649", "1e300", "1.0"}) {
    INFO("tier = " << bad);
    const std::string as_tier = std::string("{\"task\":\"a\",\"rejected\":[0],\"tier\":") + bad +
                                ",\"accepted\":true}";
    CHECK_FALSE(state::note_from_json(as_tier, n));
    const std::string as_rejected = std::string("{\"task\":\"a\",\"rejected\":[0,") + bad +
                                    "],\"tier\":1,\"accepted\":true}";
    CHECK_FALSE(state::note_from_json(as_rejected, n));
  }
}

TEST_CASE("engine apply_outcome: audited metrics and thresholds as record_outcome", "[redis][state]") {
  std::vector<std::shared_ptr<ModelTier>> tiers;
  for (const char* n : {"small", "mid", "large"})
    tiers.push_back(std::make_shared<CallbackTier>(n, [](const TierRequest&) {
      TierResponse r;
      r.text = "x";
      r.confidence = 0.9;
      return r;
    }));
  auto rec = std::shared_ptr<OnlineRecalibrator>(make_rec().release());
  std::vector<std::pair<std::string, std::string>> noted;
  CascadeOptions co;
  co.online = rec;
  co.on_audit = [&](const std::string& id, const DecisionNote& n) { noted.emplace_back(id, state::note_to_json(n)); };
  CascadeEngine engine(tiers, rec->snapshot(), co);
  CascadeRequest req;
  req.id = "req-1";
  req.task = "a";
  req.query = "q";
  auto res = engine.run(req);
  REQUIRE(res.audited);
  REQUIRE(noted.size() == 1);
  CHECK(noted[0].first == "req-1");
  DecisionNote note;
  REQUIRE(state::note_from_json(noted[0].second, note));
  CHECK(note.task == "a");
  CHECK(note.answer_tier == res.tier);
  // The label applied from the stream: counted once, the local pending note dropped.
  engine.apply_outcome("req-1", note, false, 1.7e9);
  CHECK(rec->pending() == 0);
  CHECK_FALSE(engine.record_outcome("req-1", false));
  const std::string m = engine.metrics_prometheus();
  CHECK(m.find("audited") != std::string::npos);
}

TEST_CASE("redis:// URLs: parts, defaults, and the password never shown", "[redis][url]") {
  auto u = state::parse_redis_url("redis://:s3cret-pw@10.0.0.5:6380/2");
  CHECK(u.host == "10.0.0.5");
  CHECK(u.port == 6380);
  CHECK(u.db == 2);
  CHECK(u.password == "s3cret-pw");
  CHECK(u.redacted() == "redis://:***@10.0.0.5:6380/2");
  CHECK(u.redacted().find("s3cret") == std::string::npos);
  auto v = state::parse_redis_url("redis://alice:pw@redis");
  CHECK(v.user == "alice");
  CHECK(v.port == 6379);
  CHECK(v.redacted() == "redis://alice:***@redis:6379/0");
  auto w = state::parse_redis_url("redis://127.0.0.1");
  CHECK(w.password.empty());
  CHECK(w.redacted() == "redis://127.0.0.1:6379/0");
  for (const char* bad : {"http://x", "redis://:pw-secret@h:99999", "redis://:pw-secret@h:1/x", "rediss://:pw-secret@h"}) {
    try {
      state::parse_redis_url(bad);
      FAIL(std::string("accepted ") + bad);
    } catch (const Error& e) {
      CHECK(std::string(e.what()).find("pw-secret") == std::string::npos);
    }
  }
  DecisionNote n{"t/x", {0, 1}, 2, true}, back;
  REQUIRE(state::note_from_json(state::note_to_json(n), back));
  CHECK(back.task == n.task);
  CHECK(back.rejected_tiers == n.rejected_tiers);
  CHECK(back.answer_tier == 2);
  CHECK(back.answer_accepted);
  CHECK_FALSE(state::note_from_json("{\"task\":1}", back));
  CHECK_FALSE(state::note_from_json("[]", back));
}

namespace {
// A serve config (portfolio + always router + two tier endpoints) with the given state part.
std::string write_config(const std::string& name, const std::string& state_part, bool tiers = true) {
  const std::string path = std::string(RN_BINARY_DIR) + "/redis_state_" + name + ".yaml";
  std::ofstream f(path);
  f << "portfolio: " << RN_TEST_DATA_DIR << "/portfolio/good.yaml\n"
    << "router: {kind: always, tier: small}\n";
  if (tiers)
    f << "tiers:\n  - {name: small, endpoint: {base_url: \"http://127.0.0.1:9\"}}\n"
      << "  - {name: large, endpoint: {base_url: \"http://127.0.0.1:9\"}}\n";
  f << state_part;
  return path;
}

std::string load_error(const std::string& path) {
  try {
    load_serve_config(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("serve config: state as a URL or a map, errors never quote the password", "[redis][config]") {
  auto none = load_serve_config(write_config("none", ""));
  CHECK(none.setup.state.url.empty());  // absent: in-process state, the default
  CHECK_FALSE(none.setup.state.degraded_on_start_failure);

  auto plain = load_serve_config(write_config("plain", "state: redis://:pw-hidden@127.0.0.1:6390/1\n"
                                                       "state_on_start_failure: degraded\n"));
  CHECK(plain.setup.state.url == "redis://:pw-hidden@127.0.0.1:6390/1");
  CHECK(plain.setup.state.degraded_on_start_failure);

  auto map = load_serve_config(write_config(
      "map", "state:\n  url: redis://127.0.0.1\n  prefix: \"fleet-a:\"\n  on_start_failure: error\n"
             "  queue_max: 7\n  checkpoint_every: 3\n  checkpoint_interval_s: 0.25\n  note_ttl_s: 60\n"
             "  feedback_ttl_s: 120\n  timeout_ms: 50\n"));
  const auto& s = map.setup.state;
  CHECK(s.prefix == "fleet-a:");
  CHECK(s.queue_max == 7);
  CHECK(s.checkpoint_every == 3);
  CHECK(s.checkpoint_interval_s == 0.25);
  CHECK(s.note_ttl_s == 60);
  CHECK(s.feedback_ttl_s == 120);
  CHECK(s.timeout_ms == 50);
  CHECK_FALSE(s.degraded_on_start_failure);

  ::setenv("RN_TEST_REDIS_URL", "redis://:pw-hidden@10.1.2.3:6379/0", 1);
  auto env = load_serve_config(write_config("env", "state: {url_env: RN_TEST_REDIS_URL}\n"));
  CHECK(env.setup.state.url == "redis://:pw-hidden@10.1.2.3:6379/0");

  const std::vector<std::pair<std::string, std::string>> bad = {
      {"state: http://:pw-hidden@host\n", "expected a redis://"},
      {"state: {url: \"rediss://:pw-hidden@host\"}\n", "expected a redis://"},
      {"state: {url: redis://h, on_start_failure: maybe}\n", "expected error or degraded"},
      {"state: {url: redis://h, bogus: 1}\n", "bogus"},
      {"state: {prefix: x}\n", "required"},
      {"state: {url_env: RN_TEST_UNSET_VARIABLE_15}\n", "is not set"},
      {"state: redis://h\nstate_on_start_failure: sometimes\n", "expected error or degraded"},
  };
  for (size_t i = 0; i < bad.size(); ++i) {
    const std::string msg = load_error(write_config("bad" + std::to_string(i), bad[i].first));
    INFO(bad[i].first << " -> " << msg);
    CHECK(msg.find(bad[i].second) != std::string::npos);
    CHECK(msg.find("pw-hidden") == std::string::npos);
  }
  const std::string no_tiers = load_error(write_config("notiers", "state: redis://h\n", false));
  CHECK(no_tiers.find("shared state needs tiers") != std::string::npos);
}

TEST_CASE("serve: Redis down at start is a clear error naming the redacted URL", "[redis][config]") {
  if (!state::redis_available()) {
    auto cfg = load_serve_config(write_config("nosupport", "state: redis://127.0.0.1:1\n"));
    try {
      RouteServer server(cfg.setup, cfg.options);
      FAIL("started without Redis support");
    } catch (const Error& e) {
      CHECK(std::string(e.what()).find("built without Redis support") != std::string::npos);
    }
    return;
  }
  // Port 1 on loopback: nothing listens there (connection refused at once).
  auto cfg = load_serve_config(write_config("down", "state: {url: \"redis://:pw-hidden@127.0.0.1:1/0\", timeout_ms: 200}\n"));
  cfg.options.port = 0;
  try {
    RouteServer server(cfg.setup, cfg.options);
    FAIL("started with Redis down");
  } catch (const Error& e) {
    const std::string msg = e.what();
    CHECK(e.code() == Status::io);
    CHECK(msg.find("cannot reach Redis at redis://:***@127.0.0.1:1/0") != std::string::npos);
    CHECK(msg.find("pw-hidden") == std::string::npos);
    CHECK(msg.find("on_start_failure: degraded") != std::string::npos);
  }
  cfg.setup.state.degraded_on_start_failure = true;
  RouteServer degraded(cfg.setup, cfg.options);  // serves on local state
  CHECK(degraded.metrics_text().find("routenlp_state_connected 0") != std::string::npos);
}

namespace {
// A redis-server child on a free loopback port in its own directory; ok is false (and the
// caller skips) when redis-server is not installed.
struct RedisChild {
  pid_t pid = -1;
  int port = 0;
  bool ok = false;
  std::string dir;
  RedisChild() {
    if (std::system("command -v redis-server > /dev/null 2>&1") != 0) return;
    for (int attempt = 0; attempt < 5 && !ok; ++attempt) {
      port = free_port();
      std::string tmpl = std::string(RN_BINARY_DIR) + "/redis_state_XXXXXX";
      std::vector<char> buf(tmpl.begin(), tmpl.end());
      buf.push_back('\0');
      if (!::mkdtemp(buf.data())) return;
      dir = buf.data();
      pid = ::fork();
      if (pid == 0) {
        const std::string p = std::to_string(port), log = dir + "/redis.log";
        ::execlp("redis-server", "redis-server", "--port", p.c_str(), "--bind", "127.0.0.1", "--dir", dir.c_str(),
                 "--save", "", "--appendonly", "no", "--logfile", log.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
      }
      for (int i = 0; i < 200 && !ok; ++i) {  // up to 10 s
        int status = 0;
        if (::waitpid(pid, &status, WNOHANG) == pid) {
          pid = -1;
          break;  // exited (port taken): try another
        }
        ok = pingable();
        if (!ok) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
  }
  ~RedisChild() {
    if (pid > 0) {
      ::kill(pid, SIGTERM);
      ::waitpid(pid, nullptr, 0);
    }
  }
  static int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t n = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &n);
    ::close(fd);
    return ntohs(a.sin_port);
  }
  bool pingable() const {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool up = false;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
      const char ping[] = "PING\r\n";
      char buf[16] = {0};
      up = ::write(fd, ping, sizeof ping - 1) == static_cast<ssize_t>(sizeof ping - 1) &&
           ::read(fd, buf, sizeof buf - 1) > 0 && std::string(buf).rfind("+PONG", 0) == 0;
    }
    ::close(fd);
    return up;
  }
};

struct LiveReplica {
  std::shared_ptr<OnlineRecalibrator> rec;
  std::unique_ptr<state::RedisState> st;
};

LiveReplica live_replica(int port) {
  LiveReplica r;
  r.rec = std::shared_ptr<OnlineRecalibrator>(make_rec().release());
  state::RedisStateOptions o;
  o.url = "redis://127.0.0.1:" + std::to_string(port) + "/0";
  o.prefix = "live:";
  o.checkpoint_every = 25;
  o.checkpoint_interval_s = 0.2;
  auto rec = r.rec;
  r.st = std::make_unique<state::RedisState>(
      o, rec, [rec](const std::string&, const DecisionNote& n, bool ok, double t) { rec->apply_outcome(n, ok, t); });
  r.st->start();
  return r;
}
}  // namespace

TEST_CASE("three in-process replicas converge through a real redis-server", "[redis][live]") {
  if (!state::redis_available()) {
    WARN("skipped: built without Redis support");
    return;
  }
  RedisChild redis;
  if (!redis.ok) {
    WARN("skipped: redis-server is not installed (scripts/install-deps.sh)");
    return;
  }
  std::vector<LiveReplica> reps;
  for (int i = 0; i < 3; ++i) reps.push_back(live_replica(redis.port));
  const auto ev = events(300, 5);
  for (size_t i = 0; i < ev.size(); ++i) reps[i % 3].st->note_decision("id-" + std::to_string(i), ev[i].note);

  // Four threads label every request twice, on two other replicas: exactly one label per id
  // enters the stream, whichever thread wins.
  std::atomic<int> recorded{0}, duplicate{0}, other{0};
  std::vector<std::thread> ts;
  for (int w = 0; w < 4; ++w)
    ts.emplace_back([&, w] {
      for (size_t i = static_cast<size_t>(w); i < ev.size(); i += 4)
        for (size_t copy = 1; copy <= 2; ++copy) {
          std::string sid;
          auto f = reps[(i + copy) % 3].st->feedback("id-" + std::to_string(i), ev[i].ok, &sid);
          if (f == state::RedisState::Feedback::recorded && !sid.empty()) ++recorded;
          else if (f == state::RedisState::Feedback::duplicate) ++duplicate;
          else ++other;
        }
    });
  for (auto& t : ts) t.join();
  CHECK(recorded == 300);
  CHECK(duplicate == 300);
  CHECK(other == 0);
  CHECK(reps[0].st->feedback("never-noted", true) == state::RedisState::Feedback::unknown);

  auto all_applied = [&](const std::vector<LiveReplica*>& rs, uint64_t seq) {
    for (int i = 0; i < 200; ++i) {  // up to 10 s
      bool done = true;
      for (auto* r : rs) done = done && r->st->stats().last_seq >= seq;
      if (done) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  };
  REQUIRE(all_applied({&reps[0], &reps[1], &reps[2]}, 300));
  const std::string s0 = reps[0].rec->state_json();
  CHECK(reps[1].rec->state_json() == s0);
  CHECK(reps[2].rec->state_json() == s0);
  CHECK(s0 != make_rec()->state_json());
  for (auto& r : reps) CHECK(r.st->stats().applied == 300);

  // A late replica resumes from the fleet's checkpoint, then the stream after it.
  bool checkpointed = false;
  for (int i = 0; i < 200 && !checkpointed; ++i) {
    for (auto& r : reps) checkpointed = checkpointed || r.st->stats().checkpoints > 0;
    if (!checkpointed) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  REQUIRE(checkpointed);
  LiveReplica late = live_replica(redis.port);
  REQUIRE(all_applied({&late}, 300));
  CHECK(late.rec->state_json() == s0);
  CHECK(late.st->stats().applied < 300);
  CHECK(late.st->metrics_prometheus().find("routenlp_state_connected 1") != std::string::npos);
}
