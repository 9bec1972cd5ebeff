#!/usr/bin/env python3
"""Every PromQL query of the chart names only metrics (and labels) a real joingate exports.

    promql_check.py SCRAPE.txt [--rules RULES.yml [--runbook docs/runbook.md]] [--dashboard DASH.json]

SCRAPE.txt is a /metrics scrape of a running joingate. Metric names must appear in it (as a
sample name: histogram series as <name>_bucket/_sum/_count). Label names in selectors must
be labels of that metric in the scrape, or labels Prometheus adds to every target
(namespace, pod, instance, job, ...). Names in by/without/on/ignoring must be labels of
some metric of the same query, target labels, or le. Function names must be PromQL's.
With --runbook, every alert needs a runbook_url ending in #<alert name in lower case> and
docs/runbook.md a "## <AlertName>" heading for it.
"""
import argparse
import json
import re
import sys

import yaml

TARGET_LABELS = {"namespace", "pod", "instance", "job", "container", "service", "endpoint"}
FUNCS = set("""abs absent absent_over_time ceil changes clamp clamp_max clamp_min day_of_month day_of_week
day_of_year days_in_month delta deriv exp floor histogram_count histogram_sum histogram_fraction
histogram_quantile holt_winters hour idelta increase irate label_join label_replace ln log2 log10
minute month predict_linear rate resets round scalar sgn sort sort_desc sqrt time timestamp vector year
avg_over_time min_over_time max_over_time sum_over_time count_over_time quantile_over_time
stddev_over_time stdvar_over_time last_over_time present_over_time
sum min max avg group stddev stdvar count count_values bottomk topk quantile label_values""".split())
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"}


def parse_scrape(path):
    labels = {}
    for line in open(path):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s", line)
        if not m:
            continue
        names = set(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="', m.group(3) or ""))
        labels.setdefault(m.group(1), set()).update(names)
    return labels


def strip_strings(expr):
    return re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)


def check_expr(expr, scrape, where, errors):
    e = strip_strings(expr)
    e = e.replace("$__rate_interval", "5m").replace("$__interval", "1m").replace("$__range", "1h")
    e = re.sub(r"\$\w+|\$\{\w+\}", "x", e)
    i, n = 0, len(e)
    metrics = []       # (name, [label names in its matchers])
    grouping = []      # label names in by/on/...
    last_ident = None  # a metric name just read, for the {...} that may follow
    while i < n:
        c = e[i]
        if c.isspace():
            i += 1
            continue
        if c == "[":
            j = e.find("]", i)
            i = n if j < 0 else j + 1
            last_ident = None
            continue
        if c == "{":
            j = e.find("}", i)
            body = e[i + 1: j if j >= 0 else n]
            names = re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", body)
            if last_ident is not None:
                metrics[-1][1].extend(names)
            else:
                metrics.append((None, names))
            i = n if j < 0 else j + 1
            last_ident = None
            continue
        m = re.match(r"[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?[a-z]*|\.[0-9]+", e[i:])
        if m and m.group(0):
            i += len(m.group(0))
            last_ident = None
            continue
        m = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", e[i:])
        if m:
            ident = m.group(0)
            i += len(ident)
            k = i
            while k < n and e[k].isspace():
                k += 1
            nxt = e[k] if k < n else ""
            if ident in GROUPING and nxt == "(":
                j = e.find(")", k)
                grouping.extend(re.findall(r"[a-zA-Z_][a-zA-Z0-9_]*", e[k + 1: j if j >= 0 else n]))
                i = n if j < 0 else j + 1
                last_ident = None
            elif ident in FUNCS and (nxt == "(" or re.match(r"\s*(by|without)\s*\(", e[i:])):
                last_ident = None  # an aggregation with its grouping first: sum by (x) (...)
            elif nxt == "(":
                if ident not in FUNCS:
                    errors.append(f"{where}: unknown function {ident}() in: {expr}")
                last_ident = None
            elif ident.lower() in KEYWORDS:
                if ident == "offset":
                    m2 = re.match(r"\s*-?[0-9a-z]+", e[i:])
                    i += len(m2.group(0)) if m2 else 0
                last_ident = None
            else:
                metrics.append((ident, []))
                last_ident = ident
            continue
        i += 1
        last_ident = None
    known_labels = set(TARGET_LABELS) | {"le"}
    if not any(name for name, _ in metrics):
        errors.append(f"{where}: names no metric: {expr}")
    for name, lbls in metrics:
        if name is None:
            errors.append(f"{where}: a selector without a metric name: {expr}")
            continue
        if not name.startswith("joingate_"):
            errors.append(f"{where}: {name} is not a joingate metric: {expr}")
        if name not in scrape:
            errors.append(f"{where}: {name} is not in the scrape of a running joingate: {expr}")
            continue
        known_labels |= scrape[name]
        for lb in lbls:
            if lb not in scrape[name] and lb not in TARGET_LABELS:
                errors.append(f"{where}: {name} has no label {lb!r} (it has {sorted(scrape[name])}): {expr}")
    for lb in grouping:
        if lb not in known_labels:
            errors.append(f"{where}: grouping by {lb!r}, which no metric of the query has: {expr}")
    return [name for name, _ in metrics if name]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("scrape")
    ap.add_argument("--rules")
    ap.add_argument("--runbook")
    ap.add_argument("--dashboard")
    a = ap.parse_args()
    scrape = parse_scrape(a.scrape)
    errors = []
    count = 0
    if a.rules:
        doc = yaml.safe_load(open(a.rules))
        anchors = set()
        if a.runbook:
            anchors = {h.strip().lower() for h in re.findall(r"(?m)^## +(\S+)\s*$", open(a.runbook).read())}
        for g in doc["groups"]:
            for r in g["rules"]:
                name = r.get("alert") or r.get("record")
                check_expr(r["expr"], scrape, f"rule {name}", errors)
                count += 1
                if a.runbook and r.get("alert"):
                    url = r.get("annotations", {}).get("runbook_url", "")
                    want = "#" + name.lower()
                    if not url.endswith(want):
                        errors.append(f"alert {name}: runbook_url {url!r} does not end in {want}")
                    if name.lower() not in anchors:
                        errors.append(f"alert {name}: {a.runbook} has no '## {name}' entry")
                    for k in ("summary", "description"):
                        if not r.get("annotations", {}).get(k):
                            errors.append(f"alert {name}: no {k} annotation")
                    if r.get("labels", {}).get("severity") not in ("critical", "warning", "info"):
                        errors.append(f"alert {name}: severity {r.get('labels', {}).get('severity')!r}")
    if a.dashboard:
        d = json.load(open(a.dashboard))
        panels = []

        def walk(ps):
            for p in ps:
                panels.append(p)
                walk(p.get("panels", []))
        walk(d.get("panels", []))
        ids = [p.get("id") for p in panels]
        if len(ids) != len(set(ids)):
            errors.append(f"dashboard: duplicate panel ids {ids}")
        for p in panels:
            if p.get("type") == "row":
                continue
            ts = p.get("targets", [])
            if not ts:
                errors.append(f"dashboard panel {p.get('title')!r}: no queries")
            for t in ts:
                check_expr(t["expr"], scrape, f"dashboard panel {p.get('title')!r}", errors)
                count += 1
        for v in d.get("templating", {}).get("list", []):
            if v.get("type") != "query":
                continue
            q = v["query"]["query"] if isinstance(v.get("query"), dict) else v.get("query", "")
            m = re.fullmatch(r"label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)", q.strip())
            if not m:
                errors.append(f"dashboard variable {v['name']}: not label_values(selector, label): {q}")
                continue
            names = check_expr(m.group(1), scrape, f"dashboard variable {v['name']}", errors)
            lb = m.group(2)
            if lb not in TARGET_LABELS and not any(lb in scrape.get(nm, set()) for nm in names):
                errors.append(f"dashboard variable {v['name']}: label {lb} exists on none of {names}")
            count += 1
    for e in errors:
        print("  -", e)
    print(f"{count} queries checked, {len(errors)} problems")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
