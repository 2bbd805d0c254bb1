#!/usr/bin/env python3
"""Writes a synthetic 3-tier routing dataset with recorded confidences and a drifting task
(for `routenlp eval --stream`; docs/results.md "Stream replay").

Difficulty z ~ U(0,1); tier k's answer is acceptable iff z < (0.5, 0.75, 0.95)[k]; its
confidence is 1 - (z - cut_k + 0.5) + N(0, 0.08), clipped to [0,1]. Task "beta"'s small-tier
confidence is inflated by 0.25 (overconfident): hold it out and it arrives as drift.

Usage: tools/eval/synthetic_drift.py OUT_DIR   -> OUT_DIR/synth_drift.jsonl, synth_drift.yaml
"""
import json
import os
import random
import sys

out = sys.argv[1] if len(sys.argv) > 1 else "."
os.makedirs(out, exist_ok=True)
random.seed(13)
tiers, cut, cost = ["small", "mid", "big"], [0.5, 0.75, 0.95], [0.001, 0.005, 0.025]
with open(os.path.join(out, "synth_drift.jsonl"), "w") as f:
    for i in range(20000):
        task = "alpha/x" if i % 2 else "beta"
        z, r = random.random(), random.random()
        split = "train" if r < 0.6 else "calib" if r < 0.8 else "test"
        outs = {}
        for k, t in enumerate(tiers):
            conf = min(1, max(0, 1 - (z - cut[k] + 0.5) + random.gauss(0, 0.08)))
            if task == "beta" and t == "small":
                conf = min(1, conf + 0.25)
            outs[t] = {"quality": 1.0 if z < cut[k] else 0.0, "cost": cost[k],
                       "latency_ms": 100 * (k + 1) * (1 + 0.2 * random.random()),
                       "confidence": round(conf, 4)}
        f.write(json.dumps({"id": f"q{i}", "task": task, "query": f"level{int(z * 10)} q{i}",
                            "split": split, "outcomes": outs}) + "\n")
with open(os.path.join(out, "synth_drift.yaml"), "w") as f:
    f.write("tiers:\n"
            "  - {name: small, price_per_1m_input: 1, price_per_1m_output: 1}\n"
            "  - {name: mid, price_per_1m_input: 5, price_per_1m_output: 5}\n"
            "  - {name: big, price_per_1m_input: 25, price_per_1m_output: 25}\n"
            "tasks:\n  default: {quality_threshold: 0.5}\n"
            "sla_ms: 1000\nalpha: 0.1\n")
print(os.path.join(out, "synth_drift.jsonl"))
