#!/usr/bin/env python3
"""A stand-in for your model servers in the walkthrough: an OpenAI-compatible
POST /v1/chat/completions that answers every model with a canned reply, token log-probabilities
(the tier's confidence) and usage. Confidence depends on the question, so the cascade accepts
some cheap answers and escalates others. Usage: fake_upstream.py PORT_FILE (binds 127.0.0.1:0,
writes the port there, serves until killed)."""
import hashlib
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        if not self.path.endswith("/chat/completions"):
            self.send_error(404)
            return
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        question = body["messages"][-1]["content"]
        model = body.get("model", "")
        h = int(hashlib.sha256((model + question).encode()).hexdigest()[:8], 16)
        confidence = 0.35 + 0.6 * (h % 1000) / 1000.0  # in [0.35, 0.95)
        logprob = -abs(__import__("math").log(confidence))
        reply = {
            "id": "fake-1",
            "object": "chat.completion",
            "model": model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": f"[{model}] answer to: {question[:40]}"},
                "logprobs": {"content": [{"token": "answer", "logprob": logprob}]},
                "finish_reason": "stop",
            }],
            "usage": {"prompt_tokens": len(question) // 4 + 1, "completion_tokens": 12},
        }
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(sys.argv[1], "w") as f:
        f.write(str(server.server_address[1]))
    server.serve_forever()


if __name__ == "__main__":
    main()
