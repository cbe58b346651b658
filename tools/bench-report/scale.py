#!/usr/bin/env python3
"""Turn one scripts/bench-scale run directory into a markdown report and a log-scale chart.

    scale.py RUN_DIR [--write PREFIX]

RUN_DIR holds meta.env (`scenario=KIND N SERVER` lines) and runs/r<round>-<kind>-<n>-<server>
.wrk / .rss / .metrics-before / .metrics-after. Writes RUN_DIR/scale.md and scale.svg, and
with --write also PREFIX.md and PREFIX.svg (benches/results/scale). Standard library only.
"""

import argparse
import glob
import math
import os
import shutil
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import parse_metrics, parse_wrk  # noqa: E402

SERVERS = {
    "default": "Portcullis, caches at default (10,000)",
    "big": "Portcullis, caches 200,000",
    "small": "Portcullis, caches 100",
    "redis": "Portcullis, Redis store, caches at default (10,000)",
    "redis_big": "Portcullis, Redis store, caches 200,000",
    "oauth2_proxy": "oauth2-proxy",
    "oauth2_proxy_redis": "oauth2-proxy, Redis store",
}
KINDS = {
    "cookie": "session cookies",
    "bearer": "bearer tokens",
    "o_bearer": "bearer tokens",
    "o_cookie": "session cookie",
    "redis": "session cookies (Redis store)",
    "o_redis": "session cookie (Redis store)",
}
CAPACITY = {"default": 10_000, "big": 200_000, "small": 100, "redis": 10_000, "redis_big": 200_000}


def read_meta(run_dir):
    meta, scenarios = {}, []
    with open(os.path.join(run_dir, "meta.env"), encoding="utf-8") as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("=")
            if k == "scenario":
                kind, n, srv = v.split()
                scenarios.append((kind, int(n), srv))
            else:
                meta[k] = v
    return meta, scenarios


def cache_counts(prefix, kind):
    before = parse_metrics(prefix + ".metrics-before")
    after = parse_metrics(prefix + ".metrics-after")
    if before is None or after is None:
        return None
    name = "token" if kind == "bearer" else "session"

    def delta(what):
        key = (f"portcullis_{name}_cache_{what}_total", "")
        return after.get(key, 0.0) - before.get(key, 0.0)

    return delta("hits"), delta("misses")


def read_rss(path):
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            k, v = line.split()
            out[k] = int(v)
    return out


def summarise(run_dir, meta, scenarios):
    rows = []
    for kind, n, srv in scenarios:
        runs = sorted(glob.glob(os.path.join(run_dir, "runs", f"r*-{kind}-{n}-{srv}.wrk")))
        if not runs:
            raise SystemExit(f"scale: no runs for {kind} {n} {srv}")
        results = [parse_wrk(p) for p in runs]
        hits = misses = 0.0
        for p in runs:
            c = cache_counts(p[: -len(".wrk")], kind)
            if c:
                hits, misses = hits + c[0], misses + c[1]
        rss = read_rss(runs[-1][: -len(".wrk")] + ".rss")
        errors = sum(sum(r["errors"].values()) + r["non_2xx_3xx"] for r in results)
        rows.append({
            "kind": kind, "n": n, "server": srv,
            "rps": statistics.median(r["rps"] for r in results),
            "p50_us": statistics.median(r["p50_us"] for r in results),
            "p99_us": statistics.median(r["p99_us"] for r in results),
            "hit_ratio": hits / (hits + misses) if hits + misses else None,
            "rss_kib": rss["rss_after"],
            "errors": errors,
        })
    return rows


def find(rows, kind, n, srv):
    return next((r for r in rows if (r["kind"], r["n"], r["server"]) == (kind, n, srv)), None)


def series(rows, big_n):
    """Lines of the chart: (label, colour, dash, [(n, rps)])."""
    def pts(kind, picks):
        return [(n, find(rows, kind, n, srv)["rps"]) for n, srv in picks if find(rows, kind, n, srv)]

    above = [(1, "default"), (1000, "default"), (big_n, "big")]
    below = [(1000, "small"), (big_n, "default")]
    return [
        ("Portcullis cookies, cache ≥ N", "#2563eb", "", pts("cookie", above)),
        ("Portcullis cookies, cache < N", "#2563eb", "6 4", pts("cookie", below)),
        ("Portcullis bearer, cache ≥ N", "#059669", "", pts("bearer", above)),
        ("Portcullis bearer, cache < N", "#059669", "6 4", pts("bearer", below)),
        ("oauth2-proxy bearer", "#ea7a18", "", pts("o_bearer", [(1, "oauth2_proxy"), (1000, "oauth2_proxy"), (big_n, "oauth2_proxy")])),
        ("Portcullis Redis store, cache ≥ N", "#7c3aed", "", pts("redis", [(1, "redis")]) + pts("redis", [(big_n, "redis_big")])),
        ("Portcullis Redis store, cache < N", "#7c3aed", "6 4", pts("redis", [(big_n, "redis")])),
        ("oauth2-proxy cookie (N = 1)", "#ea7a18", "2 3", pts("o_cookie", [(1, "oauth2_proxy")])),
        ("oauth2-proxy Redis store (N = 1)", "#b45309", "2 3", pts("o_redis", [(1, "oauth2_proxy_redis")])),
    ]


def svg(rows, big_n, meta):
    w, h, left, right, top, bottom = 760, 420, 80, 250, 40, 60
    pw, ph = w - left - right, h - top - bottom
    lines = series(rows, big_n)
    max_rps = max(r["rps"] for r in rows) * 1.1
    lo, hi = 0.0, math.log10(big_n)

    def x(n):
        return left + (math.log10(n) - lo) / (hi - lo) * pw

    def y(v):
        return top + ph - v / max_rps * ph

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
        f'<rect width="{w}" height="{h}" fill="white"/>',
        f'<text x="{left}" y="22" font-size="14" font-weight="bold">req/s against N distinct credentials (log scale), {meta.get("date", "")}</text>',
    ]
    step = 10 ** math.floor(math.log10(max_rps / 4))
    tick = step * math.ceil(max_rps / 5 / step)
    v = 0.0
    while v <= max_rps:
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#e5e7eb"/>')
        out.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v / 1000:g}k</text>')
        v += tick
    for n in (1, 10, 100, 1000, 10_000, 100_000):
        if n <= big_n:
            out.append(f'<line x1="{x(n):.1f}" x2="{x(n):.1f}" y1="{top}" y2="{top + ph}" stroke="#e5e7eb"/>')
            out.append(f'<text x="{x(n):.1f}" y="{top + ph + 16}" text-anchor="middle">{n:,}</text>')
    out.append(f'<text x="{left + pw / 2}" y="{h - 18}" text-anchor="middle">N (distinct session cookies or tokens, round-robin)</text>')
    ly = top + 10
    for label, colour, dash, points in lines:
        if not points:
            continue
        d = " ".join(f"{x(n):.1f},{y(v):.1f}" for n, v in points)
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        if len(points) > 1:
            out.append(f'<polyline points="{d}" fill="none" stroke="{colour}" stroke-width="2"{dash_attr}/>')
        for n, v in points:
            out.append(f'<circle cx="{x(n):.1f}" cy="{y(v):.1f}" r="3.5" fill="{colour}"/>')
        out.append(f'<line x1="{left + pw + 16}" x2="{left + pw + 40}" y1="{ly}" y2="{ly}" stroke="{colour}" stroke-width="2"{dash_attr}/>')
        out.append(f'<text x="{left + pw + 46}" y="{ly + 4}">{label}</text>')
        ly += 20
    out.append("</svg>")
    return "\n".join(out) + "\n"


def fmt_ms(us):
    return f"{us / 1000:.2f}"


def pct(row):
    return "?" if row["hit_ratio"] is None else f"{row['hit_ratio'] * 100:.0f} %"


def markdown(rows, meta, big_n, svg_name):
    L = ["# Cost at scale: N distinct users", ""]
    L.append(
        f"{meta.get('date', '')}, `{meta.get('command', '')}` at {meta.get('git', '')}; "
        f"{meta.get('cpu_model', '')}. Servers on CPU 0, wrk (-t2 -c{meta.get('connections', '')}) "
        f"and the test IdP on CPU 1; {meta.get('duration', '')} s per run, median of "
        f"{meta.get('rounds', '')} interleaved rounds, after one warm-up pass over every "
        f"credential. Cookie {meta.get('cookie_bytes', '?')} bytes, token "
        f"{meta.get('token_bytes', '?')} bytes."
    )
    L += ["", f"![req/s against N]({svg_name})", ""]
    L.append("| credentials | N | server | cache capacity | req/s | p50 ms | p99 ms | cache hit ratio | RSS after | errors |")
    L.append("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        cap = CAPACITY.get(r["server"])
        hit = "" if r["hit_ratio"] is None else f"{r['hit_ratio'] * 100:.1f} %"
        L.append(
            f"| {KINDS[r['kind']]} | {r['n']:,} | {SERVERS[r['server']]} | "
            f"{'' if cap is None else f'{cap:,}'} | {r['rps']:,.0f} | {fmt_ms(r['p50_us'])} | "
            f"{fmt_ms(r['p99_us'])} | {hit} | {r['rss_kib'] / 1024:.1f} MiB | {r['errors']} |"
        )
    L.append("")
    c1, cbig = find(rows, "cookie", 1, "default"), find(rows, "cookie", big_n, "big")
    cdef = find(rows, "cookie", big_n, "default")
    b1, bbig = find(rows, "bearer", 1, "default"), find(rows, "bearer", big_n, "default")
    L.append("## Ratios (same run)")
    L.append("")
    if c1 and cbig and cdef:
        L.append(f"- {big_n:,} distinct session cookies ÷ one cookie: {cbig['rps'] / c1['rps']:.2f} with every session cached, {cdef['rps'] / c1['rps']:.2f} with the default cache (target ≥ 0.5)")
    if b1 and bbig:
        L.append(f"- {big_n:,} distinct bearer tokens, default cache ÷ one token: {bbig['rps'] / b1['rps']:.2f}")
    o = find(rows, "o_bearer", big_n, "oauth2_proxy")
    if bbig and o:
        L.append(f"- Portcullis ÷ oauth2-proxy, {big_n:,} distinct bearer tokens: {bbig['rps'] / o['rps']:.1f}")
    r1, rbig, rdef = find(rows, "redis", 1, "redis"), find(rows, "redis", big_n, "redis_big"), find(rows, "redis", big_n, "redis")
    if r1 and c1:
        L.append(f"- Redis store ÷ cookie store, one session: {r1['rps'] / c1['rps']:.2f} (target ≥ 0.5)")
    if rbig and rdef and cbig and cdef:
        L.append(f"- Redis store ÷ cookie store, {big_n:,} sessions: {rbig['rps'] / cbig['rps']:.2f} with every session cached, {rdef['rps'] / cdef['rps']:.2f} with the default cache ({pct(rdef)} of the Redis store's requests hit its cache, the rest read Redis)")
    orr = find(rows, "o_redis", 1, "oauth2_proxy_redis")
    if orr and r1 and rdef:
        L.append(f"- Portcullis ÷ oauth2-proxy, Redis store: {r1['rps'] / orr['rps']:.1f} with one session, {rdef['rps'] / orr['rps']:.1f} at {big_n:,} sessions with the default cache against its one session")
    hwm = {k[4:]: int(v) for k, v in meta.items() if k.startswith("hwm.")}
    if hwm:
        L.append("")
        L.append("Peak RSS (VmHWM) per server: " + ", ".join(f"{SERVERS[k]} {v / 1024:.1f} MiB" for k, v in hwm.items()))
    L.append("")
    return "\n".join(L)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir")
    ap.add_argument("--write")
    a = ap.parse_args()
    meta, scenarios = read_meta(a.run_dir)
    big_n = max(n for _, n, _ in scenarios)
    rows = summarise(a.run_dir, meta, scenarios)
    with open(os.path.join(a.run_dir, "scale.svg"), "w", encoding="utf-8") as f:
        f.write(svg(rows, big_n, meta))
    svg_name = (os.path.basename(a.write) if a.write else "scale") + ".svg"
    md = markdown(rows, meta, big_n, svg_name)
    with open(os.path.join(a.run_dir, "scale.md"), "w", encoding="utf-8") as f:
        f.write(md)
    if a.write:
        with open(a.write + ".md", "w", encoding="utf-8") as f:
            f.write(md)
        shutil.copyfile(os.path.join(a.run_dir, "scale.svg"), a.write + ".svg")
    print(md)


if __name__ == "__main__":
    main()
