#!/usr/bin/env python3
"""Replicas of `routenlp serve` sharing online state through a real Redis (issue #15).

Starts redis-server on 127.0.0.1 (a free port, its own temp dir, AOF on, a password), the
walkthrough's fake upstream, and 3 replicas serving the test pipeline artifact with
`state: redis://...`; then checks, with bounded polling only:
  1. feedback posted to one replica changes every replica's thresholds (equal state digests);
  2. a duplicate label is a 200 "duplicate" that changes nothing; an unknown id is a 404;
  3. kill -9 of a replica under load, then a restart: it resumes from the fleet's checkpoint,
     no acknowledged (200) label is missing from the stream, all replicas converge;
  4. Redis stopped and restarted: replicas keep serving, buffer feedback (202), catch up;
  5. Redis down at start: exit 1 with a clear message (default) or serve degraded;
  6. the Redis password never appears in any log or error.
Exit 77 (ctest SKIP) only when redis-server is not installed or routenlp has no Redis support.
Usage: test_redis_replicas.py --routenlp BIN --pipeline DIR --upstream fake_upstream.py --work DIR
"""
import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

PASSWORD = "pw-" + "".join(random.Random(1515).choice("abcdefghijkmnpqrstuvwxyz23456789") for _ in range(20))
TIMEOUT = 20.0  # seconds for any one condition to hold (loaded CI machines: generous)


def fail(msg):
    print("FAIL:", msg, flush=True)
    raise SystemExit(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what, fn, timeout=TIMEOUT, interval=0.05):
    """Polls fn() until it returns a truthy value; fails naming `what` after timeout seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
        except Exception as e:  # a replica or Redis still starting
            last = e
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval)
    fail(f"{what}: not within {timeout:.0f} s (last: {last!r})")


class Redis:
    """A minimal RESP client: enough for the checks (one connection per call)."""

    def __init__(self, port):
        self.port = port

    def call(self, *args, timeout=2.0):
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            f = s.makefile("rb")
            out = b""
            for cmd in (("AUTH", PASSWORD), args):
                out += b"*%d\r\n" % len(cmd)
                for a in cmd:
                    a = a if isinstance(a, bytes) else str(a).encode()
                    out += b"$%d\r\n%s\r\n" % (len(a), a)
            s.sendall(out)
            auth = self._read(f)
            if isinstance(auth, Exception):
                raise auth
            r = self._read(f)
            if isinstance(r, Exception):
                raise r
            return r

    def _read(self, f):
        line = f.readline()
        if not line:
            raise ConnectionError("closed")
        t, rest = line[:1], line[1:-2]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            return RuntimeError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = f.read(n + 2)[:-2]
            return data.decode()
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self._read(f) for _ in range(n)]
        raise ValueError(f"bad reply {line!r}")

    def ping(self):
        return self.call("PING") == "PONG"


def http(method, url, body=None, timeout=10):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data, {"Content-Type": "application/json"}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            return r.status, (json.loads(raw) if raw.startswith(b"{") else raw.decode())
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, raw.decode()


class Env:
    def __init__(self, args):
        self.args = args
        os.makedirs(args.work, exist_ok=True)
        self.dir = os.path.abspath(tempfile.mkdtemp(prefix="run-", dir=args.work))  # redis-server chdirs to --dir
        self.redis_port = free_port()
        self.redis = Redis(self.redis_port)
        self.redis_proc = None
        self.upstream = None
        self.replicas = {}  # name -> (Popen, url, log path)
        self.prefix = f"rt{os.getpid()}:"
        self.logs = []

    # -- processes ------------------------------------------------------------------------------
    def start_redis(self, first=False):
        log = os.path.join(self.dir, "redis.log")
        if log not in self.logs:
            self.logs.append(log)
        # The first start may lose its free port to a test running in parallel: pick another.
        for attempt in range(5 if first else 1):
            self.redis_proc = subprocess.Popen(
                ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--dir", self.dir,
                 "--save", "", "--appendonly", "yes", "--requirepass", PASSWORD, "--logfile", log],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + TIMEOUT
            while time.monotonic() < deadline and self.redis_proc.poll() is None:
                try:
                    if self.redis.ping():
                        return
                except (OSError, RuntimeError, ValueError):
                    pass
                time.sleep(0.05)
            if self.redis_proc.poll() is None:
                break
            if first:
                self.redis_port = free_port()
                self.redis = Redis(self.redis_port)
        fail("redis-server did not start (log: " + (open(log).read()[-1000:] if os.path.exists(log) else "none") + ")")

    def stop_redis(self):
        self.redis_proc.send_signal(signal.SIGTERM)  # graceful: the AOF is flushed
        try:
            self.redis_proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            fail("redis-server did not stop on SIGTERM")

    def start_upstream(self):
        port_file = os.path.join(self.dir, "upstream.port")
        self.upstream = subprocess.Popen([sys.executable, self.args.upstream, port_file],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until("fake upstream port file", lambda: os.path.exists(port_file) and open(port_file).read().strip())
        self.upstream_port = int(open(port_file).read().strip())

    def config(self, name, url=None, extra=""):
        url = url or f"redis://:{PASSWORD}@127.0.0.1:{self.redis_port}/0"
        path = os.path.join(self.dir, name + ".yaml")
        with open(path, "w") as f:
            f.write(f"pipeline: {self.args.pipeline}\n")
            f.write("tiers:\n")
            for t in ("small", "large"):
                f.write(f'  - {{name: {t}, endpoint: {{base_url: "http://127.0.0.1:{self.upstream_port}", '
                        f'model: {t}, max_retries: 0}}}}\n')
            f.write("server: {host: 127.0.0.1, port: 0, threads: 4, audit_rate: 1.0}\n")
            f.write(f"state:\n  url: \"{url}\"\n  prefix: \"{self.prefix}\"\n  checkpoint_every: 5\n"
                    f"  checkpoint_interval_s: 0.5\n  timeout_ms: 500\n{extra}")
        return path

    def start_replica(self, name, cfg=None, expect_listen=True):
        cfg = cfg or self.config(name)
        log = os.path.join(self.dir, name + ".log")
        self.logs.append(log)
        f = open(log, "w")
        p = subprocess.Popen([self.args.routenlp, "serve", cfg], stdout=f, stderr=subprocess.STDOUT)
        if not expect_listen:
            return p, log

        def listening():
            if p.poll() is not None:
                fail(f"replica {name} exited with {p.returncode}:\n" + open(log).read()[-3000:])
            m = re.search(r"listening on (http://[0-9.]+:[0-9]+)", open(log).read())
            return m and m.group(1)

        url = wait_until(f"replica {name} listening", listening)
        self.replicas[name] = (p, url, log)
        return url

    def url(self, name):
        return self.replicas[name][1]

    def health(self, name):
        status, h = http("GET", self.url(name) + "/health", timeout=5)
        if status != 200:
            raise RuntimeError(f"/health {status}")
        return h["state"]

    def cleanup(self):
        for p, _, _ in self.replicas.values():
            if p.poll() is None:
                p.kill()
                p.wait()
        for p in (self.upstream, self.redis_proc):
            if p and p.poll() is None:
                p.kill()
                p.wait()


def chat(url, rid, task="default"):
    return http("POST", url + "/v1/chat/completions",
                {"messages": [{"role": "user", "content": f"question {rid}"}], "task": task, "request_id": rid})


def feedback(url, rid, ok):
    return http("POST", url + "/feedback", {"request_id": rid, "acceptable": ok})


def stream_ids(env):
    """Request ids of every label in the stream (checks run on Redis, not on the replicas)."""
    out = []
    entries = env.redis.call("XRANGE", env.prefix + "feedback", "-", "+")
    for _, fields in entries or []:
        d = dict(zip(fields[::2], fields[1::2]))
        out.append(d["id"])
    return out


def converged(env, names, want_seq=None):
    """All replicas synced, connected, at the stream's head and with one state digest."""
    head = int(env.redis.call("GET", env.prefix + "feedback:seq") or 0)
    if want_seq is not None and head < want_seq:
        return False
    states = [env.health(n) for n in names]
    if not all(s["connected"] and s["synced"] and s["last_seq"] == head and s["feedback_queued"] == 0
               for s in states):
        return False
    digests = {s["digest"] for s in states}
    return digests.pop() if len(digests) == 1 else False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--routenlp", required=True)
    ap.add_argument("--pipeline", required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    if shutil.which("redis-server") is None:
        print("SKIPPED: redis-server is not installed (scripts/install-deps.sh installs it); "
              "the Redis replica test needs it")
        return 77
    env = Env(args)
    try:
        return run(env)
    finally:
        env.cleanup()


def run(env):
    rng = random.Random(15)
    env.start_redis(first=True)
    env.start_upstream()
    names = ["r0", "r1", "r2"]
    # Built without hiredis: the config is refused with a clear message; that is a skip here.
    p, log = env.start_replica("probe", expect_listen=False)
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline and p.poll() is None and "listening on" not in open(log).read():
        time.sleep(0.05)
    if p.poll() is not None and "built without Redis support" in open(log).read():
        print("SKIPPED: this routenlp was built without Redis support (no libhiredis-dev)")
        return 77
    p.kill()
    p.wait()
    for n in names:
        env.start_replica(n)
    print("redis on port", env.redis_port, "replicas:", [env.url(n) for n in names], flush=True)

    # -- 1. one label, posted to another replica than the one that answered, moves every replica
    initial = wait_until("replicas synced", lambda: converged(env, names))
    status, out = chat(env.url("r0"), "q-first")
    if status != 200 or not out["routenlp"]["feedback"]:
        fail(f"chat on r0: {status} {out}")
    t0 = time.monotonic()
    status, out = feedback(env.url("r1"), "q-first", False)
    if status != 200 or out.get("recorded") is not True or out.get("duplicate") or not out.get("stream_id"):
        fail(f"feedback on r1 for r0's request: {status} {out}")
    first_id = out["stream_id"]
    after = wait_until("every replica applied the label", lambda: converged(env, names, want_seq=1))
    for n in names:
        if env.health(n)["last_id"] != first_id:
            fail(f"{n}: last_id {env.health(n)['last_id']} is not the label's stream_id {first_id}")
    print(f"1 label -> 3 replicas converged in {time.monotonic() - t0:.3f} s", flush=True)
    if after == initial:
        fail("the label did not change the replicas' state")
    for n in names:
        status, m = http("GET", env.url(n) + "/metrics")
        labels = sum(float(l.split()[-1]) for l in m.splitlines() if l.startswith("routenlp_online_labels_total{"))
        if labels < 1:
            fail(f"{n}: routenlp_online_labels_total is {labels} after a label posted to r1")
        if "routenlp_state_connected 1" not in m:
            fail(f"{n}: /metrics lacks routenlp_state_connected 1")
    # Every metric the Grafana dashboard queries is one a replica exports.
    dash = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "deploy", "grafana-dashboard.json")
    if os.path.exists(dash):
        wanted = set(re.findall(r"routenlp_[a-z_]+", open(dash).read()))
        exported = set(re.findall(r"^(routenlp_[a-z_]+)", m, re.M))
        missing = sorted(w for w in wanted if w not in exported)
        if missing:
            fail(f"the dashboard queries metrics no replica exports: {missing}")

    # -- 2. duplicates and unknown ids
    status, out = feedback(env.url("r2"), "q-first", True)
    if status != 200 or out.get("duplicate") is not True:
        fail(f"duplicate label: {status} {out}")
    status, out = feedback(env.url("r0"), "never-seen", True)
    if status != 404:
        fail(f"unknown id: expected 404, got {status} {out}")
    if stream_ids(env).count("q-first") != 1:
        fail("the duplicate entered the stream")
    if converged(env, names) != after:
        fail("a duplicate label changed the state")

    # -- 3. load on all replicas, kill -9 of r2 in the middle, restart it
    acked = []  # request ids whose label got a 200 (recorded or duplicate)
    lock = threading.Lock()
    stop = threading.Event()
    errors = []

    def worker(w):
        i = 0
        while not stop.is_set():
            i += 1
            rid = f"w{w}-{i}"
            alive = [n for n in names if n in env.replicas and env.replicas[n][0].poll() is None]
            src, dst = alive[i % len(alive)], alive[(i + w) % len(alive)]
            try:
                status, out = chat(env.url(src), rid)
                if status != 200:
                    continue
                status, out = feedback(env.url(dst), rid, rng.random() < 0.8)
            except (urllib.error.URLError, ConnectionError, OSError):
                continue  # the replica died under us: that label was never acknowledged
            if status == 200:
                with lock:
                    acked.append(rid)
            elif status not in (404, 503):
                errors.append(f"{dst}: {status} {out}")

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    wait_until("load: 40 acknowledged labels", lambda: len(acked) >= 40)
    env.replicas["r2"][0].send_signal(signal.SIGKILL)
    env.replicas["r2"][0].wait()
    killed_at = len(acked)
    wait_until("load continues on r0, r1", lambda: len(acked) >= killed_at + 40)
    env.start_replica("r2")
    wait_until("load reaches the restarted r2", lambda: len(acked) >= killed_at + 80)
    stop.set()
    for t in threads:
        t.join(timeout=TIMEOUT)
    if errors:
        fail("unexpected feedback replies: " + "; ".join(errors[:5]))
    in_stream = set(stream_ids(env))
    lost = [r for r in acked if r not in in_stream]
    if lost:
        fail(f"{len(lost)} acknowledged labels are missing from the stream: {lost[:5]}")
    digest = wait_until("replicas converge after kill -9 and restart", lambda: converged(env, names))
    # The thresholds in force moved off the calibrated ones, identically on every replica.
    deltas = []
    for n in names:
        status, m = http("GET", env.url(n) + "/metrics")
        deltas.append(sorted(l for l in m.splitlines()
                             if l.startswith(("routenlp_online_delta{", "routenlp_online_calibrated_delta{"))))
    if deltas[1] != deltas[0] or deltas[2] != deltas[0]:
        fail("replicas serve different thresholds after converging")
    live = {l.split()[0][len("routenlp_online_delta"):]: l.split()[1] for l in deltas[0] if l.startswith("routenlp_online_delta{")}
    base = {l.split()[0][len("routenlp_online_calibrated_delta"):]: l.split()[1] for l in deltas[0]
            if l.startswith("routenlp_online_calibrated_delta{")}
    if not live or live == base:
        fail(f"{len(acked)} labels moved no threshold: {live} vs calibrated {base}")
    print("thresholds in force (all replicas):", live, "calibrated:", base, flush=True)
    cp = env.redis.call("HGET", env.prefix + "checkpoint", "id")
    if not cp:
        fail("no checkpoint was written")
    r2 = env.health("r2")
    head = int(env.redis.call("GET", env.prefix + "feedback:seq"))
    if r2["events_applied"] >= head:
        fail(f"restarted r2 replayed the whole stream ({r2['events_applied']} of {head}) instead of resuming from a checkpoint")
    print(f"load: {len(acked)} acknowledged labels, none lost; r2 resumed from a checkpoint and applied "
          f"{r2['events_applied']} of {head}", flush=True)

    # -- 4. Redis lost at run time
    env.stop_redis()
    wait_until("replicas notice Redis is gone", lambda: not any(env.health(n)["connected"] for n in names))
    status, out = chat(env.url("r0"), "q-offline")
    if status != 200:
        fail(f"serving without Redis: {status} {out}")
    status, out = feedback(env.url("r0"), "q-offline", False)
    if status != 202 or out.get("queued") is not True:
        fail(f"feedback without Redis, note on this replica: expected 202 queued, got {status} {out}")
    status, out = feedback(env.url("r1"), "q-offline", False)
    if status != 503:
        fail(f"feedback without Redis, note elsewhere: expected 503, got {status} {out}")
    if env.health("r0")["feedback_queued"] != 1:
        fail("r0 does not report the queued label")
    status, m = http("GET", env.url("r1") + "/metrics")
    if 'routenlp_state_feedback_total{result="unavailable"} 1' not in m:
        fail("r1 does not count the 503")
    env.start_redis()  # same port, same dir: the AOF brings the stream and checkpoint back
    final = wait_until("replicas reconnect, flush and converge", lambda: converged(env, names))
    ids = stream_ids(env)
    if "q-offline" not in ids or any(r not in set(ids) for r in acked):
        fail("after the Redis restart the stream lacks the queued label or an acknowledged one")
    if final == digest:
        fail("the queued label did not reach the replicas")
    status, m = http("GET", env.url("r0") + "/metrics")
    if "routenlp_state_feedback_dropped_total 0" not in m:
        fail("r0 dropped buffered feedback")

    # -- 5. Redis down at start: a clear error by default, or degraded on request
    dead = free_port()
    bad_url = f"redis://:{PASSWORD}@127.0.0.1:{dead}/0"
    p, log = env.start_replica("down", cfg=env.config("down", url=bad_url), expect_listen=False)
    try:
        p.wait(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        fail("a replica with Redis down did not exit")
    text = open(log).read()
    if p.returncode != 1 or f"cannot reach Redis at redis://:***@127.0.0.1:{dead}/0" not in text:
        fail(f"Redis down at start: expected exit 1 naming the redacted URL, got {p.returncode}: {text[-1000:]}")
    env.start_replica("degraded", cfg=env.config("degraded", url=bad_url, extra="  on_start_failure: degraded\n"))
    s = env.health("degraded")
    if s["connected"]:
        fail("degraded replica claims a connection")
    status, out = chat(env.url("degraded"), "q-degraded")
    if status != 200:
        fail(f"degraded replica does not serve: {status} {out}")

    # -- 6. graceful stop, and the password appears nowhere
    for n in names + ["degraded"]:
        p = env.replicas[n][0]
        if p.poll() is not None:
            fail(f"replica {n} died (exit {p.returncode})")
        p.send_signal(signal.SIGTERM)
        try:
            if p.wait(timeout=TIMEOUT) != 0:
                fail(f"replica {n} exited with {p.returncode} on SIGTERM")
        except subprocess.TimeoutExpired:
            fail(f"replica {n} did not stop on SIGTERM")
    for log in env.logs:
        if os.path.exists(log) and PASSWORD in open(log, errors="replace").read() and not log.endswith("redis.log"):
            fail(f"the Redis password appears in {log}")
    print("redis_replicas: ok", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
