#!/usr/bin/env python3
"""routenlp from Python: a two-tier conformal cascade whose tiers are Python functions.

  pip install ./python        # once (or run from the source tree: the import falls back to it)
  ROUTENLP_LIBRARY=build/lib/libroutenlp.so python3 examples/python/example.py

With a pipeline artifact (`routenlp fit ... --out DIR`) as the first argument it also routes
a query with the pipeline and runs its cascade over the same Python tiers.
"""
import os
import random
import sys

try:
    import routenlp as rn
except ImportError:  # not installed: use the package in the source tree
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                    "python"))
    import routenlp as rn

print("routenlp", rn.version())

# Calibrate the cheap tier's acceptance threshold on synthetic labelled rows: its answer is
# bad with probability u^2, where u = 1 - confidence.
rng = random.Random(0)
tasks, u, bad = [], [], []
for _ in range(1000):
    x = rng.random()
    tasks.append("qa")
    u.append([x, 0.0])
    bad.append([int(rng.random() < x * x), 0])
cal = rn.Calibrator(alpha=0.1)
cal.calibrate(["small", "large"], tasks, u, bad)
print(f"accept the small tier iff u <= {cal.threshold(0, 'qa'):.3f}")


def small(req: rn.TierRequest) -> rn.TierReply:
    confidence = 0.9 if len(req.query) < 20 else 0.2  # stand-in for a real model's confidence
    return rn.TierReply(f"[small] answer to {req.query!r}", confidence=confidence, cost=0.0002)


def large(req: rn.TierRequest) -> rn.TierReply:
    return rn.TierReply(f"[large] answer to {req.query!r}", confidence=0.95, cost=0.004)


with rn.Cascade([rn.Tier("small", small), rn.Tier("large", large)], cal) as cascade:
    for q in ["2 + 2?", "Summarise the attached forty-page contract, clause by clause."]:
        r = cascade.run(q, "qa")
        path = " -> ".join(f"{t.tier_name}:{t.decision}" for t in r.trace)
        print(f"{q[:30]!r:34} tier={r.tier} cost=${r.cost:.4f} path={path}")
        print("   ", r.answer)

if len(sys.argv) > 1:
    pipeline = rn.Pipeline.load(sys.argv[1])
    query, task = "2 + 2?", "qa"
    route = pipeline.route(query, task)
    print(f"pipeline tiers {pipeline.tiers}: {query!r} starts at tier {route.first_tier} "
          f"(router p {route.p}, thresholds column {route.column!r})")
    if len(pipeline.tiers) == 2:  # the example's two Python tiers stand in for its tiers
        with pipeline.engine([small, large]) as engine:
            r = engine.run(query, task)
            print(f"pipeline cascade: tier={r.tier} cost=${r.cost:.4f} answer={r.answer!r}")
