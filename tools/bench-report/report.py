#!/usr/bin/env python3
"""Turn one scripts/bench run directory into a markdown report, an SVG chart and a ratios line.

    report.py RUN_DIR [--write PREFIX]

Reads RUN_DIR/meta.env (KEY=VALUE lines written by scripts/bench) and RUN_DIR/runs/:
`r<round>-<scenario>.wrk` (wrk output with the BENCH_RESULT line of wrk.lua) and, for
Portcullis scenarios, `.metrics-before` / `.metrics-after` (its /metrics). Writes
RUN_DIR/report.md, RUN_DIR/report.svg and RUN_DIR/summary.json; with --write also
PREFIX.md and PREFIX.svg (e.g. benches/results/latest). Prints the ratios line as the
last line of stdout. Standard library only.
"""

import argparse
import json
import math
import os
import re
import shutil
import statistics
import sys
from html import escape

TARGETS = {
    "vs_hyper": 0.70,
    "vs_oauth2_proxy": 5.0,
    "p99_ratio": 5.0,
    "rss_mib": 30.0,
    "redis_vs_cookie": 0.5,
}
SERVER_NAMES = {
    "hyper": "hyper-baseline",
    "portcullis": "Portcullis",
    "portcullis_cold": "Portcullis (cold-cache instance)",
    "portcullis_redis": "Portcullis (Redis store)",
    "oauth2_proxy": "oauth2-proxy",
    "oauth2_proxy_redis": "oauth2-proxy (Redis store)",
}
SERVER_COLOURS = {
    "hyper": "#8a8f98",
    "portcullis": "#2563eb",
    "portcullis_cold": "#60a5fa",
    "portcullis_redis": "#1e3a8a",
    "oauth2_proxy": "#ea7a18",
    "oauth2_proxy_redis": "#9a3412",
}
PERCENTILE_COLOURS = {"p50": "#1f7a4d", "p99": "#d97706", "p999": "#b91c1c"}


def read_meta(run_dir):
    meta = {}
    with open(os.path.join(run_dir, "meta.env"), encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if "=" in line:
                key, value = line.split("=", 1)
                meta[key] = value
    return meta


def parse_wrk(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    m = re.search(r"^BENCH_RESULT (\{.*\})$", text, re.M)
    if not m:
        raise SystemExit(f"report: no BENCH_RESULT line in {path}")
    r = json.loads(m.group(1))
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    r["non_2xx_3xx"] = int(non2xx.group(1)) if non2xx else 0
    return r


METRIC_LINE = re.compile(r"^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+([0-9.eE+-]+)$")


def parse_metrics(path):
    values = {}
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = METRIC_LINE.match(line.strip())
            if m:
                values[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return values


def metrics_delta(prefix):
    before = parse_metrics(prefix + ".metrics-before")
    after = parse_metrics(prefix + ".metrics-after")
    if before is None or after is None:
        return None
    decisions = {}
    for (name, labels), v in after.items():
        if name == "portcullis_requests_total" and 'endpoint="forward_auth"' in labels:
            d = re.search(r'decision="([^"]+)"', labels).group(1)
            n = v - before.get((name, labels), 0.0)
            if n:
                decisions[d] = int(n)

    def counter(name):
        return int(after.get((name, ""), 0.0) - before.get((name, ""), 0.0))

    return {
        "decisions": decisions,
        # The bearer-token and the opened-session caches (a scenario uses one of the two).
        "cache_hits": counter("portcullis_token_cache_hits_total")
        + counter("portcullis_session_cache_hits_total"),
        "cache_misses": counter("portcullis_token_cache_misses_total")
        + counter("portcullis_session_cache_misses_total"),
    }


def bash_times(text):
    """Seconds of user + system time from one line of bash `times` ("0m1.5s 0m0.2s")."""
    total = 0.0
    for part in text.split():
        m = re.fullmatch(r"(\d+)m([\d.]+)s", part)
        if m:
            total += int(m.group(1)) * 60 + float(m.group(2))
    return total


def parse_cpu(path, clk_tck):
    """How the run's wall time was spent, as shares of one CPU:
    server: the server process itself (all threads); kernel_irq: interrupt and softirq
    time on the server CPU (mostly loopback TCP); others: everything else that ran on the
    server CPU (other processes, steal); wrk: wrk's own CPU time; client_busy: the client
    CPU's total busy share; client_irq / client_others: the same split on the client CPU."""
    if not os.path.exists(path):
        return None
    stat = {"before": [], "after": []}
    rows = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.split(None, 1)
            if len(parts) < 2:
                continue
            if parts[0] in stat:
                fields = parts[1].split()
                stat[parts[0]].append([int(x) for x in fields[1:]])
            else:
                rows[parts[0]] = parts[1].strip()
    if len(stat["before"]) != 2 or len(stat["after"]) != 2:
        return None

    def split(before, after):
        d = [a - b for a, b in zip(after, before)]
        user, nice, system, idle, iowait, irq, softirq, steal = (d + [0] * 8)[:8]
        total = max(user + nice + system + idle + iowait + irq + softirq + steal, 1)
        busy = user + nice + system + irq + softirq + steal
        return total, busy, irq + softirq

    s_total, s_busy, s_irq = split(stat["before"][0], stat["after"][0])
    c_total, c_busy, c_irq = split(stat["before"][1], stat["after"][1])
    server_ticks = int(rows["server_process_after"]) - int(rows["server_process_before"])
    wall = s_total / clk_tck
    server = server_ticks / s_total
    wrk_seconds = bash_times(rows.get("wrk_after", "")) - bash_times(rows.get("wrk_before", ""))
    wrk = min(wrk_seconds / wall, 1.0) if wall > 0 else float("nan")
    return {
        "server": min(server, 1.0),
        "server_seconds": server_ticks / clk_tck,
        "kernel_irq": s_irq / s_total,
        "others": max(s_busy / s_total - server - s_irq / s_total, 0.0),
        "client_busy": c_busy / c_total,
        "wrk": wrk,
        "client_irq": c_irq / c_total,
        "client_others": max(c_busy / c_total - wrk - c_irq / c_total, 0.0),
    }


def unexpected(run, expect):
    """Responses that were not what the scenario expects, plus socket errors."""
    e = run["errors"]
    socket = e["connect"] + e["read"] + e["write"] + e["timeout"]
    if expect.startswith("2"):
        wrong = e["status"]  # wrk counts every status > 399
    else:
        wrong = run["requests"] - e["status"]  # a 4xx was expected for every request
    decisions = (run.get("metrics") or {}).get("decisions") or {}
    wanted = "allowed" if expect.startswith("2") else "unauthenticated"
    wrong_decisions = sum(n for d, n in decisions.items() if d != wanted)
    return wrong + socket, wrong_decisions


def size(meta, key):
    """A byte count recorded in meta.env, for the text ("1,694 bytes"; "?" in older runs)."""
    value = meta.get(key)
    return f"{int(value):,} bytes" if value else "? bytes"


def fmt_int(x):
    return f"{x:,.0f}"


def fmt_ms(us):
    ms = us / 1000.0
    if ms < 10:
        return f"{ms:.2f}"
    return f"{ms:.1f}"


def pct(x):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{100 * x:.0f} %"


def fmt_us(x):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.1f}" if x < 100 else f"{x:.0f}"


def fmt_ratio(x):
    if x is None or math.isnan(x):
        return "n/a"
    return f"{x:.2f}"


def summarise(run_dir, meta):
    scenarios = meta["scenarios"].split()
    rounds = int(meta["rounds"])
    summary = {}
    for s in scenarios:
        runs = []
        for r in range(1, rounds + 1):
            prefix = os.path.join(run_dir, "runs", f"r{r}-{s}")
            run = parse_wrk(prefix + ".wrk")
            run["round"] = r
            run["metrics"] = metrics_delta(prefix)
            run["cpu"] = parse_cpu(prefix + ".cpu", int(meta.get("clk_tck", "100")))
            if run["cpu"]:
                run["cpu"]["us_per_request"] = 1e6 * run["cpu"]["server_seconds"] / max(run["requests"], 1)
            run["unexpected"], run["wrong_decisions"] = unexpected(run, meta[f"expect.{s}"])
            runs.append(run)
        med = {
            k: statistics.median(run[k] for run in runs)
            for k in ("rps", "p50_us", "p99_us", "p999_us", "mean_us")
        }
        for k in (
            "server", "kernel_irq", "others", "client_busy", "wrk", "client_irq",
            "client_others", "us_per_request",
        ):
            vals = [run["cpu"][k] for run in runs if run["cpu"]]
            med["cpu_" + k] = statistics.median(vals) if vals else float("nan")
        cache = None
        if any(run["metrics"] for run in runs):
            hits = sum(run["metrics"]["cache_hits"] for run in runs if run["metrics"])
            misses = sum(run["metrics"]["cache_misses"] for run in runs if run["metrics"])
            cache = {"hits": hits, "misses": misses}
        summary[s] = {
            "label": meta[f"label.{s}"],
            "server": meta[f"server.{s}"],
            "expect": meta[f"expect.{s}"],
            "median": med,
            "runs": runs,
            "requests": sum(run["requests"] for run in runs),
            "unexpected": sum(run["unexpected"] for run in runs),
            "wrong_decisions": sum(run["wrong_decisions"] for run in runs),
            "wraps": sum(run.get("wraps", 0) for run in runs),
            "cache": cache,
        }
    return scenarios, summary


def ratios(stats):
    """The five headline ratios; `stats(scenario)` gives a dict with `rps` and `p99_us` (the
    medians, or one round's run)."""

    def rps(s):
        return stats(s)["rps"]

    def p99(s):
        return stats(s)["p99_us"]

    return {
        "cookie_vs_hyper": rps("p_cookie") / rps("hyper"),
        "bearer_vs_hyper": rps("p_bearer") / rps("hyper"),
        "cookie_vs_oauth2_proxy": rps("p_cookie") / rps("o_cookie"),
        "bearer_vs_oauth2_proxy": rps("p_bearer") / rps("o_bearer"),
        "p99_oauth2_proxy_over_portcullis": min(
            p99("o_cookie") / p99("p_cookie"), p99("o_bearer") / p99("p_bearer")
        ),
        "redis_vs_cookie": rps("p_redis") / rps("p_cookie"),
        "redis_vs_oauth2_proxy_redis": rps("p_redis") / rps("o_redis"),
    }


RATIO_KEYS = (
    "cookie_vs_hyper",
    "bearer_vs_hyper",
    "cookie_vs_oauth2_proxy",
    "bearer_vs_oauth2_proxy",
    "p99_oauth2_proxy_over_portcullis",
    "redis_vs_cookie",
    "redis_vs_oauth2_proxy_redis",
)


def rss(meta):
    out = {}
    for key, value in meta.items():
        if key.startswith("rss."):
            hwm, cur = (int(x) for x in value.split())
            out[key[4:]] = {"peak_kib": hwm, "current_kib": cur}
    return out


def warnings(summary):
    out = []
    cache = summary.get("p_cold", {}).get("cache")
    if cache and cache["hits"] + cache["misses"]:
        miss = cache["misses"] / (cache["hits"] + cache["misses"])
        if miss < 0.99:
            out.append(
                f"only {miss:.1%} of the unique-token requests were cache misses: the token "
                "file came round within the cache lifetime; raise BENCH_TOKENS."
            )
    for s, x in summary.items():
        if x["unexpected"] + x["wrong_decisions"]:
            out.append(
                f"{x['label']}: {x['unexpected'] + x['wrong_decisions']} unexpected responses "
                "or errors; its numbers are not comparable."
            )
    return out


def verdict(ok):
    return "met" if ok else "**missed**"


def markdown(run_dir, meta, scenarios, summary, rat, mem, svg_name):
    L = []
    quick = "--quick" in meta["command"]
    L.append("# Portcullis load benchmark" + (" (quick run)" if quick else ""))
    L.append("")
    L.append(
        "> **The absolute numbers below are from this one machine and this one run only.** "
        "Compare ratios, not req/s, with other machines. Other work on the same machine adds "
        "noise; the *others* columns under *Every round* show how much there was."
    )
    L.append("")
    L.append(f"- Date: {meta['date']}")
    L.append(f"- Command: `{meta['command']}`")
    L.append(
        f"- Machine: {meta['cpu_model']}, `nproc` = {meta['nproc']}, {meta['kernel']}; "
        f"load average before {meta['loadavg_before']}, after {meta.get('loadavg_after', '?')}"
    )
    L.append(
        f"- Load: wrk ({meta['wrk']}) `-t{meta['threads']} -c{meta['connections']}`, "
        f"{meta['duration']} s per run, {meta['rounds']} interleaved rounds (+1 s warm-up "
        f"per scenario, not counted); servers pinned to CPU {meta['server_cpu']}, wrk and "
        f"the test IdP to CPU {meta['client_cpu']} (`taskset`), nice {meta.get('nice', '0')}"
    )
    L.append(
        f"- Versions: Portcullis {meta['git']}, {meta['rustc']}, "
        f"oauth2-proxy {meta['oauth2_proxy']}"
    )
    L.append("")
    L.append(f"![throughput and latency per scenario]({svg_name})")
    L.append("")
    L.append("## Results (median over rounds)")
    L.append("")
    L.append(
        "| scenario | expected | req/s | p50 ms | p99 ms | p99.9 ms | unexpected | "
        "vs hyper | vs hyper, same request | vs oauth2-proxy | server CPU µs/req | server CPU | wrk CPU |"
    )
    L.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    hyper_rps = summary["hyper"]["median"]["rps"]
    peer = {"p_cookie": "o_cookie", "p_bearer": "o_bearer"}
    same = {"p_cookie": "hyper_cookie", "p_bearer": "hyper_bearer"}
    for s in scenarios:
        x = summary[s]
        m = x["median"]
        vs_h = f"{m['rps'] / hyper_rps:.2f}" if s != "hyper" else "1"
        vs_o = f"{m['rps'] / summary[peer[s]]['median']['rps']:.2f}" if s in peer else ""
        vs_s = (
            f"{m['rps'] / summary[same[s]]['median']['rps']:.2f}"
            if s in same and same[s] in summary
            else ""
        )
        bad = x["unexpected"] + x["wrong_decisions"]
        L.append(
            f"| {x['label']} | {x['expect']} | {fmt_int(m['rps'])} | {fmt_ms(m['p50_us'])} | "
            f"{fmt_ms(m['p99_us'])} | {fmt_ms(m['p999_us'])} | {bad} of {fmt_int(x['requests'])} | "
            f"{vs_h} | {vs_s} | {vs_o} | {fmt_us(m['cpu_us_per_request'])} | {pct(m['cpu_server'])} | {pct(m['cpu_wrk'])} |"
        )
    L.append("")
    L.append(
        "*vs hyper, same request*: against hyper-baseline sent the very same request bytes "
        f"({size(meta, 'cookie_bytes')} session cookie, {size(meta, 'bearer_bytes')} bearer "
        "token), which it ignores: what Portcullis adds beyond receiving a request that "
        "size. The targets use the bare baseline. "
        "*server CPU µs/req*: the server process' own CPU time (user + system, from "
        "`/proc/PID/stat`) divided by the requests it answered: the cost of one request, "
        "which unlike req/s hardly depends on what else the machine was doing. "
        "*server CPU* / *wrk CPU*: share of the run each was running. Neither reaches "
        "100 %: interrupt/softirq time for loopback TCP and other processes on the same "
        "CPUs take the rest (see *Every round*)."
    )
    L.append("")
    for w in warnings(summary):
        L.append(f"> **Warning:** {w}")
        L.append("")
    L.append("## Targets")
    L.append("")
    L.append("| target | value | |")
    L.append("| --- | ---: | --- |")
    for key, name, goal in (
        ("cookie_vs_hyper", "Portcullis cookie req/s ÷ hyper req/s", TARGETS["vs_hyper"]),
        ("bearer_vs_hyper", "Portcullis cached-bearer req/s ÷ hyper req/s", TARGETS["vs_hyper"]),
        ("cookie_vs_oauth2_proxy", "Portcullis cookie ÷ oauth2-proxy cookie req/s", TARGETS["vs_oauth2_proxy"]),
        ("bearer_vs_oauth2_proxy", "Portcullis bearer ÷ oauth2-proxy bearer req/s", TARGETS["vs_oauth2_proxy"]),
        ("p99_oauth2_proxy_over_portcullis", "oauth2-proxy p99 ÷ Portcullis p99 (worse of cookie, bearer)", TARGETS["p99_ratio"]),
        ("redis_vs_cookie", "Portcullis Redis store ÷ cookie store req/s", TARGETS["redis_vs_cookie"]),
        ("redis_vs_oauth2_proxy_redis", "Portcullis Redis store ÷ oauth2-proxy Redis store req/s", TARGETS["vs_oauth2_proxy"]),
    ):
        L.append(f"| {name} ≥ {goal:g} | {rat[key]:.2f} | {verdict(rat[key] >= goal)} |")
    p_peak = mem["portcullis"]["peak_kib"] / 1024.0
    L.append(
        f"| Portcullis peak RSS ≤ {TARGETS['rss_mib']:g} MiB | {p_peak:.1f} MiB | "
        f"{verdict(p_peak <= TARGETS['rss_mib'])} |"
    )
    L.append("")
    cost = {k: summary[k]["median"]["cpu_us_per_request"] for k in scenarios}
    L.append(
        "Capacity ratios from CPU cost per request (server CPU µs/req; less sensitive to other "
        "work on the machine than req/s): "
        f"hyper ÷ Portcullis cookie {cost['hyper'] / cost['p_cookie']:.2f} "
        f"(same request {cost.get('hyper_cookie', float('nan')) / cost['p_cookie']:.2f}), "
        f"hyper ÷ Portcullis bearer {cost['hyper'] / cost['p_bearer']:.2f} "
        f"(same request {cost.get('hyper_bearer', float('nan')) / cost['p_bearer']:.2f}), "
        f"oauth2-proxy ÷ Portcullis cookie {cost['o_cookie'] / cost['p_cookie']:.2f}, "
        f"oauth2-proxy ÷ Portcullis bearer {cost['o_bearer'] / cost['p_bearer']:.2f}."
    )
    L.append("")
    L.append(
        "The p99 ratio is computed per scenario pair (oauth2-proxy p99 ÷ Portcullis p99 for "
        "the session-cookie pair and for the bearer pair, each from the medians over rounds) "
        "and the **smaller** of the two is reported, so it is the worse case for Portcullis."
    )
    L.append("")
    L.append("The same ratios round by round (each round's own runs), to show the spread:")
    L.append("")
    L.append("| round | cookie ÷ hyper | bearer ÷ hyper | cookie ÷ oauth2-proxy | bearer ÷ oauth2-proxy | p99 oauth2-proxy ÷ Portcullis | Redis ÷ cookie store | Redis store ÷ oauth2-proxy's |")
    L.append("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for i in range(len(summary["hyper"]["runs"])):
        r = ratios(lambda s: summary[s]["runs"][i])
        L.append(f"| {i + 1} | " + " | ".join(f"{r[k]:.2f}" for k in RATIO_KEYS) + " |")
    L.append("")
    L.append("## Peak memory (VmHWM after all runs)")
    L.append("")
    L.append("| server | peak RSS | RSS at the end |")
    L.append("| --- | ---: | ---: |")
    for name in SERVER_NAMES:
        if name in mem:
            L.append(
                f"| {SERVER_NAMES[name]} | {mem[name]['peak_kib'] / 1024:.1f} MiB | "
                f"{mem[name]['current_kib'] / 1024:.1f} MiB |"
            )
    L.append("")
    L.append("## Every round")
    L.append("")
    L.append(
        f"CPU columns are shares of the run's wall time on the server CPU ({meta['server_cpu']}) and the "
        f"client CPU ({meta['client_cpu']}): the process under test, interrupt and softirq time "
        "(loopback TCP delivery, mostly), and everything else that ran there (other processes, steal)."
    )
    L.append("")
    L.append(
        "| scenario | round | req/s | p50 ms | p99 ms | p99.9 ms | max ms | server µs/req | "
        f"CPU {meta['server_cpu']}: server / irq / others | "
        f"CPU {meta['client_cpu']}: wrk / irq / others | "
        "Portcullis decisions | cache hit / miss (token or session) |"
    )
    L.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |")
    for s in scenarios:
        for run in summary[s]["runs"]:
            met = run["metrics"]
            dec = ", ".join(f"{k} {v}" for k, v in sorted(met["decisions"].items())) if met else ""
            cache = f"{met['cache_hits']} / {met['cache_misses']}" if met else ""
            cpu = run["cpu"] or dict.fromkeys(
                ("us_per_request", "server", "kernel_irq", "others", "wrk", "client_irq", "client_others")
            )
            L.append(
                f"| {s} | {run['round']} | {fmt_int(run['rps'])} | {fmt_ms(run['p50_us'])} | "
                f"{fmt_ms(run['p99_us'])} | {fmt_ms(run['p999_us'])} | {fmt_ms(run['max_us'])} | "
                f"{fmt_us(cpu['us_per_request'])} | "
                f"{pct(cpu['server'])} / {pct(cpu['kernel_irq'])} / {pct(cpu['others'])} | "
                f"{pct(cpu['wrk'])} / {pct(cpu['client_irq'])} / {pct(cpu['client_others'])} | "
                f"{dec} | {cache} |"
            )
    L.append("")
    profile = os.path.join(run_dir, "profile-summary.md")
    if os.path.exists(profile):
        with open(profile, encoding="utf-8") as f:
            body = f.read().split("\n", 1)[1]
        L.append("## Where the server CPU goes (`--profile`)")
        L.append(body)
    L.append("## How it is measured")
    L.append("")
    cold = summary.get("p_cold", {})
    cold_cache = cold.get("cache") or {"hits": 0, "misses": 0}
    cold_total = cold_cache["hits"] + cold_cache["misses"]
    cold_miss = cold_cache["misses"] / cold_total if cold_total else float("nan")
    L.extend(
        [
            "- Every server runs alone on one CPU; wrk runs on the other. Portcullis and "
            "hyper-baseline both use tokio's multi-thread runtime, which sizes itself from the "
            "CPU affinity mask, so each has one worker thread; oauth2-proxy's Go runtime "
            "likewise sets GOMAXPROCS to 1. hyper-baseline serves connections exactly like "
            "Portcullis (hyper-util `auto` builder, keep-alive, `TCP_NODELAY`) and answers "
            "200 with an empty body (`benches/hyper_baseline.rs`).",
            "- Portcullis runs with its defaults except `session.refresh = "
            f"\"{meta.get('session_refresh', '5m')}\"` (default 5m): a refresh during a run "
            "answers every later request with a new `Set-Cookie` that wrk, unlike a browser, "
            "never takes up, so each request would pay for re-sealing the session. "
            "oauth2-proxy's cookie refresh is off by default.",
            "- Every request carries the `X-Forwarded-*` headers Traefik adds, the same for all "
            "servers. Credentials: the session cookie from a real login through the test IdP "
            "(`/oauth2/start` → IdP → `/oauth2/callback`) for each proxy "
            f"(`Cookie` value {size(meta, 'cookie_bytes')} for Portcullis, "
            f"{size(meta, 'oauth2_cookie_bytes')} for oauth2-proxy); one RS256 access "
            f"token of {size(meta, 'bearer_bytes')} from the test IdP (`aud` = `portcullis`, "
            "`account`) for both bearer scenarios.",
            f"- (c) unique bearer per request: {int(meta['tokens']):,} pre-minted RS256 tokens, "
            "each thread walking its own share in order, against a second Portcullis process "
            f"with the same configuration except `bearer.cache_max_ttl = \"{meta.get('cold_cache_ttl', '?')}\"`: "
            "a token comes round again only after a full pass through the thread's share "
            "(much longer than that), so it is verified again. "
            f"Measured over all rounds: {cold_miss:.1%} of requests were token-cache misses "
            f"(signature checks); passes wrapped {cold.get('wraps', 0)} times.",
            "- oauth2-proxy runs as in its Traefik recipe (`--reverse-proxy --set-xauthrequest "
            "--upstream=static://202 --skip-provider-button`, PKCE S256, "
            "`--skip-jwt-bearer-tokens`), logs off, answering `/oauth2/auth` with 202. Its JOSE "
            "library rejects the whole JWKS when one key has an unknown `kty` (the test IdP "
            "publishes such a decoy on purpose), so it reads the same keys, minus the decoys, "
            "from a static copy and skips discovery.",
            "- Every scenario is checked with curl before and after the load (status, and "
            "`X-Auth-Request-Preferred-Username: alice` on success). *Unexpected* counts "
            "responses with a status other than expected (wrk counts statuses ≥ 400) and "
            "socket errors, plus, for Portcullis, forward-auth decisions from its `/metrics` "
            "other than the expected one.",
            "- req/s is requests ÷ run time; latency percentiles come from wrk's histogram "
            "(`scripts/lib/bench/wrk.lua` prints p99.9 too). Each figure in the results table is "
            "the median of that figure over the rounds. wrk is closed-loop: with every "
            "connection busy, latency is mostly queueing, and is roughly connections ÷ req/s.",
            "- Scheduling: each server and each wrk run is its own session, so with the kernel's "
            "autogroup scheduling each is a group with a fair share of its CPU against the other "
            "sessions on the machine; "
            + (
                f"their autogroup nice was {meta['nice']}, which gives them most of the CPU when "
                "other work is running."
                if meta.get("nice", "0") != "0"
                else "their nice was left at 0."
            ),
            f"- Peak RSS is `VmHWM` from `/proc/PID/status` after all runs (logins and warm-up "
            f"included). Tokens minted at {meta['mint_seconds']} s for {int(meta['tokens']):,}; "
            f"whole run {meta.get('total_seconds', '?')} s.",
        ]
    )
    L.append("")
    return "\n".join(L)


def svg_chart(meta, scenarios, summary):
    row_h = 46
    top = 70
    left_label = 270
    panel_w = 300
    gap = 70
    width = left_label + panel_w + gap + panel_w + 120
    height = top + row_h * len(scenarios) + 70
    x0 = left_label
    x1 = left_label + panel_w + gap
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="16" y="24" font-size="16" font-weight="bold">Portcullis load benchmark '
        f'({escape(meta["date"])})</text>',
        f'<text x="16" y="42" fill="#555">{escape(meta["cpu_model"])}, nproc {meta["nproc"]}; '
        f'wrk -t{meta["threads"]} -c{meta["connections"]}, {meta["duration"]} s × {meta["rounds"]} rounds, '
        f'medians; this machine only</text>',
        f'<text x="{x0}" y="{top - 8}" font-weight="bold">Throughput (req/s)</text>',
        f'<text x="{x1}" y="{top - 8}" font-weight="bold">Latency (ms, log scale)</text>',
    ]
    max_rps = max(summary[s]["median"]["rps"] for s in scenarios)
    rps_scale = panel_w / (max_rps * 1.15)
    lat_values = [
        summary[s]["median"][k] / 1000.0 for s in scenarios for k in ("p50_us", "p99_us", "p999_us")
    ]
    lo = 10 ** math.floor(math.log10(max(min(lat_values) * 0.5, 0.001)))
    hi = 10 ** math.ceil(math.log10(max(lat_values)))

    def lat_x(ms):
        ms = max(ms, lo)
        return x1 + panel_w * (math.log10(ms) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))

    for i in range(0, len(scenarios), 2):
        out.append(
            f'<rect x="8" y="{top + i * row_h}" width="{width - 16}" height="{row_h}" fill="#f3f5f8"/>'
        )
    # Latency grid at powers of ten.
    decade = lo
    while decade <= hi * 1.0001:
        gx = lat_x(decade)
        out.append(
            f'<line x1="{gx:.1f}" y1="{top}" x2="{gx:.1f}" y2="{top + row_h * len(scenarios)}" '
            f'stroke="#e5e7eb"/>'
        )
        out.append(
            f'<text x="{gx:.1f}" y="{top + row_h * len(scenarios) + 14}" text-anchor="middle" '
            f'fill="#555">{decade:g}</text>'
        )
        decade *= 10
    for i, s in enumerate(scenarios):
        x = summary[s]
        y = top + i * row_h
        out.append(
            f'<text x="{left_label - 10}" y="{y + row_h / 2 + 4:.1f}" text-anchor="end">'
            f"{escape(x['label'])}</text>"
        )
        w = x["median"]["rps"] * rps_scale
        colour = SERVER_COLOURS.get(x["server"], "#444")
        out.append(
            f'<rect x="{x0}" y="{y + 10}" width="{w:.1f}" height="{row_h - 20}" fill="{colour}"/>'
        )
        out.append(
            f'<text x="{x0 + w + 4:.1f}" y="{y + row_h / 2 + 4:.1f}">{fmt_int(x["median"]["rps"])}</text>'
        )
        for j, (key, name) in enumerate((("p50_us", "p50"), ("p99_us", "p99"), ("p999_us", "p999"))):
            ms = x["median"][key] / 1000.0
            by = y + 8 + j * 10
            out.append(
                f'<rect x="{x1}" y="{by}" width="{lat_x(ms) - x1:.1f}" height="8" '
                f'fill="{PERCENTILE_COLOURS[name]}"/>'
            )
            if j == 2:
                out.append(
                    f'<text x="{lat_x(ms) + 4:.1f}" y="{by + 8}" font-size="10" fill="#333">'
                    f'{fmt_ms(x["median"]["p50_us"])} / {fmt_ms(x["median"]["p99_us"])} / '
                    f'{fmt_ms(ms * 1000)}</text>'
                )
    ly = top + row_h * len(scenarios) + 36
    lx = x1
    for name, text in (("p50", "p50"), ("p99", "p99"), ("p999", "p99.9")):
        out.append(f'<rect x="{lx}" y="{ly - 9}" width="10" height="10" fill="{PERCENTILE_COLOURS[name]}"/>')
        out.append(f'<text x="{lx + 14}" y="{ly}">{text}</text>')
        lx += 60
    lx = x0
    for server in ("hyper", "portcullis", "portcullis_cold", "oauth2_proxy"):
        if any(summary[s]["server"] in (server, server + "_redis") for s in scenarios):
            label = {"portcullis_cold": "Portcullis, cold"}.get(server, SERVER_NAMES[server])
            out.append(f'<rect x="{lx - 250}" y="{ly - 9}" width="10" height="10" fill="{SERVER_COLOURS[server]}"/>')
            out.append(f'<text x="{lx - 236}" y="{ly}">{escape(label)}</text>')
            lx += 120 if server != "portcullis_cold" else 110
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir")
    p.add_argument("--write", metavar="PREFIX", help="also write PREFIX.md and PREFIX.svg")
    a = p.parse_args()

    meta = read_meta(a.run_dir)
    scenarios, summary = summarise(a.run_dir, meta)
    rat = ratios(lambda s: summary[s]["median"])
    mem = rss(meta)

    svg_name = os.path.basename(a.write) + ".svg" if a.write else "report.svg"
    md = markdown(a.run_dir, meta, scenarios, summary, rat, mem, svg_name)
    svg = svg_chart(meta, scenarios, summary)
    with open(os.path.join(a.run_dir, "report.md"), "w", encoding="utf-8") as f:
        f.write(md.replace(f"]({svg_name})", "](report.svg)"))
    with open(os.path.join(a.run_dir, "report.svg"), "w", encoding="utf-8") as f:
        f.write(svg)
    with open(os.path.join(a.run_dir, "summary.json"), "w", encoding="utf-8") as f:
        json.dump({"ratios": rat, "rss": mem, "scenarios": summary, "meta": meta}, f, indent=1)
    if a.write:
        with open(a.write + ".md", "w", encoding="utf-8") as f:
            f.write(md)
        shutil.copyfile(os.path.join(a.run_dir, "report.svg"), a.write + ".svg")
        print(f"report: wrote {a.write}.md and {a.write}.svg", file=sys.stderr)

    for w in warnings(summary):
        print(f"WARNING: {w}", file=sys.stderr)
    # A short human summary on stderr, the machine-readable line last on stdout.
    for s in scenarios:
        m = summary[s]["median"]
        print(
            f"  {summary[s]['label']:<44} {m['rps']:>10,.0f} req/s  p50 {fmt_ms(m['p50_us'])} ms"
            f"  p99 {fmt_ms(m['p99_us'])} ms  p99.9 {fmt_ms(m['p999_us'])} ms"
            f"  unexpected {summary[s]['unexpected'] + summary[s]['wrong_decisions']}",
            file=sys.stderr,
        )
    for name, v in mem.items():
        print(f"  peak RSS {SERVER_NAMES[name]}: {v['peak_kib'] / 1024:.1f} MiB", file=sys.stderr)
    print(
        "ratios: "
        + " ".join(
            f"{k}={fmt_ratio(rat[k])}"
            for k in (
                "cookie_vs_hyper",
                "bearer_vs_hyper",
                "cookie_vs_oauth2_proxy",
                "bearer_vs_oauth2_proxy",
                "p99_oauth2_proxy_over_portcullis",
            )
        )
    )


if __name__ == "__main__":
    main()
