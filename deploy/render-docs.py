#!/usr/bin/env python3
"""deploy/render-docs.py: the measured tables of the docs, rendered from the runs that measured them.

No figure in the docs is typed by hand. A run's record is committed under docs/runs/KIND/run.json:

    KIND          written by                                   as
    bench         deploy/bench.sh                              RESULTS_DIR/run.json
    bench-scale   deploy/bench-scale.sh (several runs)         deploy/lib/record-run.py publish-bench-scale DIR...
    dsb           deploy/bench-dsb.sh (several runs)           deploy/lib/record-run.py publish-dsb DIR...
    chaos         loadtest chaos --json docs/runs/chaos/run.json
    soak          deploy/soak.sh (several runs)                deploy/lib/record-run.py publish-soak DIR...
    policies      deploy/policies.sh (two runs)                deploy/lib/record-run.py publish-policies DIR...
    bench-ab      deploy/bench.sh (two builds in turn)         deploy/lib/record-run.py publish-ab ... DIR...
    idle-ab       BENCH_IDLE_ONLY=1 deploy/bench.sh (same)     deploy/lib/record-run.py publish-idle-ab ... DIR...

(the latest run of a kind replaces the one before; git keeps the older ones). In a doc, a
rendered block is

    <!-- render: KIND.TABLE -->
    ...what this command writes...
    <!-- end render -->

and this command rewrites every block from its run: the table, headed by the run's date, machine,
command and commit. Without a committed run the block says so, and shows no number.
The console's Strategy lab ships the same figures: this command also writes
services/gateway/console/strategies.json from the committed bench run's `experiment strategies`
(or, without one, a file that says so and holds no strategy), and the Interview view's capacity
plan its measured figures: services/gateway/console/capacity.json from the committed bench run
(the CPU per page by process through the gateway, the fan-out worker's inserts/s) and from the
committed bench-scale run (Redis bytes per timeline entry); and the lab's policies of real
networks: services/gateway/console/policies.json from docs/runs/policies/.
deploy/check-docs.py fails when a block, or those files, differ from what their run renders.

    deploy/render-docs.py          rewrite the blocks of README.md, docs/*.md, deploy/k8s/README.md
"""

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# A block inside a list item is indented like the item: its lines keep the marker's indentation.
BLOCK = re.compile(r"^([ \t]*)(<!--\s*render:\s*([\w.-]+)\s*-->\n)(.*?)^[ \t]*(<!--\s*end render\s*-->)",
                   re.S | re.M)
PRODUCERS = {
    "bench": "`deploy/bench.sh`",
    "bench-scale": "`deploy/bench-scale.sh`",
    "dsb": "`deploy/bench-dsb.sh`",
    "chaos": "`loadtest chaos`",
    "soak": "`deploy/soak.sh`",
    "bench-ab": "`deploy/bench.sh` for two builds in turn",
    "idle-ab": "`BENCH_IDLE_ONLY=1 deploy/bench.sh` for two builds in turn",
    "policies": "`deploy/policies.sh`",
}
HOW = {
    "bench": "`deploy/bench.sh`, then copy its run.json into docs/runs/bench/",
    "bench-scale": "`deploy/bench-scale.sh` twice, then `deploy/lib/record-run.py publish-bench-scale DIR1 DIR2`",
    "dsb": "`deploy/bench-dsb.sh` twice, then `deploy/lib/record-run.py publish-dsb DIR1 DIR2`",
    "chaos": "`cargo run --release -p loadtest -- chaos --json docs/runs/chaos/run.json`",
    "soak": "`deploy/soak.sh` twice, then `deploy/lib/record-run.py publish-soak DIR1 DIR2`",
    "bench-ab": "`deploy/bench.sh` with `BENCH_BIN_DIR` for each build in turn, then "
                "`deploy/lib/record-run.py publish-ab`",
    "policies": "`deploy/policies.sh` (two runs of `experiment policies`, published together)",
    "idle-ab": "`BENCH_IDLE_ONLY=1 deploy/bench.sh` with `BENCH_BIN_DIR` for each build in turn, "
               "then `deploy/lib/record-run.py publish-idle-ab`",
}


class NoRun(Exception):
    """The block's run is not committed."""


# ---------------------------------------------------------------- formatting

def n(value, digits=0):
    """A number as the docs write it: thousands apart by a space, fixed decimals."""
    if value is None:
        return "–"
    text = f"{value:,.{digits}f}"
    return text.replace(",", " ")


def ratio(value):
    return "–" if value is None else f"{value:.2f}×"


def table(header, rows, align=None):
    align = align or ["---"] + ["--:"] * (len(header) - 1)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def short_commit(commit):
    return commit[:12] + ("-dirty" if commit.endswith("-dirty") else "")


def provenance(run):
    m = run["machine"]
    commit = short_commit(run["commit"])
    return (f"*Run of {run['date'][:10]}, `{run['command']}` at commit {commit}, on "
            f"{m['cores']} cores ({m['cpu']}), {m['memory_gib']:.1f} GiB, {m['os']}.*")


# ---------------------------------------------------------------- the tables

def bench_results(run):
    b = run.get("bench")
    if not b:
        raise NoRun("the run skipped `loadtest bench` (BENCH_READ_PATH=0)")
    floor = max(b["redis_floor"]["ok_per_sec"], 1e-9)
    out = [provenance(run), "",
           f"{n(b['users'])} users, {n(b['follows'])} follows, {n(b['tweets'])} tweets; "
           f"{n(b['readers'])} warm readers, pages of {b['page_size']}; "
           f"{b['connections']} concurrent requests; {n(b['duration_secs'])} s per stage.", ""]
    rows = []
    for name, key in [("Redis floor: the page's pipeline, one multiplexed connection", "redis_floor"),
                      ("timeline service, gRPC `GetHomeTimeline`", "timeline_grpc"),
                      ("gateway, HTTP `GET /users/{id}/timeline` (saturation)", "gateway_http")]:
        s = b[key]
        rows.append([name, n(s["ok_per_sec"]), n(s["latency"]["p50_ms"], 2),
                     n(s["latency"]["p99_ms"], 2), ratio(s["ok_per_sec"] / floor)])
    if b.get("redis_benchmark"):
        pages = b["redis_benchmark"]["pages_per_sec"]
        rows.append(["redis-benchmark: the page's `ZRANGE`, 3 per round trip, as pages", n(pages),
                     "", "", ratio(pages / floor)])
    out += [table(["read path, one cached home-timeline page", "pages/s", "p50 ms", "p99 ms",
                   "vs floor"], rows), ""]
    o = b["gateway_http_open"]
    out += [table([f"gateway, open loop at {b['load_fraction'] * 100:.0f} % of saturation, same "
                   f"connections", "target/s", "ok/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms"],
                  [["`GET /users/{id}/timeline`", n(o.get("target_per_sec")), n(o["ok_per_sec"]),
                    n(o["latency"]["p50_ms"], 2), n(o["latency"]["p99_ms"], 2),
                    n(o["latency"]["p99.9_ms"], 2), n(o["latency"]["max_ms"], 2)]]), ""]
    f = b["fanout"]
    counted = f" (its counter: {n(f['worker_counted'])})" if f.get("worker_counted") is not None else ""
    out += [table([f"fan-out: {f['events']} events of an author with {n(f['followers'])} followers",
                   "inserts", "seconds", "inserts/s", "vs ZADD"],
                  [[f"through the worker, publish to the last write in Redis{counted}", n(f["inserts"]),
                    n(f["worker_secs"], 3), n(f["worker_inserts_per_sec"]),
                    ratio(f["worker_inserts_per_sec"] / max(f["direct_inserts_per_sec"], 1e-9))],
                   ["pipelined `ZADD` straight to Redis, same pipelines", n(f["inserts"]),
                    n(f["direct_secs"], 3), n(f["direct_inserts_per_sec"]), ratio(1.0)]]), ""]
    stages = [("Redis floor", "redis_floor"), ("timeline gRPC", "timeline_grpc"),
              ("gateway HTTP (saturation)", "gateway_http"), ("gateway HTTP (open loop)", "gateway_http_open")]
    processes = sorted({p for _, key in stages for p in b[key].get("cpu_us_per_request", {})})
    if processes:
        rows = []
        for name, key in stages:
            cpu = b[key].get("cpu_us_per_request", {})
            rows.append([name] + [n(cpu[p], 1) if p in cpu else "" for p in processes]
                        + [n(sum(cpu.values()), 1)])
        out += [table(["CPU µs per page, by process"] + processes + ["total"], rows), ""]
    r = b["ratios"]
    verdict = lambda met: "met" if met else "**not met**"
    out.append(table(["target", "measured", ""], [
        ["end-to-end read ≥ 0.5× the Redis floor", ratio(r["gateway_vs_floor"]),
         verdict(r["gateway_vs_floor"] >= 0.5)],
        [f"p99 ≤ 10 ms at {b['load_fraction'] * 100:.0f} % of saturation", f"{n(r['p99_at_load_ms'], 2)} ms",
         verdict(r["p99_at_load_ms"] <= 10.0)],
        ["fan-out ≥ 0.5× pipelined `ZADD`", ratio(r["fanout_vs_zadd"]), verdict(r["fanout_vs_zadd"] >= 0.5)],
    ], ["---", "--:", "---"]))
    return "\n".join(out)


def bench_headline(run):
    b = run.get("bench")
    if not b:
        raise NoRun("the run skipped `loadtest bench` (BENCH_READ_PATH=0)")
    r = b["ratios"]
    return (f"In the committed run ({run['date'][:10]}, {run['machine']['cores']} cores), a cached "
            f"home-timeline page through the gateway reaches {ratio(r['gateway_vs_floor'])} of the raw "
            f"Redis floor end to end, against the 0.5× aimed at, and its p99 at "
            f"{b['load_fraction'] * 100:.0f} % of saturation is {n(r['p99_at_load_ms'], 2)} ms "
            f"(docs/BENCHMARKS.md).")


def bench_idle(run):
    idle = run.get("idle")
    if not idle:
        raise NoRun("the run has no idle stage (BENCH_IDLE=0, or it predates the stage)")
    rows = [[p["name"], p["command"], p["processes"], n(p["cpu_ms"]), n(p["percent_of_core"], 2)]
            for p in idle["processes"]]
    rows.append(["**the stack**", "", sum(p["processes"] for p in idle["processes"]),
                 n(sum(p["cpu_ms"] for p in idle["processes"])),
                 n(sum(p["percent_of_core"] for p in idle["processes"]), 2)])
    rows += [[m["name"], f"not measured: {m['reason']}", "", "", ""] for m in idle["missing"]]
    load = " / ".join(f"{value:.2f}" for value in idle["load_average"])
    return "\n".join([provenance(run), "",
                      f"{n(idle['window_secs'])} s with the stack seeded and up and no request; the "
                      f"whole machine (every process, this stack's or not) was "
                      f"{n(idle['machine_busy_cores'], 2)} cores busy meanwhile, load average "
                      f"{load} (1 / 5 / 15 min) as the window began.", "",
                      table(["process, with its direct children", "command", "processes",
                             "CPU ms in the window", "% of one core"], rows,
                            ["---", "---", "--:", "--:", "--:"])])


SETUPS = {
    "one": "1 gateway, 1 timeline",
    "two": "2 gateways (HAProxy), 2 timelines",
    "cluster-one": "1 gateway, 1 timeline, Redis Cluster",
    "cluster-two": "2 gateways (HAProxy), 2 timelines, Redis Cluster",
}


def bench_scale_out(run):
    rows = run.get("scale_out")
    if not rows:
        raise NoRun("the run skipped the scale-out stage (BENCH_SCALE_OUT=0)")
    return "\n".join([provenance(run), "", table(
        ["setup", "pages ok/s", "p50 ms", "p99 ms", "errors"],
        [[SETUPS.get(r["setup"], r["setup"]), n(r["ok_per_sec"]), n(r["p50_ms"], 1), n(r["p99_ms"], 1),
          r["errors"]] for r in rows])])


def strategies(run):
    c = run.get("strategies")
    if not c:
        raise NoRun("the run skipped `experiment strategies`")
    rows = []
    for s in c["strategies"]:
        o, k = s["ordinary"], s["celebrity"]
        rows.append([s["strategy"], n(s["load"]["per_tweet"], 1),
                     n(o["writes"]["per_tweet"]), n(k["writes"]["per_tweet"]),
                     f"{n(s['home_timeline']['p50_ms'], 1)} / {n(s['home_timeline']['p99_ms'], 1)}",
                     f"{n(o['visible']['p50_ms'])} / {n(o['visible']['p99_ms'])}",
                     f"{n(k['visible']['p50_ms'])} / {n(k['visible']['p99_ms'])}",
                     o["lost"] + k["lost"]])
    followers = lambda kind: n(c["strategies"][0][kind]["author_followers"])
    return "\n".join([provenance(run), "",
                      f"{n(c['users'])} users, {n(c['follows'])} follows, {n(c['tweets'])} tweets, "
                      f"celebrity threshold {n(c['celebrity_threshold'])}; a mixed load of "
                      f"{n(c['rate'])} requests/s over {n(c['readers'])} readers for "
                      f"{n(c['duration_secs'])} s; {c['probes']} timed posts per kind of author.", "",
                      table(["strategy", "writes per tweet, mixed load",
                             f"ordinary author ({followers('ordinary')} followers)",
                             f"celebrity ({followers('celebrity')} followers)",
                             "home timeline p50 / p99 ms", "post to visible, ordinary p50 / p99 ms",
                             "post to visible, celebrity p50 / p99 ms", "probes lost"], rows)])


def several_runs(record, field, missing):
    """The runs of a record that may hold several (record-run.py publish-KIND) or be one run's
    run.json copied as it was; NoRun(`missing`) when the first has nothing in `field`."""
    runs = record.get("runs") or ([record] if record.get(field) else [])
    if not runs or not runs[0].get(field):
        raise NoRun(missing)
    return runs


def scale_runs(record):
    return several_runs(record, "sizes", "the run recorded no size")


def bench_scale_rows(run):
    """One run's summary: a row per figure, a column per size."""
    sizes = run["sizes"]

    def stage(s, key, field="ok_per_sec"):
        b = s.get("bench")
        return b[key][field] if b else None

    def visible(s):
        v = s.get("visible")
        if not v or not v.get("last_follower_ms"):
            return "–"
        ms = sorted(v["last_follower_ms"])
        return f"{n(ms[len(ms) // 2])} ({n(ms[0])}-{n(ms[-1])}) ms, {n(v['followers'])} followers"

    def of_floor(s):
        page, floor = stage(s, "gateway_http"), stage(s, "redis_floor")
        return ratio(page / floor) if page and floor else "–"

    rows = [
        ["follows / tweets"] + [f"{n(s['follows'])} / {n(s['tweets'])}" for s in sizes],
        ["seed: users, follows streamed, graph commit, tweet history (s)"] +
        [" / ".join(n(s[k], 1) for k in ("users_secs", "follows_secs", "graph_commit_secs", "tweets_secs"))
         for s in sizes],
        ["**seed, total** (s)"] + [f"**{n(s['seed_secs'])}**" for s in sizes],
        ["timeline keys in Redis"] + [n(s["timeline_keys"]) for s in sizes],
        ["Redis bytes per timeline entry (`MEMORY USAGE`)"] +
        [n(s["timeline_bytes"] / s["timeline_entries"], 1) if s.get("timeline_entries") else "–"
         for s in sizes],
        ["active readers warmed and read"] + [n(s["readers"]) for s in sizes],
        ["cached pages/s, gateway (saturation)"] + [n(stage(s, "gateway_http")) for s in sizes],
        ["cached pages/s, timeline service (gRPC)"] + [n(stage(s, "timeline_grpc")) for s in sizes],
        ["Redis floor, pages/s"] + [n(stage(s, "redis_floor")) for s in sizes],
        ["a cached page through the gateway ÷ the Redis floor"] + [of_floor(s) for s in sizes],
        ["gateway p50 / p99 at 70 % of saturation (open loop), ms"] +
        [f"{n(s['bench']['gateway_http_open']['latency']['p50_ms'], 1)} / "
         f"{n(s['bench']['ratios']['p99_at_load_ms'], 1)}" if s.get("bench") else "–" for s in sizes],
        ["cold read (a rebuild) p50 / p99, ms"] +
        [f"{n(s['cold']['p50_ms'], 1)} / {n(s['cold']['p99_ms'], 1)}" if s.get("cold") else "–"
         for s in sizes],
        ["post to last follower visible, median (min-max)"] + [visible(s) for s in sizes],
    ]
    if len(sizes) == 2 and all(stage(s, "gateway_http") for s in sizes):
        # The design's promise at scale: a cached page as fast at the larger size.
        rows.append(["cached pages/s at the larger size ÷ the smaller", "",
                     ratio(stage(sizes[1], "gateway_http") / stage(sizes[0], "gateway_http"))])
    return rows


def bench_scale_summary(record):
    runs = scale_runs(record)
    label = [f"{n(s['users'])} users" for s in runs[0]["sizes"]]
    each = [bench_scale_rows(run) for run in runs]
    # Every run's figure in one cell, run 1 first (once when they agree): the spread reads across.
    rows = []
    for cells in zip(*each):
        row = [cells[0][0]]
        for i in range(1, len(cells[0])):
            values = [c[i] for c in cells]
            row.append("; ".join(values) if len(set(values)) > 1 else values[0])
        rows.append(row)
    first = runs[0]
    settings = [f"The timeline service ran with `{first['timeline_env']}`." if first.get("timeline_env") else "",
                f"The gateway ran with `{first['gateway_env']}`." if first.get("gateway_env") else ""]
    several = (f"{len(runs)} runs, one after the other: where they differ, a cell gives each "
               f"run's figures, run 1 first, apart by a semicolon." if len(runs) > 1 else "")
    return "\n".join([*(provenance(run) for run in runs), "",
                      " ".join(filter(None, settings + [several])) or "Default settings.", "",
                      table([""] + label, rows)])


def bench_scale_headline(record):
    runs = scale_runs(record)
    bigs = [[s for s in run["sizes"] if s.get("timeline_entries")][-1:] for run in runs]
    if not all(bigs):
        raise NoRun("the run recorded no timeline in Redis")
    bigs = [big[0] for big in bigs]
    seeds = " and ".join(f"{n(b['seed_secs'])} s" for b in bigs)
    bytes_ = " and ".join(n(b["timeline_bytes"] / b["timeline_entries"], 1) for b in bigs)
    which = "committed run" if len(runs) == 1 else f"{len(runs)} committed runs"
    return (f"In the {which} of `deploy/bench-scale.sh` ({runs[0]['date'][:10]}), "
            f"{n(bigs[0]['users'])} users were seeded in {seeds} and Redis held {bytes_} bytes per "
            f"timeline entry (docs/BENCHMARKS.md, \"A million users\").")


def bench_scale_strategies(record):
    return strategies(scale_runs(record)[0])


def dsb_runs(record):
    return several_runs(record, "mixes", "the run recorded no mix")


def dsb_results(record):
    runs = dsb_runs(record)
    cores = runs[0]["machine"]["cores"]
    first = runs[0]["mixes"][0]
    target = first["p99_target_ms"]
    out = [provenance(run) for run in runs]
    out += ["", f"socfb-Reed98: {n(first['users'])} users, {n(first['follows'])} follows, "
            f"{first['tweets_per_user']} posts each to start with; an open loop over "
            f"{first['connections']} connections, {first['warmup']} of warm-up then {first['duration']} "
            f"measured per rate; a rate passes with a p99 of at most {n(target)} ms and at most one "
            f"request in a thousand failed, timed out or dropped.", ""]
    best_rows = []
    for mix in runs[0]["mixes"]:
        cells = []
        for run in runs:
            other = next((m for m in run["mixes"] if m["mix"] == mix["mix"]), None)
            best = other and next((s for s in other["steps"] if s["rate"] == other["best_rate"]), None)
            cells.append((other["best_rate"], best) if best else (0, None))
        rates = [rate for rate, _ in cells]
        p99s = " / ".join(n(best["p99_ms"], 2) if best else "–" for _, best in cells)
        best_rows.append([f"`{mix['mix']}`",
                          " / ".join(n(rate) if rate else "none passed" for rate in rates),
                          " / ".join(n(rate / cores) if rate else "–" for rate in rates), p99s])
    label = "run 1 / run 2" if len(runs) == 2 else "each run"
    out += [table(["mix", f"highest rate with p99 ≤ {n(target)} ms, requests/s ({label})",
                   f"per core ({cores} cores, everything on them)", "p99 ms there"],
                  best_rows), ""]
    rows = [[str(number), f"`{mix['mix']}`", n(s["rate"]), n(s["ok_per_sec"]), n(s["p50_ms"], 2),
             n(s["p99_ms"], 2), n(s["p999_ms"], 2), n(s["failed"]), "pass" if s["passed"] else "**fail**"]
            for number, run in enumerate(runs, start=1) for mix in run["mixes"] for s in mix["steps"]]
    out.append(table(["run", "mix", "rate/s", "ok/s", "p50 ms", "p99 ms", "p99.9 ms", "failed", ""],
                     rows))
    return "\n".join(out)


HISTOGRAM_NAMES = {
    "chirp_http_request_duration_seconds": "gateway, HTTP",
    "chirp_grpc_request_duration_seconds": "service, gRPC",
    "chirp_tweet_post_step_duration_seconds": "tweet service, a post's step",
    "chirp_outbox_relay_duration_seconds": "outbox to Kafka's ack (the relay)",
    "chirp_fanout_post_to_push_duration_seconds": "post to each fan-out write",
}


def histogram_labels(labels):
    """A series' labels as the table says them: `POST /tweets`, `TweetService CreateTweet`."""
    if "route" in labels:
        return f"`{labels.get('method', '')} {labels['route']}`"
    if "service" in labels:
        return f"{labels['service'].rsplit('.', 1)[-1]} {labels.get('method', '')}"
    return ", ".join(f"{v}" for _, v in sorted(labels.items()))


def dsb_time(record):
    """Per run and mix, the last step measured (the first that failed, or the highest rate):
    where its requests spent their time, from the services' histograms over that step."""
    out = []
    for number, run in enumerate(dsb_runs(record), start=1):
        for mix in run["mixes"]:
            if not mix["steps"] or "histograms" not in mix["steps"][-1]:
                continue
            step = mix["steps"][-1]
            order = list(HISTOGRAM_NAMES)
            histograms = sorted(step["histograms"], key=lambda h: (
                order.index(h["metric"]) if h["metric"] in order else len(order)))
            rows = [[HISTOGRAM_NAMES.get(h["metric"], h["metric"]), histogram_labels(h["labels"]),
                     n(h["count"]), n(h["mean_ms"], 2), n(h["p50_ms"], 2), n(h["p99_ms"], 2)]
                    for h in histograms]
            out += [f"Run {number}, `{mix['mix']}` at {n(step['rate'])} requests/s "
                    f"({'passed' if step['passed'] else 'failed'}; p99 {n(step['p99_ms'], 2)} ms "
                    f"end to end):", "",
                    table(["where", "what", "observations", "mean ms", "p50 ms", "p99 ms"], rows,
                          ["---", "---", "--:", "--:", "--:", "--:"]), ""]
    if not out:
        raise NoRun("the run predates the services' histograms per step")
    return "\n".join(out).rstrip()


def chaos_table(run):
    def secs(value):
        return "never" if value is None else f"{value:.1f} s"
    rows = [[r["fault"], r["posts_accepted"], r["deletes_accepted"], r["lost"], r["phantom"],
             r["duplicates"], r["paging_gaps"], r["unanswered"], r["server_errors_in_window"],
             r["server_errors_outside"], secs(r["recovered_after_secs"]), secs(r["converged_after_secs"])]
            for r in run["rows"]]
    kind = "The short version (`--short`)" if run["short"] else "The full version"
    verdict = "every promise kept" if run["passed"] else "**a promise broken**"
    return "\n".join([provenance(run), "",
                      f"{kind}, {run['profile']} builds, checks bounded by {run['bound_secs']} s: {verdict}.", "",
                      table(["fault", "posts accepted", "deletes", "lost", "phantom", "duplicates",
                             "paging gaps", "unanswered", "5xx in window", "5xx outside",
                             "time to recover", "checks clean after"], rows)])


# ---------------------------------------------------------------- soaks: several runs, their spread

def soak_runs(record):
    runs = record.get("runs") or []
    if not runs:
        raise NoRun("no soak run is published")
    return runs


def judged(run):
    """The soak's interval rows after warm-up: the steady state."""
    s = run["soak"]
    warm = s["config"]["warm_up_secs"] / 60
    return [row for row in s["intervals"] if row["minute"] > warm] or s["intervals"]


def median(values):
    values = sorted(v for v in values if v is not None)
    return values[len(values) // 2] if values else None


def spread(values, digits=0, unit=""):
    """Two or more runs' figures as the docs give them: each, then the spread."""
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{n(values[0], digits)}{unit}"
    low, high = min(values), max(values)
    return f"{' / '.join(n(v, digits) for v in values)}{unit} (spread {n(high - low, digits)}{unit})"


def soak_provenance(runs):
    lines = []
    for number, run in enumerate(runs, start=1):
        load = run.get("load_before")
        loaded = ""
        if load:
            busy = float(load[0]) > run["machine"]["cores"]
            loaded = (f" Load average before it: {load[0]}"
                      + (" — **a loaded machine** (other work ran beside it)." if busy else "."))
        note = f" {run['note']}" if run.get("note") else ""
        lines.append(f"{number}. {provenance(run)[1:-1]}{loaded}{note}")
    return "\n".join(lines)


def soak_summary(record):
    runs = soak_runs(record)
    rows = []

    def row(label, per_run, digits=0, unit=""):
        rows.append([label, spread([per_run(run) for run in runs], digits, unit)])

    config = lambda key: (lambda run: run["soak"]["config"][key])
    clients = lambda run, key: [r["clients"][key] for r in judged(run)]
    mean = lambda values: sum(values) / len(values) if values else None
    final = lambda key: (lambda run: run["soak"]["final_check"]["findings"][key])
    row("seeded users", config("users"))
    row("steady load, minutes", lambda run: run["soak"]["config"]["duration_secs"] / 60)
    row("posts/s asked", config("post_rate"))
    row("posts/s done, mean after warm-up", lambda run: mean(clients(run, "posts_per_sec")), 1)
    row("home reads/s asked", lambda run: run["soak"]["config"]["post_rate"]
        * run["soak"]["config"]["read_ratio"])
    row("home reads/s done, mean after warm-up", lambda run: mean(clients(run, "reads_per_sec")), 1)
    per_sec = lambda key: (lambda run: mean(clients(run, key)) / run["soak"]["config"]["interval_secs"])
    row("posts/s failed (error or timeout), mean after warm-up", per_sec("post_errors"), 1)
    row("home reads/s failed (error or timeout), mean after warm-up", per_sec("read_errors"), 1)
    for kind in ("post", "read"):
        for q in ("p50", "p99"):
            row(f"{kind} {q}, ms, median minute after warm-up",
                lambda run, key=f"{kind}_{q}_ms": median(clients(run, key)))
    row("operations dropped (too many in flight)",
        lambda run: sum(r["clients"]["dropped"] for r in run["soak"]["intervals"]))
    row("faults injected", lambda run: len(run["soak"]["injected"]))
    row("watched posts accepted", lambda run: run["soak"]["final_check"]["posts_accepted"])
    for key, label in [("lost", "lost"), ("phantom", "phantom (deleted, still visible)"),
                       ("duplicates", "duplicates"), ("paging_gaps", "paging gaps or out of order"),
                       ("unfollowed_visible", "visible after an unfollow")]:
        row(label, final(key))
    row("dead letters", lambda run: max([r["system"].get("dead_letters") or 0
                                         for r in run["soak"]["intervals"]] or [0]))
    row("curves growing after warm-up",
        lambda run: sum(1 for g in run["soak"]["growth"] if g["growing"]))
    if any(run["soak"].get("handover") for run in runs):
        handover = lambda key: (lambda run: (run["soak"].get("handover") or {}).get(key))
        row("events through one outbox shard", handover("events_through_shard"))
        row("its lease handed over: a post of the shard seen after, ms",
            lambda run: handover("visible_after_secs")(run) * 1000)
    verdicts = ", ".join("passed" if run["soak"]["verdict"]["passed"] else "**failed**" for run in runs)
    return "\n".join([soak_provenance(runs), "", table(["", f"runs 1 to {len(runs)}"], rows,
                                                       ["---", "--:"]), "", f"Verdicts: {verdicts}."])


def soak_delay(record):
    runs = soak_runs(record)
    buckets = [d["bucket"] for d in judged(runs[0])[0]["clients"]["fanout"]]
    rows = []
    for i, bucket in enumerate(buckets):
        per = lambda run, key: [r["clients"]["fanout"][i][key] for r in judged(run)
                                if r["clients"]["fanout"][i]["seen"]]
        rows.append([bucket, spread([sum(r["clients"]["fanout"][i]["seen"] for r in judged(run))
                                     for run in runs]),
                     spread([median(per(run, "p50_ms")) for run in runs]),
                     spread([max(per(run, "p99_ms") or [None], key=lambda v: v or 0) for run in runs]),
                     spread([sum(r["clients"]["fanout"][i]["late"] for r in judged(run)) for run in runs])])
    return table(["followers of the author", "posts probed", "delay p50, ms (median minute)",
                  "delay p99, ms (worst minute)", "not seen in 120 s"], rows)


def soak_growth(record):
    runs = soak_runs(record)
    curves = [g["curve"] for g in runs[0]["soak"]["growth"]]
    rows = []
    for curve in curves:
        cells = []
        for run in runs:
            g = next((g for g in run["soak"]["growth"] if g["curve"] == curve), None)
            if g is None or g["growing"] is None:
                cells.append("not judged")
            else:
                cells.append(f"{n(g['rise'], 1)} of {n(g['allowed'], 1)}"
                             + (" **growing**" if g["growing"] else ""))
        rows.append([curve] + cells)
    return table(["curve (judged: the second half after warm-up)"]
                 + [f"run {i}: rise of allowed" for i in range(1, len(runs) + 1)], rows)


def soak_faults(record):
    runs = soak_runs(record)
    rows = []
    for number, run in enumerate(runs, start=1):
        for fault in run["soak"]["injected"]:
            rows.append([number, n(fault["at_secs"] / 60, 1), f"`{fault['fault']}`",
                         n(fault["took_secs"], 1), fault["error"] or "recovered"])
    return table(["run", "minute", "fault", "took, s", "outcome"], rows,
                 ["--:", "--:", "---", "--:", "---"])


def soak_plots(record):
    runs = soak_runs(record)
    lines = []
    for number, run in enumerate(runs, start=1):
        lines.append(f"Run {number}: " + ", ".join(
            f"[{p['title'].lower()}](runs/soak/{p['file']})" for p in run.get("plots", [])) + ".")
        lines.append("")
    first = runs[0].get("plots", [])
    lines += [f"![{p['title']}, run 1](runs/soak/{p['file']})" for p in first
              if p["title"] in ("Throughput", "Fan-out delay by follower count",
                                "Consumer lag and outbox", "Resident memory by process")]
    return "\n".join(lines)


# ---------------------------------------------------------------- policies: two runs, their spread

def policies_runs(record):
    runs = record.get("runs") or []
    if not runs:
        raise NoRun("no run of `experiment policies` is published")
    return runs


def policies_table(record):
    """Figures down, policies across; each cell every run's figure and their spread."""
    runs = policies_runs(record)
    results = [run["policies"] for run in runs]
    first = results[0]
    names = [p["policy"] for p in first["policies"]]
    rows = []

    def row(label, pick, digits=0, unit=""):
        cells = []
        for name in names:
            values = []
            for r in results:
                policy = next((p for p in r["policies"] if p["policy"] == name), None)
                values.append(pick(policy) if policy else None)
            cells.append(spread(values, digits, unit))
        rows.append([label] + cells)

    def percentiles(value, key):
        return value[key] if value["samples"] else None

    row("Redis, MB (every per-user key, after the load)", lambda p: p["redis_bytes"] / 1e6, 1)
    row("home timelines in Redis", lambda p: p["timelines"])
    row("timeline writes per post, mixed load", lambda p: p["load"]["per_tweet"], 1)
    row("pushes skipped as inactive, mixed load", lambda p: p["skipped_inactive"])
    row("pushes dropped by the lossy rule, mixed load", lambda p: p["skipped_lossy"])
    for i, bucket in enumerate(d["bucket"] for d in first["policies"][0]["delay"]):
        for q in ("p50", "p99"):
            row(f"fan-out delay {q}, ms, author's followers: {bucket}",
                lambda p, i=i, q=q: percentiles(p["delay"][i]["delay"], f"{q}_ms"))
    row("home read p50, ms (warm readers, mixed load)", lambda p: p["home_timeline"]["p50_ms"], 1)
    row("home read p99, ms", lambda p: p["home_timeline"]["p99_ms"], 1)
    row("returning user's first read p50, ms", lambda p: percentiles(p["cold_read"], "p50_ms"))
    row("returning user's first read p99, ms", lambda p: percentiles(p["cold_read"], "p99_ms"))
    row("returning users answered partial (206)", lambda p: p["partial"])
    for key, label in [("readers", "readers"), ("heavy", "heavy followers"), ("returning", "returning users")]:
        row(f"tweets missed, {label}", lambda p, key=key: p["missed"][key]["share"] * 100, 1, " %")
    lines = [f"{number}. {provenance(run)[1:-1]}" for number, run in enumerate(runs, start=1)]
    return "\n".join(lines + [
        "", f"{n(first['users'])} users ({first['heavy_followers']} of them following "
            f"{n(first['heavy_following'])} accounts or more), {n(first['follows'])} follows, "
            f"{n(first['tweets'])} tweets, celebrity threshold {n(first['celebrity_threshold'])}; a mixed "
            f"load of {n(first['rate'])} requests/s over {n(first['readers'])} readers for "
            f"{n(first['duration_secs'])} s; {first['probes']} timed posts per follower-count bucket; "
            f"{n(first['returning'])} returning users; {n(first['miss_readers'])} readers compared with "
            f"the truth. Each cell: run 1 / run 2 (their spread).", "",
        table([""] + names, rows, ["---"] + ["--:"] * len(names))])


def policies_settings(record):
    first = policies_runs(record)[0]["policies"]
    return table(["policy", "network", "the services' flags"],
                 [[p["policy"], p["network"], f"`{p['settings']}`"] for p in first["policies"]],
                 ["---", "---", "---"])


def bench_ab_cpu(record):
    """Each run of an A/B in the order it ran: the CPU of the gateway and the timeline service
    per cached page at saturation, then each build's mean and the ratio of the means."""
    runs = record.get("runs") or []
    if not runs:
        raise NoRun("no A/B run is published")
    rows, sums = [], {"before": [], "after": []}
    for number, run in enumerate(runs, start=1):
        http = run["bench"]["gateway_http"]
        cpu = http["cpu_us_per_request"]
        both = cpu.get("gateway", 0.0) + cpu.get("timeline", 0.0)
        sums[run["variant"]].append(both)
        rows.append([str(number), run["variant"], run["date"][11:16], n(http["ok_per_sec"]),
                     n(cpu.get("gateway"), 1), n(cpu.get("timeline"), 1), n(both, 1)])
    mean = {k: sum(v) / len(v) for k, v in sums.items() if v}
    m = runs[0]["machine"]
    lines = [f"*{record['question']} Before: {record['before']}; after: {record['after']}. "
             f"Runs of {runs[0]['date'][:10]} on {m['cores']} cores ({m['cpu']}), "
             f"{m['memory_gib']:.1f} GiB, alternated, each `{runs[0]['command'].rsplit(' ', 1)[0]}` with the "
             f"build's binaries in `BENCH_BIN_DIR`.*", "",
             table(["run", "build", "at (UTC)", "pages/s (gateway, saturation)",
                    "gateway CPU µs/page", "timeline CPU µs/page", "both"], rows,
                   ["--:", "---", "---", "--:", "--:", "--:", "--:"])]
    if len(mean) == 2:
        spread = {k: max(v) - min(v) for k, v in sums.items()}
        lines += ["", f"Mean of both services: before {n(mean['before'], 1)} µs "
                      f"(spread {n(spread['before'], 1)}), after {n(mean['after'], 1)} µs "
                      f"(spread {n(spread['after'], 1)}); after/before "
                      f"{mean['after'] / mean['before']:.2f}×."]
    return "\n".join(lines)


def idle_ab_table(record):
    """Each process's CPU with the stack at rest, as % of one core: every run of an A/B of two
    builds, then each build's mean, with the spread of its runs."""
    runs = record.get("runs") or []
    if not runs:
        raise NoRun("no A/B run is published")
    names = [p["name"] for p in runs[0]["idle"]["processes"]]
    share = {}
    for run in runs:
        for p in run["idle"]["processes"]:
            share.setdefault((run["variant"], p["name"]), []).append(p["percent_of_core"])
        share.setdefault((run["variant"], "**the stack**"), []).append(
            sum(p["percent_of_core"] for p in run["idle"]["processes"]))
        share.setdefault((run["variant"], "the whole machine"), []).append(
            run["idle"]["machine_busy_cores"] * 100)

    def cell(variant, name):
        values = share.get((variant, name), [])
        if not values:
            return "–"
        mean = sum(values) / len(values)
        return f"{n(mean, 2)} (± {n((max(values) - min(values)) / 2, 2)})"

    def ratio_of(name):
        before, after = share.get(("before", name)), share.get(("after", name))
        if not before or not after or sum(before) == 0:
            return "–"
        return f"{(sum(after) / len(after)) / (sum(before) / len(before)):.2f}×"

    rows = [[name, cell("before", name), cell("after", name), ratio_of(name)]
            for name in names + ["**the stack**", "the whole machine"]]
    m = runs[0]["machine"]
    order = ", ".join(f"{run['variant']} {run['date'][11:16]}" for run in runs)
    commits = sorted({f"{run['variant']} {short_commit(run['commit'])}" for run in runs})
    window = runs[0]["idle"]["window_secs"]
    return "\n".join([
        f"*{record['question']} Before: {record['before']}; after: {record['after']}. "
        f"Runs of {runs[0]['date'][:10]} on {m['cores']} cores ({m['cpu']}), "
        f"{m['memory_gib']:.1f} GiB, alternated ({order} UTC; {', '.join(commits)}), each "
        f"`{runs[0]['command'].rsplit(' ', 1)[0]}` with the build's binaries in `BENCH_BIN_DIR`: "
        f"{n(window)} s with the stack seeded and up and no request.*", "",
        table(["process, with its direct children", "before: % of one core (± half the spread)",
               "after", "after/before"], rows, ["---", "--:", "--:", "--:"])])


TABLES = {
    "bench-ab.cpu": bench_ab_cpu,
    "idle-ab.table": idle_ab_table,
    "bench.results": bench_results,
    "bench.headline": bench_headline,
    "bench.scale-out": bench_scale_out,
    "bench.idle": bench_idle,
    "bench.strategies": strategies,
    "bench-scale.summary": bench_scale_summary,
    "bench-scale.headline": bench_scale_headline,
    "bench-scale.strategies": bench_scale_strategies,
    "dsb.results": dsb_results,
    "dsb.time": dsb_time,
    "chaos.table": chaos_table,
    "soak.summary": soak_summary,
    "soak.delay": soak_delay,
    "soak.growth": soak_growth,
    "soak.faults": soak_faults,
    "soak.plots": soak_plots,
    "policies.table": policies_table,
    "policies.settings": policies_settings,
}


def block(root, name):
    """The text of the block `name`, rendered from its committed run."""
    if name not in TABLES:
        raise KeyError(f"no table {name} (deploy/render-docs.py knows {', '.join(TABLES)})")
    kind = name.split(".")[0]
    record = Path(root) / "docs" / "runs" / kind / "run.json"
    how = f"To measure it: {HOW[kind]}, then run `deploy/render-docs.py`."
    if not record.exists():
        return f"*Not measured on the current code yet: no run of {PRODUCERS[kind]} is committed. {how}*"
    try:
        return TABLES[name](json.loads(record.read_text()))
    except NoRun as missing:
        return f"*Not measured in the committed run: {missing}. {how}*"


CONSOLE_STRATEGIES = Path("services/gateway/console/strategies.json")


def console_strategies(root):
    """The text of the console's strategies.json: the committed bench run's strategies, with a
    note naming the run, or none and a note saying why."""
    record = Path(root) / "docs" / "runs" / "bench" / "run.json"
    run = json.loads(record.read_text()) if record.exists() else {}
    results = run.get("strategies")
    if results:
        m = run["machine"]
        note = (f"From the committed run of `{run['command']}` on {run['date'][:10]} at commit "
                f"{run['commit'][:12]}, {m['cores']} cores, {m['memory_gib']:.1f} GiB "
                f"(docs/runs/bench/run.json).")
        body = {"note": note, **{k: v for k, v in results.items() if k != "note"}}
    else:
        body = {"note": "No run of `experiment strategies` is committed for the current code "
                        "(docs/runs/bench/ holds none), so the console shows no figures. "
                        "Open the strategies.json of a run of your own.",
                "strategies": []}
    return json.dumps(body, indent=2, ensure_ascii=False) + "\n"


CONSOLE_POLICIES = Path("services/gateway/console/policies.json")


def console_policies(root):
    """The text of the console's policies.json: the committed runs of `experiment policies`, with
    a note naming them, or none and a note saying why."""
    record = Path(root) / "docs" / "runs" / "policies" / "run.json"
    runs = (json.loads(record.read_text()).get("runs") or []) if record.exists() else []
    if runs:
        m = runs[0]["machine"]
        dates = " and ".join(run["date"][:10] for run in runs)
        note = (f"From the {len(runs)} committed runs of `{runs[0]['command']}` on {dates} at commit "
                f"{runs[0]['commit'][:12]}, {m['cores']} cores, {m['memory_gib']:.1f} GiB "
                f"(docs/runs/policies/run.json).")
        body = {"note": note, "runs": [run["policies"] for run in runs]}
    else:
        body = {"note": "No run of `experiment policies` is committed for the current code "
                        "(docs/runs/policies/ holds none), so the console shows no figures.",
                "runs": []}
    return json.dumps(body, indent=2, ensure_ascii=False) + "\n"


CONSOLE_CAPACITY = Path("services/gateway/console/capacity.json")


def console_capacity(root):
    """The text of the console's capacity.json: what the committed bench run measured that a
    capacity plan scales (the CPU each process spends per cached home-timeline page through the
    gateway, the fan-out worker's inserts/s), with a note naming the run; or nulls and a note
    saying why."""
    record = Path(root) / "docs" / "runs" / "bench" / "run.json"
    run = json.loads(record.read_text()) if record.exists() else {}
    b = run.get("bench") or {}
    http = b.get("gateway_http") or {}
    fanout = b.get("fanout") or {}
    if http.get("cpu_us_per_request") and fanout.get("worker_inserts_per_sec"):
        m = run["machine"]
        body = {
            "note": (f"Measured by the committed run of `{run['command']}` on {run['date'][:10]} at "
                     f"commit {run['commit'][:12]}, {m['cores']} cores (docs/runs/bench/run.json)."),
            "cpu_us_per_page": http["cpu_us_per_request"],
            "gateway_pages_per_sec": http["ok_per_sec"],
            "fanout_worker_inserts_per_sec": fanout["worker_inserts_per_sec"],
            "fanout_measured_on": {"events": fanout["events"], "followers": fanout["followers"]},
            "cores": m["cores"],
        }
    else:
        body = {"note": "No bench run is committed for the current code (docs/runs/bench/ holds "
                        "none), so the console has no measured figures to plan from.",
                "cpu_us_per_page": None, "gateway_pages_per_sec": None,
                "fanout_worker_inserts_per_sec": None, "fanout_measured_on": None, "cores": None}
    return json.dumps({**body, **redis_entry(root)}, indent=2, ensure_ascii=False) + "\n"


def redis_entry(root):
    """Redis bytes per timeline entry as the committed runs of deploy/bench-scale.sh measured
    them (`MEMORY USAGE` of every timeline key over their entries, at the largest size; the mean
    of the runs), with a note naming them; or null and a note saying how to measure it. No
    other run measures it."""
    record = Path(root) / "docs" / "runs" / "bench-scale" / "run.json"
    try:
        runs = scale_runs(json.loads(record.read_text())) if record.exists() else []
    except NoRun:
        runs = []
    bigs = [[s for s in run["sizes"] if s.get("timeline_entries")][-1:] for run in runs]
    if not runs or not all(bigs):
        return {"redis_bytes_per_entry": None,
                "redis_note": ("No committed run measures Redis bytes per timeline entry (only "
                               "deploy/bench-scale.sh does; docs/runs/bench-scale/ holds no run): to "
                               "measure it, run deploy/bench-scale.sh twice and publish both with "
                               "deploy/lib/record-run.py publish-bench-scale, then run "
                               "deploy/render-docs.py.")}
    bigs = [big[0] for big in bigs]
    each = [b["timeline_bytes"] / b["timeline_entries"] for b in bigs]
    return {"redis_bytes_per_entry": sum(each) / len(each),
            "redis_note": (f"Measured by the committed run(s) of `{runs[0]['command']}` on "
                           f"{runs[0]['date'][:10]} at commit {runs[0]['commit'][:12]}: MEMORY USAGE of "
                           f"every timeline over its entries at {bigs[0]['users']} users, "
                           f"{' and '.join(f'{e:.1f}' for e in each)} bytes per entry (the plan uses "
                           "their mean; docs/runs/bench-scale/run.json).")}


def render(root, text):
    def one(match):
        indent = match.group(1)
        body = "\n".join(indent + line if line else line for line in block(root, match.group(3)).split("\n"))
        return f"{indent}{match.group(2)}{body}\n{indent}{match.group(5)}"
    return BLOCK.sub(one, text)


def main():
    if sys.argv[1:]:
        print(__doc__)
        return 2
    docs = [ROOT / "README.md", ROOT / "deploy/k8s/README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for doc in docs:
        text = doc.read_text()
        rendered = render(ROOT, text)
        if rendered != text:
            doc.write_text(rendered)
            print(f"rendered {doc.relative_to(ROOT)}")
    for path, text in [(CONSOLE_STRATEGIES, console_strategies(ROOT)),
                       (CONSOLE_CAPACITY, console_capacity(ROOT)),
                       (CONSOLE_POLICIES, console_policies(ROOT))]:
        if not (ROOT / path).exists() or (ROOT / path).read_text() != text:
            (ROOT / path).write_text(text)
            print(f"rendered {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
