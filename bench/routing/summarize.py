#!/usr/bin/env python3
"""Summarise `routenlp eval` reports against issue #12's targets (docs/results.md).

Usage: bench/routing/summarize.py REPORT.json [REPORT.json ...]
Reports of one dataset may be split over several files (e.g. baselines and routenlp systems
run separately with the same seeds); systems are merged by name, the first file wins.
Per dataset it prints each routenlp system's mean quality and cost ratio, its seeds at or
above target - .01 (the issue's ">= 4 of 5 seeds >= 0.96" at target .97), the cheapest
baseline that meets the target the same way (mean >= target - .005 and >= 80% of the seeds
>= target - .01), and the ratio of the two costs.
"""
import json
import sys

BASELINES = ("random", "task-prior", "routellm", "frugalgpt", "automix")


def meets(s, t):
    """Issue #12's rule: mean quality ratio >= t - .005 and >= 80% of seeds >= t - .01."""
    seeds = s.get("seed_quality_ratio", [])
    ok = sum(q >= t - 0.01 for q in seeds)
    return s["quality_ratio"] >= t - 0.005 and ok >= 0.8 * len(seeds)


def main(paths):
    datasets = {}
    for p in paths:
        with open(p) as f:
            r = json.load(f)
        d = datasets.setdefault(r["dataset"], {"target": r["quality_target"], "systems": {}})
        for s in r["systems"]:
            if s.get("status", "ok") == "ok":
                d["systems"].setdefault(s["system"], s)
    for name, d in datasets.items():
        t = d["target"]
        systems = d["systems"]
        base = [s for n, s in systems.items()
                if (n in BASELINES or n.startswith("always:")) and meets(s, t)]
        cheapest = min(base, key=lambda s: s["cost_ratio"]) if base else None
        print(f"== {name} (target {t:.3f})")
        if cheapest:
            print(f"   cheapest baseline meeting it: {cheapest['system']} "
                  f"{cheapest['quality_ratio']:.3f} / {cheapest['cost_ratio']:.3f}")
        else:
            print("   no baseline meets it")
        for n in ("routenlp-router", "routenlp-cascade", "routenlp"):
            s = systems.get(n)
            if not s:
                continue
            seeds = s.get("seed_quality_ratio", [])
            ok = sum(q >= t - 0.01 for q in seeds)
            rel = f"{s['cost_ratio'] / cheapest['cost_ratio']:.2f}x" if cheapest else "-"
            met = "meets" if meets(s, t) else "MISSES"
            print(f"   {n:17s} {s['quality_ratio']:.3f} ± {s['quality_ratio_std']:.3f} / "
                  f"{s['cost_ratio']:.3f} ± {s['cost_ratio_std']:.3f}  seeds >= {t - 0.01:.2f}: "
                  f"{ok}/{len(seeds)}  {met}  cost vs cheapest baseline {rel}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
