#!/usr/bin/env python3
"""Markdown table of the seed systems' eval reports (docs/results.md, "Seed systems").

Usage: bench/routing/summarize_seeds.py REPORT.json [REPORT.json ...]
Reports of the same dataset are merged: a later report's entry for a system replaces an
earlier one (a re-run of some systems).
Per system: quality and cost ratio (seed mean +- sd), seeds meeting the target, APGR (two
tiers), and, from the seed-0 sweep, the cost ratio and strong-call share at which the
frontier first reaches quality ratio 0.95 (RouteLLM's "95% of GPT-4" operating point; linear
interpolation between sweep points, in cost order)."""
import json
import sys


def at_quality(sweep, q, key):
    pts = sorted((p["cost_ratio"], p["quality_ratio"], p.get("strong_share", 0.0)) for p in sweep)
    prev = None
    for c, qq, s in pts:
        if qq >= q:
            if prev is None or prev[1] >= q:
                return {"cost": c, "share": s}[key]
            f = (q - prev[1]) / (qq - prev[1])
            a, b = (prev[0], c) if key == "cost" else (prev[2], s)
            return a + f * (b - a)
        prev = (c, qq, s)
    return None


def fmt(x, nd=3):
    return "–" if x is None else f"{x:.{nd}f}"


datasets = {}
for path in sys.argv[1:]:
    j = json.load(open(path))
    d = datasets.setdefault(j["dataset"], {"head": j, "systems": {}})
    for s in j["systems"]:
        d["systems"][s["system"]] = s

for name, d in datasets.items():
    j = d["head"]
    two = len(j["tiers"]) == 2
    print(f"\n{j['dataset']} (n={j['n']} test, {len(j['tiers'])} tiers, reference {j['reference_tier']}, "
          f"target {j['quality_target']:.2f}, seeds {len(j['seeds'])})\n")
    print("| system | quality ratio | cost ratio | met | APGR | cost @ q .95 | strong share @ q .95 |")
    print("|---|---|---|---|---|---|---|")
    for s in d["systems"].values():
        if s["status"] != "ok":
            print(f"| {s['system']} | {s['status'].split(' (')[0]} | | | | | |")
            continue
        sw = s.get("sweep") or []
        c95 = at_quality(sw, 0.95, "cost") if sw else None
        s95 = at_quality(sw, 0.95, "share") if sw and two else None
        met = f"{'yes' if s['met_target'] else 'no'} {s['seeds_met']}/{len(s['seed_quality_ratio'])}"
        print(f"| {s['system']} | {s['quality_ratio']:.3f} ± {s['quality_ratio_std']:.3f} | "
              f"{s['cost_ratio']:.3f} ± {s['cost_ratio_std']:.3f} | {met} | "
              f"{fmt(s.get('apgr'))} | {fmt(c95)} | {fmt(s95)} |")
