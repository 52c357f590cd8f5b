#!/usr/bin/env python3
"""scripts/bench's report: reads the per-cell files of one run (RUN_DIR/<dataset>-<replicator>/:
meta.json, load.json, watch.json, verify.json, and raw_pipe's own summary in stdout.log), prints one
table per dataset with the ratios issue 3 asks for, and writes everything as one JSON document.

Definitions (MB = 10^6 bytes, GB = 10^9 bytes; bytes = key + value bytes of the records):
  total   process start -> last record on the target (includes start-up, e.g. MM2's Connect herders)
  startup process start -> first record seen on the target
  steady  first record seen -> last record (records copied in between / that time)
  cpu     user+sys CPU seconds of the replicating process when the copy completed; cpu/GB over the
          whole run, and "steady cpu/GB" over the steady phase only
  rss     peak resident set (VmHWM) of the replicating process
With --repeat N, every figure is the median over the runs that finished (ratios are taken between
medians); the JSON keeps every run.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

REPLICATOR_NAMES = {"raw": "raw librdkafka pipe", "mm2": "Apache MirrorMaker 2", "mirrord": "kafka-mirrord"}
# Issue 3's targets for kafka-mirrord.
TARGET_OF_CEILING = 0.9
TARGET_RSS_MIB = 64


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def last_json_line(path):
    """raw_pipe prints its summary as one JSON line on stdout."""
    try:
        with open(path) as f:
            lines = [l for l in f.read().splitlines() if l.startswith("{")]
        return json.loads(lines[-1]) if lines else None
    except (OSError, ValueError):
        return None


def div(a, b):
    return a / b if a is not None and b not in (None, 0) else None


# Figures that are aggregated over repeated runs (median of the finished runs).
NUMERIC = ("total_s", "startup_s", "records_per_s", "mb_per_s", "steady_s", "steady_records_per_s",
           "steady_mb_per_s", "cpu_s", "cpu_s_per_gb", "steady_cpu_s_per_gb", "peak_rss_mib", "load_s")


def cell_result(run_dir, ds, rep, run_no):
    """Everything measured in one run of one replicator on one dataset, as a flat dict."""
    d = os.path.join(run_dir, f"{ds['name']}-{rep}-{run_no}")
    meta = load_json(os.path.join(d, "meta.json")) or {}
    watch = load_json(os.path.join(d, "watch.json")) or {}
    verify = load_json(os.path.join(d, "verify.json")) or {}
    load = load_json(os.path.join(d, "load.json")) or {}
    status = meta.get("status", "not run")
    r = {
        "replicator": rep,
        "status": {"done": "finished", "timeout": "did not finish", "exited": "exited early"}.get(status, status),
        "note": meta.get("note") or None,
        "complete": verify.get("status"),
        "target_records": verify.get("target_records"),
        "source_records": verify.get("source_records"),
        "load_s": load.get("elapsed_s"),
        "load_avg_1m_at_start": meta.get("load_avg_1m"),
        "log_dir": d,
    }
    n, rec_bytes = ds["records"], ds["record_bytes"]
    end, first, first_count = watch.get("end_s"), watch.get("first_s"), watch.get("first_count")
    at_end, at_first = watch.get("at_end") or {}, watch.get("at_first") or {}
    r["startup_s"] = first
    r["cpu_s"] = at_end.get("cpu_s")
    r["peak_rss_mib"] = at_end["vm_hwm_kb"] / 1024 if at_end.get("vm_hwm_kb") else None
    if status == "done":
        r["total_s"] = end
        r["records_per_s"] = div(n, end)
        r["mb_per_s"] = div(n * rec_bytes / 1e6, end)
        steady_records = n - (first_count or 0)
        steady_s = end - first if first is not None else None
        r["steady_s"] = steady_s
        r["steady_records_per_s"] = div(steady_records, steady_s)
        r["steady_mb_per_s"] = div(steady_records * rec_bytes / 1e6, steady_s)
        r["cpu_s_per_gb"] = div(r["cpu_s"], n * rec_bytes / 1e9)
        if at_first.get("cpu_s") is not None and r["cpu_s"] is not None and steady_records > 0:
            r["steady_cpu_s_per_gb"] = div(r["cpu_s"] - at_first["cpu_s"], steady_records * rec_bytes / 1e9)
    else:
        r["records_on_target_at_stop"] = watch.get("count")
    if rep == "raw":
        own = last_json_line(os.path.join(d, "stdout.log"))
        if own:
            r["raw_pipe_self"] = {k: own.get(k) for k in ("elapsed_s", "first_record_s", "records_per_s", "mb_per_s", "self")}
            r["raw_pipe_settings"] = {"consumer": own.get("consumer"), "producer": own.get("producer")}
    return r


def aggregate(runs):
    """One result from repeated runs: medians over the finished ones, every run kept."""
    if len(runs) == 1:
        return {**runs[0], "runs_finished": f"{int(runs[0]['status'] == 'finished')}/1"}
    done = [r for r in runs if r["status"] == "finished"]
    out = {"replicator": runs[0]["replicator"], "runs": runs, "runs_finished": f"{len(done)}/{len(runs)}"}
    out["status"] = "finished" if len(done) == len(runs) else ("did not finish" if not done else "partly finished")
    notes = sorted({r["note"] for r in runs if r.get("note")})
    out["note"] = "; ".join(notes) or None
    completes = sorted({r.get("complete") or "-" for r in runs})
    out["complete"] = completes[0] if len(completes) == 1 else "/".join(completes)
    for k in NUMERIC:
        vals = [r[k] for r in (done or runs) if r.get(k) is not None]
        out[k] = statistics.median(vals) if vals else None
    if not done:
        counts = [r.get("records_on_target_at_stop") for r in runs if r.get("records_on_target_at_stop") is not None]
        out["records_on_target_at_stop"] = max(counts) if counts else None
    spread = [r["records_per_s"] for r in done if r.get("records_per_s")]
    if len(spread) > 1:
        out["records_per_s_range"] = [min(spread), max(spread)]
    for k in ("raw_pipe_settings",):
        if any(k in r for r in runs):
            out[k] = next(r[k] for r in runs if k in r)
    return out


def fmt(v, spec="{:.1f}"):
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    return spec.format(v)


def ratio(a, b, key):
    """a/b of one figure, only between replicators that both finished (a partial run's CPU or RSS
    is not comparable)."""
    if (a or {}).get("status") != "finished" or (b or {}).get("status") != "finished":
        return None
    x, y = a.get(key), b.get(key)
    return x / y if x is not None and y not in (None, 0) else None


def print_dataset(ds, results, replicators, repeat):
    print()
    print(
        f"== dataset {ds['name']}: {ds['records']:,} records x ({ds['value_size']} B value + {ds['key_size']} B key)"
        f" = {ds['records'] * ds['record_bytes'] / 1e6:.1f} MB, {ds['partitions']} partitions"
    )
    cols = [
        ("replicator", "{}", lambda r: r["replicator"]),
        ("status", "{}", lambda r: r["status"]),
    ] + ([("runs", "{}", lambda r: r.get("runs_finished"))] if repeat > 1 else []) + [
        ("total s", "{:.2f}", lambda r: r.get("total_s")),
        ("startup s", "{:.2f}", lambda r: r.get("startup_s")),
        ("rec/s", "{:,.0f}", lambda r: r.get("records_per_s")),
        ("MB/s", "{:.1f}", lambda r: r.get("mb_per_s")),
        ("steady rec/s", "{:,.0f}", lambda r: r.get("steady_records_per_s")),
        ("steady MB/s", "{:.1f}", lambda r: r.get("steady_mb_per_s")),
        ("CPU s", "{:.1f}", lambda r: r.get("cpu_s")),
        ("CPU s/GB", "{:.1f}", lambda r: r.get("cpu_s_per_gb")),
        ("steady CPU s/GB", "{:.1f}", lambda r: r.get("steady_cpu_s_per_gb")),
        ("peak RSS MiB", "{:.0f}", lambda r: r.get("peak_rss_mib")),
        ("complete", "{}", lambda r: r.get("complete") or "-"),
    ]
    rows = [[c[0] for c in cols]]
    for rep in replicators:
        r = results.get(rep)
        if r:
            rows.append([fmt(get(r), spec) for _, spec, get in cols])
    widths = [max(len(row[i]) for row in rows) for i in range(len(cols))]
    for i, row in enumerate(rows):
        print("  ".join(c.rjust(w) if j > 1 else c.ljust(w) for j, (c, w) in enumerate(zip(row, widths))).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    for rep in replicators:
        r = results.get(rep) or {}
        if r.get("records_per_s_range"):
            lo, hi = r["records_per_s_range"]
            print(f"  {rep}: rec/s over {r['runs_finished']} finished runs: {lo:,.0f} .. {hi:,.0f}")
        if r.get("note"):
            print(f"  {rep}: {r['note']}")
        if r.get("status") != "finished" and r.get("records_on_target_at_stop") is not None:
            print(f"  {rep}: {r['records_on_target_at_stop']:,} of {ds['records']:,} records on the target when stopped")


def compute_ratios(results):
    raw, mm2, mirrord = results.get("raw"), results.get("mm2"), results.get("mirrord")
    out = {}
    for name, a, b in (("mirrord/raw", mirrord, raw), ("mirrord/mm2", mirrord, mm2), ("mm2/raw", mm2, raw)):
        out[name] = {
            "throughput_total": ratio(a, b, "records_per_s"),
            "throughput_steady": ratio(a, b, "steady_records_per_s"),
            "cpu_s_per_gb": ratio(a, b, "cpu_s_per_gb"),
            "steady_cpu_s_per_gb": ratio(a, b, "steady_cpu_s_per_gb"),
            "peak_rss": ratio(a, b, "peak_rss_mib"),
        }
    return out


def print_ratios(ratios, results):
    shown = {name: v for name, v in ratios.items() if any(x is not None for x in v.values())}
    if shown:
        print("  ratios                   throughput(total)  throughput(steady)  CPU s/GB  steady CPU s/GB  peak RSS")
    for name, v in shown.items():
        print(
            f"  {name:<24} {fmt(v['throughput_total'], '{:.2f}'):>17}  {fmt(v['throughput_steady'], '{:.2f}'):>18}"
            f"  {fmt(v['cpu_s_per_gb'], '{:.2f}'):>8}  {fmt(v['steady_cpu_s_per_gb'], '{:.2f}'):>15}"
            f"  {fmt(v['peak_rss'], '{:.2f}'):>8}"
        )
    m = results.get("mirrord")
    if m and m.get("status") == "finished":
        checks = []
        t = ratios["mirrord/raw"]["throughput_steady"]
        if t is not None:
            checks.append(f"steady throughput {t:.2f} of the ceiling (target >= {TARGET_OF_CEILING}): {'PASS' if t >= TARGET_OF_CEILING else 'FAIL'}")
        t = ratios["mirrord/mm2"]["throughput_total"]
        if t is not None:
            checks.append(f"faster than MM2 ({t:.2f}x): {'PASS' if t > 1 else 'FAIL'}")
        c = ratios["mirrord/mm2"]["cpu_s_per_gb"]
        if c is not None:
            checks.append(f"CPU per GB {c:.2f} of MM2's: {'PASS' if c < 1 else 'FAIL'}")
        if m.get("peak_rss_mib") is not None:
            checks.append(f"peak RSS {m['peak_rss_mib']:.0f} MiB (target <= {TARGET_RSS_MIB}): {'PASS' if m['peak_rss_mib'] <= TARGET_RSS_MIB else 'FAIL'}")
        for c in checks:
            print(f"  issue 3 target: {c}")


def git(*args):
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--partitions", type=int, required=True)
    ap.add_argument("--key-size", type=int, required=True)
    ap.add_argument("--timeout", type=int, required=True)
    ap.add_argument("--replicators", required=True)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--kafka-version", default="")
    ap.add_argument("--quick", default="0")
    ap.add_argument("--props", default="")
    ap.add_argument("datasets", nargs="+", help="NAME:RECORDS:VALUE_BYTES")
    a = ap.parse_args()

    replicators = a.replicators.split(",")
    doc = {
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "git": {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))},
        "host": {"cpus": os.cpu_count(), "kernel": platform.release(), "machine": platform.machine(),
                 "load_avg": os.getloadavg()},
        "kafka_version": a.kafka_version,
        "quick": a.quick == "1",
        "timeout_s": a.timeout,
        "repeat": a.repeat,
        "extra_properties": [p for p in a.props.splitlines() if p],
        "run_dir": a.run_dir,
        "datasets": [],
    }
    print(f"\nkafka-mirrord benchmark, {doc['timestamp']}, Kafka {a.kafka_version}, {os.cpu_count()} CPUs, "
          f"commit {doc['git']['commit'][:12]}{' (dirty)' if doc['git']['dirty'] else ''}")
    loads = sorted(
        m["load_avg_1m"] for m in (load_json(os.path.join(a.run_dir, c, "meta.json")) or {} for c in os.listdir(a.run_dir))
        if isinstance(m.get("load_avg_1m"), (int, float))
    ) if os.path.isdir(a.run_dir) else []
    if loads:
        doc["host"]["load_avg_1m_at_cell_start"] = {"min": loads[0], "max": loads[-1]}
        print(f"1-minute load average when the replicators started: {loads[0]:.1f} .. {loads[-1]:.1f} "
              f"(other work on this {os.cpu_count()}-CPU machine skews absolute figures; compare ratios)")
    print("MB = 10^6 bytes of keys+values; total = process start -> all records on target; "
          "steady = first record on target -> last")
    for spec in a.datasets:
        name, n, size = spec.split(":")
        ds = {"name": name, "records": int(n), "value_size": int(size), "key_size": a.key_size,
              "record_bytes": int(size) + a.key_size, "partitions": a.partitions}
        results = {rep: aggregate([cell_result(a.run_dir, ds, rep, i) for i in range(1, a.repeat + 1)])
                   for rep in replicators}
        ratios = compute_ratios(results)
        print_dataset(ds, results, replicators, a.repeat)
        print_ratios(ratios, results)
        doc["datasets"].append({**ds, "results": results, "ratios": ratios})
    raw_settings = next((r.get("raw_pipe_settings") for d in doc["datasets"] for r in d["results"].values()
                         if r.get("raw_pipe_settings")), None)
    if raw_settings:
        print("\nraw pipe librdkafka settings:")
        for role in ("consumer", "producer"):
            print(f"  {role}: " + ", ".join(f"{k}={v}" for k, v in (raw_settings.get(role) or {}).items()))
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    print(f"\nresults: {a.out}\nlogs:    {a.run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
