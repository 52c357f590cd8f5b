#!/usr/bin/env python3
"""scripts/bench.d/goals.py — issue 13's goals against one `scripts/bench --all` run.

Reads what the run's parts wrote (the datasets' results JSON from report.py, and scale.json and
latency.json in the run directory) and prints one table: each goal, kafka-mirrord's figure, met or
not, and Apache MM2's same figure beside it. Medians over the runs, as the parts' own tables.
"""

import argparse
import os
import statistics
import sys

from report import load_json  # bench.d/report.py, beside this file

IDLE_CORE = 0.01
RSS_SMALL_MIB = 64
RSS_SCALE_MIB = 96
STEADY_OF_CEILING = 0.95
TOTAL_OF_CEILING = 0.85
STARTUP_S = 0.5
GROUP_ROUND_S = 5.0
LATENCY_P99_MS = 50


def median(cells, key):
    values = [c[key] for c in cells or [] if isinstance(c.get(key), (int, float))]
    return statistics.median(values) if values else None


def show(value, spec):
    return "-" if value is None else spec.format(value)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", required=True, help="the datasets' results JSON (report.py --out)")
    ap.add_argument("--run-dir", required=True)
    a = ap.parse_args()

    rows = []  # (goal, ours, verdict, mm2)

    def goal(text, ours, theirs, spec, met, theirs_text=None):
        """met: the goal's test, or None for a figure shown beside the goals."""
        verdict = "-" if ours is None or met is None else ("met" if met(ours) else "NOT MET")
        rows.append((text, show(ours, spec), verdict, theirs_text or show(theirs, spec)))

    def goal_of_medians(text, ours, theirs, key, spec, met, theirs_text=None):
        """A goal on the median of `key` over each replicator's runs of a part."""
        goal(text, median(ours, key), median(theirs, key), spec, met, theirs_text)

    correct = {}  # what the run checked arrived, per part: "OK" or what was missing
    doc = load_json(a.datasets) or {}
    for ds in doc.get("datasets", []):
        label = f"{ds['value_size']} B x {ds['records']:,}, {ds['partitions']} partitions"
        res, ratios = ds.get("results", {}), ds.get("ratios", {})
        ours, mm2 = res.get("mirrord") or {}, res.get("mm2") or {}
        ours_raw, mm2_raw = ratios.get("mirrord/raw") or {}, ratios.get("mm2/raw") or {}
        goal(f"steady throughput / raw pipe >= {STEADY_OF_CEILING} ({label})",
             ours_raw.get("throughput_steady"), mm2_raw.get("throughput_steady"), "{:.2f}",
             lambda v: v >= STEADY_OF_CEILING)
        goal(f"total throughput / raw pipe >= {TOTAL_OF_CEILING} ({label})",
             ours_raw.get("throughput_total"), mm2_raw.get("throughput_total"), "{:.2f}",
             lambda v: v >= TOTAL_OF_CEILING)
        goal(f"start-up to the first record <= {STARTUP_S} s ({label})",
             ours.get("startup_s"), mm2.get("startup_s"), "{:.2f}", lambda v: v <= STARTUP_S)
        goal(f"peak RSS <= {RSS_SMALL_MIB} MiB ({label})",
             ours.get("peak_rss_mib"), mm2.get("peak_rss_mib"), "{:.1f}", lambda v: v <= RSS_SMALL_MIB)
        correct[f"records ({label})"] = ours.get("complete") or "-"

    scale = load_json(os.path.join(a.run_dir, "scale.json")) or {}
    ours, mm2 = scale.get("mirrord"), scale.get("mm2")
    if ours or mm2:
        size = next(iter(ours or mm2))
        label = f"{size['partitions']:,} partitions, {size['groups']:,} groups"
        goal_of_medians(f"idle CPU <= {IDLE_CORE} of a core, 30 s after catch-up ({label})",
                        ours, mm2, "idle_core", "{:.3f}", lambda v: v <= IDLE_CORE)
        goal_of_medians(f"peak RSS <= {RSS_SCALE_MIB} MiB ({label})",
                        ours, mm2, "peak_rss_mib", "{:.1f}", lambda v: v <= RSS_SCALE_MIB)
        for name in ("emit", "sync"):
            goal_of_medians(f"{name} round over every group <= {GROUP_ROUND_S:g} s ({label})",
                            ours, mm2, f"{name}_round_s", "{:.2f}", lambda v: v <= GROUP_ROUND_S)
        # A replicator that never got every group there: how many it did (the part's --timeout).
        partial = next((f"{c.get('groups_synced')}/{c.get('groups')} groups" for c in mm2 or []
                        if c.get("groups_s") is None), None)
        goal_of_medians(f"every group's offsets on the target, s after start ({label})",
                        ours, mm2, "groups_s", "{:.1f}", None, partial)
        missing = [f"{c.get('groups_synced')}/{c.get('groups')} groups" for c in ours or []
                   if c.get("records_s") is None or c.get("groups_synced") != c.get("groups")]
        correct[f"records and groups ({label})"] = "; ".join(missing) or "OK"

    latency = load_json(os.path.join(a.run_dir, "latency.json")) or {}
    ours, mm2 = latency.get("mirrord"), latency.get("mm2")
    if ours or mm2:
        first = next(iter(ours or mm2))
        label = f"{first['rate']:,} records/s of {first['size']} B"
        goal_of_medians(f"latency p99 <= {LATENCY_P99_MS} ms ({label})",
                        ours, mm2, "p99_ms", "{:.0f}", lambda v: v <= LATENCY_P99_MS)
        goal_of_medians(f"latency p50, ms ({label})", ours, mm2, "p50_ms", "{:.0f}", None)
        lost = [f"{c.get('lost')} lost" for c in ours or [] if c.get("lost") != 0]
        correct[f"records under the stream ({label})"] = "; ".join(lost) or "OK"

    if not rows:
        print("goals: no part of the run produced figures")
        return 1
    width = max(len(r[0]) for r in rows)
    print("issue 13's goals (kafka-mirrord; Apache MM2's same figure beside it; medians over the runs)")
    print(f"{'goal':<{width}}  {'kafka-mirrord':>13}  {'verdict':>7}  {'Apache MM2':>10}")
    for text, ours, verdict, theirs in rows:
        print(f"{text:<{width}}  {ours:>13}  {verdict:>7}  {theirs:>10}")
    print("correctness, kafka-mirrord, every run: " + "; ".join(f"{what}: {state}" for what, state in correct.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
