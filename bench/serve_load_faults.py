#!/usr/bin/env python3
"""Helpers for bench/serve_load_faults.sh (load with upstream faults, issue #14 item 6).

  serve_load_faults.py upstream --port P [--seed S] [--hang-s H]
      A fake OpenAI-compatible upstream. Requests for model `cheap` draw (seeded) a fault:
      HTTP 500 (10 %), a hang of H seconds, longer than the tier's timeout (5 %), a 200 whose
      body is not JSON (1 %); otherwise, and always for any other model, a good answer with
      chat logprobs (confidence 0.99) and usage. GET /counts returns the draws so far as JSON.

  serve_load_faults.py load --port P --seconds S --clients N --stream-share F --out FILE.json
      N closed-loop keep-alive clients (each from its own 127.0.0.x) posting
      /v1/chat/completions for S seconds, a share F of them with "stream": true. Records every
      request's outcome (an answer, a clean JSON error, or lost: no reply / unparsable reply /
      stream without [DONE]), latency, time to first content chunk of streamed requests, and
      how many answers show the cheap tier failed (routenlp.trace[0].decision == "error").
"""
import argparse
import http.client
import json
import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAULTS = [("err500", 0.10), ("timeout", 0.05), ("garbage", 0.01)]


def upstream(args):
    rng = random.Random(args.seed)
    lock = threading.Lock()
    counts = {}

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def send(self, code, body, ctype="application/json"):
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            with lock:
                self.send(200, json.dumps(counts).encode())

        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            req = json.loads(self.rfile.read(n) or b"{}")
            model = req.get("model", "")
            b = "ok"
            with lock:
                if model == "cheap":
                    x, acc = rng.random(), 0.0
                    for name, share in FAULTS:
                        acc += share
                        if x < acc:
                            b = name
                            break
                k = model + ":" + b
                counts[k] = counts.get(k, 0) + 1
            question = (req.get("messages") or [{}])[-1].get("content", "")
            if b == "err500":
                self.send(500, b'{"error": {"message": "injected 500"}}')
            elif b == "garbage":
                self.send(200, b'{"choices": [ garbage <<<')
            elif b == "timeout":
                time.sleep(args.hang_s)
                try:
                    self.send(200, b'{"choices": []}')
                except OSError:
                    pass
            else:
                text = model + " says: " + question + " " + "lorem ipsum " * 20
                body = {"choices": [{"message": {"role": "assistant", "content": text},
                                     "finish_reason": "stop",
                                     "logprobs": {"content": [{"logprob": -0.01}] * 8}}],
                        "usage": {"prompt_tokens": 12, "completion_tokens": 48}}
                self.send(200, json.dumps(body).encode())

    srv = ThreadingHTTPServer(("127.0.0.1", args.port), H)
    srv.daemon_threads = True
    srv.request_queue_size = 256
    srv.serve_forever()


def load(args):
    stop = time.time() + args.seconds
    lock = threading.Lock()
    res = {"status": {}, "lost": [], "latency": [], "ttft": [], "stream_latency": [],
           "cheap_errors": {}, "answered_by": {}, "streamed": 0}

    def record(kind, **kw):
        with lock:
            if kind == "lost":
                res["lost"].append(kw["why"])
                return
            res["status"][str(kw["code"])] = res["status"].get(str(kw["code"]), 0) + 1
            res["latency"].append(kw["lat"])
            if kw.get("ttft") is not None:
                res["ttft"].append(kw["ttft"])
                res["stream_latency"].append(kw["lat"])
                res["streamed"] += 1
            rn = kw.get("rn")
            if rn:
                tr = rn.get("trace") or []
                res["answered_by"][rn.get("tier_name", "?")] = res["answered_by"].get(rn.get("tier_name", "?"), 0) + 1
                if tr and tr[0].get("decision") == "error":
                    e = tr[0].get("error", "")
                    kind_ = ("http500" if "HTTP 500" in e else "timeout" if "timed out" in e
                             else "malformed" if "malformed" in e else "other")
                    res["cheap_errors"][kind_] = res["cheap_errors"].get(kind_, 0) + 1

    def client(i):
        src = "127.0.0.%d" % (10 + i)
        rng = random.Random(100 + i)
        conn = None
        n = 0
        while time.time() < stop:
            n += 1
            stream = rng.random() < args.stream_share
            body = {"model": "threshold", "messages": [{"role": "user", "content": "c%d-q%d" % (i, n)}]}
            if stream:
                body["stream"] = True
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=30, source_address=(src, 0))
            t0 = time.time()
            try:
                conn.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
                r = conn.getresponse()
                ctype = r.getheader("Content-Type", "")
                if stream and r.status == 200 and ctype.startswith("text/event-stream"):
                    ttft, done, rn, text = None, False, None, ""
                    while True:
                        line = r.readline()
                        if not line:
                            break
                        line = line.strip()
                        if not line.startswith(b"data:"):
                            continue
                        payload = line[5:].strip()
                        if payload == b"[DONE]":
                            done = True
                            continue
                        ev = json.loads(payload)
                        for c in ev.get("choices", []):
                            if c.get("delta", {}).get("content"):
                                if ttft is None:
                                    ttft = time.time() - t0
                                text += c["delta"]["content"]
                        if "routenlp" in ev:
                            rn = ev["routenlp"]
                    r.read()  # past the last chunk: the response is complete, the connection reusable
                    if not done or ttft is None or not text:
                        raise ValueError("stream ended without [DONE] or without content")
                    record("ok", code=200, lat=time.time() - t0, ttft=ttft, rn=rn)
                else:
                    data = r.read()
                    j = json.loads(data)  # answers and errors alike are JSON
                    if r.status == 200 and not j["choices"][0]["message"]["content"]:
                        raise ValueError("empty answer")
                    if r.status != 200 and "error" not in j:
                        raise ValueError("error without an OpenAI error object")
                    record("ok", code=r.status, lat=time.time() - t0, rn=j.get("routenlp"))
            except Exception as e:  # lost: no reply, unparsable reply, or a broken stream
                record("lost", why="%s: %s" % (type(e).__name__, e))
                conn.close()
                conn = None
        if conn:
            conn.close()

    t_start = time.time()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.time() - t_start

    def pct(xs, p):
        xs = sorted(xs)
        return round(xs[min(len(xs) - 1, int(p * len(xs)))], 4) if xs else None

    answered = len(res["latency"])
    out = {"seconds": round(elapsed, 1), "clients": args.clients,
           "requests": answered + len(res["lost"]), "replied": answered, "lost": len(res["lost"]),
           "lost_examples": res["lost"][:5], "status": res["status"],
           "req_per_s": round(answered / elapsed, 1),
           "latency_s": {"p50": pct(res["latency"], 0.5), "p99": pct(res["latency"], 0.99),
                         "max": pct(res["latency"], 1.0)},
           "streamed": res["streamed"],
           "stream_ttft_s": {"p50": pct(res["ttft"], 0.5), "p99": pct(res["ttft"], 0.99),
                             "max": pct(res["ttft"], 1.0)},
           "stream_total_s": {"p50": pct(res["stream_latency"], 0.5), "p99": pct(res["stream_latency"], 0.99)},
           "answered_by": res["answered_by"], "cheap_tier_errors_seen": res["cheap_errors"]}
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
    print(json.dumps(out, indent=1))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("upstream")
    u.add_argument("--port", type=int, required=True)
    u.add_argument("--seed", type=int, default=14)
    u.add_argument("--hang-s", type=float, default=3.0)
    l = sub.add_parser("load")
    l.add_argument("--port", type=int, required=True)
    l.add_argument("--seconds", type=float, default=30)
    l.add_argument("--clients", type=int, default=8)
    l.add_argument("--stream-share", type=float, default=0.5)
    l.add_argument("--out", required=True)
    a = ap.parse_args()
    upstream(a) if a.cmd == "upstream" else load(a)


if __name__ == "__main__":
    main()
