#!/usr/bin/env python3
"""deploy/lib/histogram-delta.py BEFORE AFTER METRIC...: what Prometheus histograms recorded
between two scrapes of /metrics (the text of one or more services' endpoints, concatenated),
as JSON on stdout: for each METRIC and each set of labels other than `le`, the observations
in between, their mean and their p50 and p99 in milliseconds.

A benchmark scrapes before and after a measured step, so a figure covers that step alone, not
the warm-up or the seed before it. The quantiles are interpolated within buckets, as
Prometheus's histogram_quantile does, so they are as fine as the buckets
(services/runtime/src/metrics.rs chooses them); the mean is exact.
"""

import json
import re
import sys

LINE = re.compile(r'^(\w+?)(_bucket|_sum|_count)(?:\{(.*)\})?\s+(\S+)$')
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse(path, metrics):
    """{(metric, labels without le): {"buckets": {le: count}, "sum": s, "count": c}}"""
    series = {}
    for line in open(path):
        match = LINE.match(line.strip())
        if not match or match.group(1) not in metrics:
            continue
        name, part, labels, value = match.groups()
        pairs = dict(LABEL.findall(labels or ""))
        le = pairs.pop("le", None)
        key = (name, tuple(sorted(pairs.items())))
        entry = series.setdefault(key, {"buckets": {}, "sum": 0.0, "count": 0.0})
        if part == "_bucket":
            entry["buckets"][float(le)] = entry["buckets"].get(float(le), 0.0) + float(value)
        else:
            entry[part[1:]] += float(value)
    return series


def quantile(q, buckets, count):
    """Linear interpolation inside the bucket the q-th observation falls in."""
    rank, lower, below = q * count, 0.0, 0.0
    for bound in sorted(buckets):
        if buckets[bound] >= rank:
            if bound == float("inf"):
                return lower
            inside = buckets[bound] - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, buckets[bound]
    return lower


def main():
    before_path, after_path, metrics = sys.argv[1], sys.argv[2], set(sys.argv[3:])
    before, after = parse(before_path, metrics), parse(after_path, metrics)
    out = []
    for (name, labels), entry in sorted(after.items()):
        old = before.get((name, labels), {"buckets": {}, "sum": 0.0, "count": 0.0})
        count = entry["count"] - old["count"]
        if count <= 0:
            continue
        buckets = {le: n - old["buckets"].get(le, 0.0) for le, n in entry["buckets"].items()}
        out.append({"metric": name, "labels": dict(labels), "count": int(count),
                    "mean_ms": (entry["sum"] - old["sum"]) / count * 1000,
                    "p50_ms": quantile(0.5, buckets, count) * 1000,
                    "p99_ms": quantile(0.99, buckets, count) * 1000})
    json.dump(out, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
