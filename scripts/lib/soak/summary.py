#!/usr/bin/env python3
"""Summary and verdict of a scripts/soak run, from its per-second CSV.

    summary.py SOAK_CSV --warmup SECONDS [--wall SECONDS] [--metrics BEFORE AFTER]

Row i of the CSV is the i-th one-second slice, so the warm-up is the first SECONDS rows.
--metrics: Portcullis' /metrics before and after the load, for the server's count of
forward-auth decisions (shown, not judged: the client-side counts decide).

Prints the summary to stderr and, as the last line on stdout,
    soak: result=pass|fail requests=N seconds=N non2xx=N socket_errors=N stalls=N
          rss_warm_kib=N rss_end_kib=N growth_pct=N fds_max=N p99_max_ms=N p99_median_ms=N
(one line). Exit status 0 only when every check passes (the rule is in scripts/soak's
header); otherwise 1, with one "FAILED: ..." line per failed check on stderr.
"""

import argparse
import csv
import statistics
import sys

WINDOW = 5  # samples in each RSS median
MAX_GROWTH = 0.10


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("--warmup", type=float, required=True)
    ap.add_argument("--wall", type=float, default=None)
    ap.add_argument("--metrics", nargs=2, metavar=("BEFORE", "AFTER"))
    args = ap.parse_args()

    with open(args.csv, newline="") as f:
        rows = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]
    if not rows:
        print("soak: no samples", file=sys.stderr)
        print("soak: result=fail requests=0 seconds=0")
        return 1

    requests = int(sum(r["requests"] for r in rows))
    non2xx = int(sum(r["non2xx"] for r in rows))
    socket_errors = int(sum(r["socket_errors"] for r in rows))
    stalls = [r["t"] for r in rows if r["cookie_rps"] == 0 or r["bearer_rps"] == 0]
    skip = int(args.warmup)
    after = rows[skip:]
    warm = after[:WINDOW]
    end = rows[-WINDOW:]
    rss_warm = statistics.median(r["rss_kib"] for r in warm) if warm else 0
    rss_end = statistics.median(r["rss_kib"] for r in end)
    growth = (rss_end / rss_warm - 1) * 100 if rss_warm else float("inf")
    fds_max = int(max(r["fds"] for r in rows))
    p99s = {w: [r[f"{w}_p99_ms"] for r in rows] for w in ("cookie", "bearer")}
    all_p99 = p99s["cookie"] + p99s["bearer"]
    rps = {w: statistics.median(r[f"{w}_rps"] for r in rows) for w in ("cookie", "bearer")}

    out = sys.stderr
    wall = f", {args.wall:.0f} s wall clock" if args.wall else ""
    print(f"soak summary ({len(rows)} one-second slices{wall}):", file=out)
    print(f"  requests       {requests} (median per second: cookie {rps['cookie']:.0f}, "
          f"bearer {rps['bearer']:.0f})", file=out)
    print(f"  non-2xx        {non2xx}", file=out)
    print(f"  socket errors  {socket_errors} (connect, read, write, timeout)", file=out)
    print(f"  stalled slices {len(stalls)} (a wrk that completed no request in its second)",
          file=out)
    print(f"  RSS            {rss_warm:.0f} KiB after the {args.warmup:.0f} s warm-up "
          f"(median of seconds {skip + 1}..{skip + len(warm)}), "
          f"{rss_end:.0f} KiB at the end (median of the last {len(end)}): {growth:+.1f} %; "
          f"min {min(r['rss_kib'] for r in rows):.0f}, max {max(r['rss_kib'] for r in rows):.0f} KiB",
          file=out)
    print(f"  open fds       max {fds_max}, first {rows[0]['fds']:.0f}, last {rows[-1]['fds']:.0f}",
          file=out)
    for w in ("cookie", "bearer"):
        print(f"  p99 {w:<7}    max {max(p99s[w]):.3f} ms, median {statistics.median(p99s[w]):.3f} ms "
              f"over seconds", file=out)

    if args.metrics:
        before, after_m = (forward_auth_decisions(p) for p in args.metrics)
        delta = {d: after_m.get(d, 0) - before.get(d, 0) for d in sorted(set(before) | set(after_m))}
        shown = ", ".join(f"{d} {n:+d}" for d, n in delta.items() if n) or "none"
        print(f"  server side    forward-auth decisions during the load: {shown} "
              f"(wrk drops the requests in flight when a slice ends: "
              f"{delta.get('allowed', 0) - requests} here)", file=out)

    failed = []
    if non2xx:
        failed.append(f"{non2xx} non-2xx responses (must be 0)")
    if socket_errors:
        failed.append(f"{socket_errors} socket errors (must be 0)")
    if stalls:
        failed.append(f"{len(stalls)} stalled slices, first at t={stalls[0]:.1f} s (must be 0)")
    if len(after) < 2 * WINDOW:
        failed.append(f"only {len(after)} samples after the warm-up, need {2 * WINDOW}")
    elif rss_end > (1 + MAX_GROWTH) * rss_warm:
        failed.append(f"RSS grew {growth:.1f} % after the warm-up ({rss_warm:.0f} -> {rss_end:.0f} KiB, "
                      f"limit {MAX_GROWTH * 100:.0f} %)")
    for why in failed:
        print(f"soak: FAILED: {why}", file=out)
    if not failed:
        print("soak: passed", file=out)

    print(f"soak: result={'fail' if failed else 'pass'} requests={requests} seconds={len(rows)} "
          f"non2xx={non2xx} socket_errors={socket_errors} stalls={len(stalls)} "
          f"rss_warm_kib={rss_warm:.0f} rss_end_kib={rss_end:.0f} growth_pct={growth:.1f} "
          f"fds_max={fds_max} p99_max_ms={max(all_p99):.3f} "
          f"p99_median_ms={statistics.median(all_p99):.3f}")
    return 1 if failed else 0


def forward_auth_decisions(path: str) -> dict:
    """portcullis_requests_total{endpoint="forward_auth",decision=D} N -> {D: N}"""
    found = {}
    with open(path) as f:
        for line in f:
            if line.startswith('portcullis_requests_total{') and 'endpoint="forward_auth"' in line:
                labels, value = line.rsplit(" ", 1)
                decision = labels.split('decision="', 1)[1].split('"', 1)[0]
                found[decision] = found.get(decision, 0) + int(float(value))
    return found


if __name__ == "__main__":
    sys.exit(main())
