#!/usr/bin/env python3
"""deploy/lib/record-run.py KIND RESULTS_DIR COMMAND...: one run's record, the form docs/runs/ holds.

deploy/bench.sh (KIND bench), deploy/bench-scale.sh (KIND bench-scale), deploy/bench-dsb.sh
(KIND dsb), deploy/soak.sh (KIND soak) and deploy/policies.sh (KIND policies) call it last. It
gathers the small JSON results the run wrote in RESULTS_DIR (never its logs or its manifest,
which at a million users is megabytes) into RESULTS_DIR/run.json, with the date, the machine,
the command and the git commit, so that a figure in the docs always says where it comes from.
deploy/render-docs.py renders the docs' tables from these records; to publish a run:

    mkdir -p docs/runs/KIND && cp RESULTS_DIR/run.json docs/runs/KIND/ && deploy/render-docs.py

A soak is published as a set of runs (the docs give their spread), each with its plots:

    deploy/lib/record-run.py publish-soak RESULTS_DIR... && deploy/render-docs.py

writes docs/runs/soak/run.json (every run's record) and docs/runs/soak/N/*.svg (run N's plots,
cut out of its soak.html).

`experiment policies` is published as two runs (the docs give their spread), as deploy/policies.sh
does:

    deploy/lib/record-run.py publish-policies RESULTS_DIR1 RESULTS_DIR2 && deploy/render-docs.py

Two builds measured in turn by deploy/bench.sh (BENCH_BIN_DIR, result folders named before-N and
after-N) are published as one A/B, rendered as bench-ab.cpu:

    deploy/lib/record-run.py publish-ab QUESTION BEFORE AFTER DIR... && deploy/render-docs.py

The idle cost of two builds, measured in turn the same way (`BENCH_IDLE_ONLY=1`), is published
into docs/runs/idle-ab/ instead, rendered as idle-ab.table:

    deploy/lib/record-run.py publish-idle-ab QUESTION BEFORE AFTER DIR... && deploy/render-docs.py

deploy/bench-dsb.sh and deploy/bench-scale.sh are published as two runs or more, the same way:

    deploy/lib/record-run.py publish-dsb RESULTS_DIR1 RESULTS_DIR2 && deploy/render-docs.py
    deploy/lib/record-run.py publish-bench-scale RESULTS_DIR1 RESULTS_DIR2 && deploy/render-docs.py

A run recorded after the fact (from another checkout, or later than it ran) says so with
RECORD_COMMIT (the commit its binaries were built from) and RECORD_DATE (when it started,
e.g. 2026-12-07T07:07:27Z). RECORD_NOTE adds a sentence the docs print beside the run's
provenance (what else ran on the machine meanwhile).
"""

import datetime
import json
import os
import platform
import re
import shlex
import subprocess
import sys
from pathlib import Path

# The settings a run may be given through the environment, recorded with it.
SETTINGS_PREFIXES = ("BENCH_", "SCALE_", "DSB_")
# Where the binaries came from is no setting of the measurement.
NOT_SETTINGS = {"BENCH_BIN_DIR", "DSB_BIN_DIR"}


def load(path):
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def machine():
    """The same fields as the load tool's own record (load/src/machine.rs)."""
    def field(path, key):
        for line in Path(path).read_text().splitlines():
            name, _, value = line.partition(":")
            if name.strip() == key:
                return value.strip()
        return None
    memory = field("/proc/meminfo", "MemTotal")
    return {
        "cores": os.cpu_count(),
        "cpu": field("/proc/cpuinfo", "model name") or "unknown",
        "memory_gib": round(int(memory.split()[0]) / 1024 / 1024, 1) if memory else 0.0,
        "os": f"{platform.system().lower()} {platform.machine()}",
    }


def commit(repo):
    def git(*args):
        result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
        return result.stdout.strip() if result.returncode == 0 else None
    head = git("rev-parse", "HEAD")
    if head is None:
        return "unknown"
    return head + ("-dirty" if git("status", "--porcelain") else "")


def scale_out(results):
    rows = []
    for setup in ("one", "two", "cluster-one", "cluster-two"):
        report = load(results / f"scale-out-{setup}" / "report.json")
        if report is None:
            continue
        counts = report["counts"]
        rows.append({
            "setup": setup,
            "ok_per_sec": report["throughput"]["ok_per_sec"],
            "p50_ms": report["latency"]["p50_ms"],
            "p99_ms": report["latency"]["p99_ms"],
            "errors": counts["errors"] + counts["timeouts"],
        })
    return rows or None


def bench(results):
    return {"bench": load(results / "bench.json"), "idle": load(results / "idle.json"),
            "scale_out": scale_out(results),
            "strategies": load(results / "strategies" / "strategies.json")}


def bench_scale(results):
    sizes = []
    for size_dir in sorted((d for d in results.iterdir() if d.name.isdigit()), key=lambda d: int(d.name)):
        size = load(size_dir / "size.json")
        if size is None:
            continue
        cold = load(size_dir / "cold" / "report.json")
        size["bench"] = load(size_dir / "bench.json")
        size["cold"] = {k: cold["latency"][k] for k in ("p50_ms", "p99_ms")} if cold else None
        size["visible"] = load(size_dir / "visible.json")
        sizes.append(size)
    return {"sizes": sizes, "strategies": load(results / "strategies" / "strategies.json"),
            "timeline_env": os.environ.get("BENCH_TIMELINE_ENV", ""),
            "gateway_env": os.environ.get("BENCH_GATEWAY_ENV", "")}


def soak(results):
    """The soak's own report, whole (a few hundred kB at most: one row a minute), and the
    system's load just before it started, as deploy/soak.sh read it."""
    before = results / "loadavg-before"
    return {"soak": load(results / "soak.json"),
            "load_before": before.read_text().split()[:3] if before.exists() else None}


PLOT = re.compile(r"<h2>([^<]+)</h2>\n(<svg.*?</svg>)", re.S)


def slug(title):
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def publish_soak(dirs):
    root = Path(__file__).resolve().parent.parent.parent / "docs" / "runs" / "soak"
    runs = []
    for number, results in enumerate(dirs, start=1):
        record = load(results / "run.json")
        if record is None or record.get("kind") != "soak":
            sys.exit(f"{results}/run.json is not a soak's record (run deploy/soak.sh)")
        plots = root / str(number)
        plots.mkdir(parents=True, exist_ok=True)
        for old in plots.glob("*.svg"):
            old.unlink()
        record["plots"] = []
        for title, svg in PLOT.findall((results / "soak.html").read_text()):
            name = f"{slug(title)}.svg"
            (plots / name).write_text(svg + "\n")
            record["plots"].append({"title": title, "file": f"{number}/{name}"})
        runs.append(record)
    (root / "run.json").write_text(json.dumps({"kind": "soak", "runs": runs}, indent=1) + "\n")
    print(f"published {len(runs)} soak runs in {root}; now run deploy/render-docs.py")


def policies(results):
    """`experiment policies`' own result, whole (a few kB)."""
    return {"policies": load(results / "policies.json")}


def publish_runs(kind, field, producer, dirs):
    """Several runs of one kind, every run's record in docs/runs/KIND/run.json, so the docs give
    the spread: each DIR's run.json must be a KIND record with its FIELD, written by PRODUCER."""
    root = Path(__file__).resolve().parent.parent.parent / "docs" / "runs" / kind
    runs = []
    for results in dirs:
        record = load(results / "run.json")
        if record is None or record.get("kind") != kind or not record.get(field):
            sys.exit(f"{results}/run.json is not a record of {producer}")
        runs.append(record)
    root.mkdir(parents=True, exist_ok=True)
    (root / "run.json").write_text(json.dumps({"kind": kind, "runs": runs}, indent=1) + "\n")
    print(f"published {len(runs)} runs of {producer} in {root}; now run deploy/render-docs.py")


def dsb(results):
    """Per mix, in the order the run measured them: its settings, the highest rate that passed,
    and every step up to the first that failed."""
    mixes = []
    for mix_file in sorted(results.glob("*/mix.json"), key=lambda f: f.stat().st_mtime):
        mix = load(mix_file)
        steps = [load(f) for f in mix_file.parent.glob("rate-*/step.json")]
        mix["steps"] = sorted((s for s in steps if s), key=lambda s: s["rate"])
        mixes.append(mix)
    return {"mixes": mixes}


def publish_ab(kind, stage, question, before, after, dirs):
    """An A/B of two builds measured by deploy/bench.sh in turn (BENCH_BIN_DIR) into
    docs/runs/KIND: each DIR is a bench run whose name starts with before- or after-, in the
    order they ran, and its STAGE (bench or idle) is kept."""
    root = Path(__file__).resolve().parent.parent.parent / "docs" / "runs" / kind
    root.mkdir(parents=True, exist_ok=True)
    runs = []
    for results in dirs:
        record = load(results / "run.json")
        variant = results.name.split("-")[0]
        if record is None or record.get("kind") != "bench" or variant not in ("before", "after"):
            sys.exit(f"{results}: not a bench run named before-… or after-…")
        if not record.get(stage):
            sys.exit(f"{results}: the run has no {stage} stage")
        runs.append({"variant": variant, "date": record["date"], "machine": record["machine"],
                     "command": record["command"], "commit": record["commit"],
                     stage: record[stage]})
    (root / "run.json").write_text(json.dumps(
        {"kind": kind, "question": question, "before": before, "after": after,
         "runs": runs}, indent=1) + "\n")
    print(f"published {len(runs)} runs in {root}; now run deploy/render-docs.py")


def main():
    if sys.argv[1] == "publish-soak":
        publish_soak([Path(d) for d in sys.argv[2:]])
        return
    if sys.argv[1] == "publish-bench-scale":
        publish_runs("bench-scale", "sizes", "deploy/bench-scale.sh", [Path(d) for d in sys.argv[2:]])
        return
    if sys.argv[1] == "publish-dsb":
        publish_runs("dsb", "mixes", "deploy/bench-dsb.sh", [Path(d) for d in sys.argv[2:]])
        return
    if sys.argv[1] == "publish-policies":
        publish_runs("policies", "policies", "`experiment policies` (run deploy/policies.sh)",
                     [Path(d) for d in sys.argv[2:]])
        return
    if sys.argv[1] in ("publish-ab", "publish-idle-ab"):
        kind, stage = {"publish-ab": ("bench-ab", "bench"),
                       "publish-idle-ab": ("idle-ab", "idle")}[sys.argv[1]]
        publish_ab(kind, stage, sys.argv[2], sys.argv[3], sys.argv[4],
                   [Path(d) for d in sys.argv[5:]])
        return
    kind, results, command = sys.argv[1], Path(sys.argv[2]), " ".join(sys.argv[3:])
    settings = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(os.environ.items())
                        if k.startswith(SETTINGS_PREFIXES) and k not in NOT_SETTINGS)
    record = {
        "kind": kind,
        "date": os.environ.get("RECORD_DATE")
        or datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(),
        "command": f"{settings} {command}".strip(),
        "commit": os.environ.get("RECORD_COMMIT") or commit(Path(__file__).resolve().parent.parent.parent),
        **{"bench": bench, "bench-scale": bench_scale, "dsb": dsb, "soak": soak,
           "policies": policies}[kind](results),
    }
    if os.environ.get("RECORD_NOTE"):
        record["note"] = os.environ["RECORD_NOTE"]
    (results / "run.json").write_text(json.dumps(record, indent=2) + "\n")
    if kind in ("bench-scale", "dsb", "soak", "policies"):
        how = f"deploy/lib/record-run.py publish-{kind} {results} OTHER_RUN_DIR... && deploy/render-docs.py"
    else:
        how = f"mkdir -p docs/runs/{kind} && cp {results / 'run.json'} docs/runs/{kind}/ && deploy/render-docs.py"
    print(f"run record: {results / 'run.json'}; to publish it in the docs:\n  {how}")


if __name__ == "__main__":
    main()
