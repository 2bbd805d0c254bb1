#!/usr/bin/env python3
"""Helpers for bench/serve_faults.sh (fault-injection check of `routenlp serve`).

  serve_faults.py upstream --port P
      A fake OpenAI-compatible upstream that misbehaves on purpose. Each request draws one
      behaviour: a good answer, 401 echoing the caller's Authorization header, 500, 429 with
      Retry-After, truncated JSON, garbage bytes, a hang (longer than the tier's timeout) or a
      20 MiB body. The draw is seeded, so runs are comparable.

  serve_faults.py load --port P --seconds S --clients N --slow M --key KEY --out FILE.json
      N closed-loop clients (each from its own loopback address 127.0.0.x) posting /route and
      /v1/chat/completions; M slowloris connections (one header line every 300 ms, reconnecting
      when cut); a /health probe every 250 ms. Writes counts by status, latencies, unanswered
      requests and any response that contains KEY.
"""
import argparse
import http.client
import json
import random
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BEHAVIOURS = [("ok", 40), ("auth401", 10), ("err500", 10), ("rate429", 10), ("truncated", 8),
              ("garbage", 8), ("hang", 6), ("huge", 8)]


def upstream(args):
    rng = random.Random(args.seed)
    lock = threading.Lock()
    names = [b for b, w in BEHAVIOURS for _ in range(w)]
    counts = {}

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def send(self, code, body, ctype="application/json", extra=None):
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            req = json.loads(self.rfile.read(n) or b"{}")
            with lock:
                b = rng.choice(names)
                counts[b] = counts.get(b, 0) + 1
            auth = self.headers.get("Authorization", "")
            question = (req.get("messages") or [{}])[-1].get("content", "")
            if b == "ok":
                body = {"choices": [{"message": {"role": "assistant", "content": "answer to: " + question},
                                     "finish_reason": "stop",
                                     "logprobs": {"content": [{"logprob": -0.05}, {"logprob": -0.1}]}}],
                        "usage": {"prompt_tokens": 12, "completion_tokens": 3}}
                self.send(200, json.dumps(body).encode())
            elif b == "auth401":
                # Like some providers: the rejected key is quoted back in the error message.
                body = {"error": {"message": "Incorrect API key provided: " + auth.replace("Bearer ", "")
                                  + " (header was '" + auth + "')", "type": "invalid_request_error"}}
                self.send(401, json.dumps(body).encode())
            elif b == "err500":
                self.send(500, b'{"error": {"message": "upstream exploded"}}')
            elif b == "rate429":
                self.send(429, b'{"error": {"message": "slow down"}}', extra={"Retry-After": "1"})
            elif b == "truncated":
                self.send(200, b'{"choices": [{"message": {"content": "cut he')
            elif b == "garbage":
                self.send(200, bytes(rng.randrange(256) for _ in range(512)), ctype="application/octet-stream")
            elif b == "hang":
                time.sleep(args.hang_s)
                self.send(200, b'{"choices": []}')
            else:  # huge: 20 MiB of answer text
                pad = b"x" * (20 << 20)
                self.send(200, b'{"choices": [{"message": {"content": "' + pad + b'"}}]}')

    import signal
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))  # so `finally` prints the counts
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), H)
    srv.daemon_threads = True
    try:
        srv.serve_forever()
    finally:
        print(json.dumps(counts), file=sys.stderr, flush=True)


def load(args):
    stop = time.time() + args.seconds
    lock = threading.Lock()
    res = {"status": {}, "unanswered": 0, "leaks": 0, "latency": [], "health_latency": [],
           "health_fail": 0, "slow_cuts": 0}
    key = args.key.encode()

    def note(k, v=1):
        with lock:
            res[k] = res[k] + v

    def client(i):
        src = "127.0.0.%d" % (10 + i)
        rng = random.Random(i)
        conn = None
        while time.time() < stop:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=30, source_address=(src, 0))
            if rng.random() < 0.3:
                path, body = "/route", {"query": "What is %d * %d?" % (i, rng.randrange(100)), "task": "gsm8k"}
            else:
                path, body = "/v1/chat/completions", {
                    "task": "gsm8k", "messages": [{"role": "user", "content": "q%d-%d" % (i, rng.randrange(1000))}]}
            t0 = time.time()
            try:
                conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
                r = conn.getresponse()
                data = r.read()
                code = r.status
                json.loads(data)  # every answer, error or not, is JSON
            except Exception as e:  # no answer, or not JSON
                note("unanswered")
                conn.close()
                conn = None
                continue
            with lock:
                res["latency"].append(time.time() - t0)
                res["status"][str(code)] = res["status"].get(str(code), 0) + 1
                if key in data:
                    res["leaks"] += 1
        if conn:
            conn.close()

    def slowloris(i):
        src = "127.0.0.%d" % (100 + i % 4)  # several slow connections per address
        while time.time() < stop:
            try:
                s = socket.create_connection(("127.0.0.1", args.port), timeout=5, source_address=(src, 0))
                s.sendall(b"POST /route HTTP/1.1\r\nHost: x\r\n")
                n = 0
                while time.time() < stop:
                    time.sleep(0.3)
                    s.sendall(b"X-Slow-%d: 1\r\n" % n)
                    n += 1
                s.close()
            except OSError:
                note("slow_cuts")
                time.sleep(0.1)

    def health():
        src = "127.0.0.2"
        while time.time() < stop:
            t0 = time.time()
            try:
                c = http.client.HTTPConnection("127.0.0.1", args.port, timeout=10, source_address=(src, 0))
                c.request("GET", "/health")
                ok = c.getresponse().status == 200
                c.close()
            except Exception:
                ok = False
            with lock:
                res["health_latency"].append(time.time() - t0)
                if not ok:
                    res["health_fail"] += 1
            time.sleep(0.25)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    threads += [threading.Thread(target=slowloris, args=(i,)) for i in range(args.slow)]
    threads.append(threading.Thread(target=health))
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    def pct(xs, p):
        xs = sorted(xs)
        return round(xs[min(len(xs) - 1, int(p * len(xs)))], 3) if xs else None

    out = {"requests": len(res["latency"]) + res["unanswered"], "answered": len(res["latency"]),
           "unanswered": res["unanswered"], "status": res["status"], "key_in_responses": res["leaks"],
           "latency_s": {"p50": pct(res["latency"], 0.5), "p99": pct(res["latency"], 0.99),
                         "max": pct(res["latency"], 1.0)},
           "health": {"probes": len(res["health_latency"]), "failed": res["health_fail"],
                      "p50_s": pct(res["health_latency"], 0.5), "max_s": pct(res["health_latency"], 1.0)},
           "slowloris_connections_cut": res["slow_cuts"]}
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
    print(json.dumps(out, indent=1))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("upstream")
    u.add_argument("--port", type=int, required=True)
    u.add_argument("--seed", type=int, default=7)
    u.add_argument("--hang-s", type=float, default=20)
    l = sub.add_parser("load")
    l.add_argument("--port", type=int, required=True)
    l.add_argument("--seconds", type=float, default=30)
    l.add_argument("--clients", type=int, default=6)
    l.add_argument("--slow", type=int, default=16)
    l.add_argument("--key", required=True)
    l.add_argument("--out", required=True)
    a = ap.parse_args()
    upstream(a) if a.cmd == "upstream" else load(a)


if __name__ == "__main__":
    main()
