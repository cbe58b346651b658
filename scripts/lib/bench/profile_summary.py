#!/usr/bin/env python3
"""Turn the `scripts/bench --profile` perf reports into CPU microseconds per request.

    profile_summary.py RUN_DIR

For every RUN_DIR/runs/profile-<scenario>.children.txt (`perf report --children`), takes
the inclusive share of a few call-graph nodes and multiplies it by the server's measured
CPU time per request in that same run (profile-<scenario>.cpu / .wrk), then writes
RUN_DIR/profile-summary.md and prints it. The nodes are chosen to answer "where does a
forward-auth request's CPU go": sending the response (on loopback this includes TCP
delivery to wrk and waking it, work a real network card moves to the receiver), reading
and parsing the request, and the parts of Portcullis' handler. Standard library only.
"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report  # noqa: E402  (same directory)

# (label, regex on the symbol). A node's share is the largest inclusive share of any
# symbol matching it (perf lists inlined copies separately).
NODES = [
    ("send response: writev", r"^__GI___writev$"),
    ("  of which loopback delivery to wrk (softirq)", r"^net_rx_action$"),
    ("  of which waking wrk (sock_def_readable)", r"^sock_def_readable$"),
    ("read + parse request (hyper poll_read_head)", r"^hyper::proto::h1::conn::Conn<.*>::poll_read_head$"),
    ("  of which recv()", r"^__libc_recv$"),
    ("  of which HTTP/1 parse", r"^<hyper::proto::h1::role::Server as hyper::proto::h1::Http1Transaction>::parse$"),
    ("epoll_wait", r"^epoll_wait$"),
    # Not http::handle or forward_auth: their async frames are not always found above the
    # work they poll (DWARF unwinding through deep crypto stacks gives up), so their
    # inclusive share undercounts.
    ("Portcullis access decision (Gate::check)", r"^portcullis::access::Gate::check::\{\{closure\}\}$"),
    ("  session cookie read", r"^portcullis::session::cookies::SessionCookies::read$"),
    ("    unseal (Sealer::open)", r"^portcullis::seal::Sealer::open$"),
    ("    base64 decode", r"^base64::engine::Engine::decode::inner$"),
    ("    AES-GCM open", r"^aead_aes_gcm_open_gather$"),
    ("    JSON (serde_json from_trait)", r"^serde_json::de::from_trait$"),
    ("  token cache get (moka)", r"^moka::sync::cache::Cache<.*>::get$"),
    ("  token cache insert (moka)", r"^moka::sync::cache::Cache<.*>::insert$"),
    ("  moka housekeeping", r"^moka::common::concurrent::housekeeper::Housekeeper::try_run_pending_tasks$"),
    ("  JWT parse (UnverifiedToken::parse)", r"^portcullis::jwt::UnverifiedToken::parse$"),
    ("  RSA signature check", r"^portcullis::jwt::UnverifiedToken::verify_signature$"),
    ("  response headers (forward_auth::put)", r"^portcullis::http::forward_auth::put$"),
    ("  groups header", r"^portcullis::identity::Identity::groups_header$"),
    ("malloc + free", r"^__GI___libc_(malloc|free) \(inlined\)$"),
]

LINE = re.compile(r"^\s*([\d.]+)%\s+([\d.]+)%\s+\S+\s+\S+\s+\[[.k]\]\s+(.*)$")


def shares(path):
    out = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = LINE.match(line)
            if m:
                sym = m.group(3).strip()
                out.setdefault(sym, []).append(float(m.group(1)))
    return out


def node_share(table, pattern):
    rx = re.compile(pattern)
    total = 0.0
    best_by_symbol = {sym: max(v) for sym, v in table.items() if rx.search(sym)}
    if not best_by_symbol:
        return None
    if pattern.startswith("^__GI___libc_(malloc|free)"):
        total = sum(best_by_symbol.values())  # malloc and free are separate nodes
    else:
        total = max(best_by_symbol.values())
    return total


def main():
    run_dir = sys.argv[1]
    meta = report.read_meta(run_dir)
    clk = int(meta.get("clk_tck", "100"))
    scenarios = [
        s
        for s in meta["scenarios"].split()
        if os.path.exists(os.path.join(run_dir, "runs", f"profile-{s}.children.txt"))
    ]
    if not scenarios:
        sys.exit("profile_summary: no profile-*.children.txt (run scripts/bench --profile)")
    per_req = {}
    tables = {}
    for s in scenarios:
        prefix = os.path.join(run_dir, "runs", f"profile-{s}")
        cpu = report.parse_cpu(prefix + ".cpu", clk)
        wrk = report.parse_wrk(prefix + ".wrk")
        per_req[s] = 1e6 * cpu["server_seconds"] / max(wrk["requests"], 1)
        tables[s] = shares(prefix + ".children.txt")
    L = [
        f"# Where the server CPU goes, µs per request ({meta['date']})",
        "",
        "From `perf record --call-graph dwarf` on the server during one extra run per "
        "scenario (`scripts/bench --profile`): inclusive share of each call-graph node × "
        "the server's CPU time per request in that run. Indented rows are parts of the row "
        "above; rows do not add up exactly (sampling, and nodes overlap).",
        "",
        "| | " + " | ".join(scenarios) + " |",
        "| --- |" + " ---: |" * len(scenarios),
        "| **server CPU per request** | "
        + " | ".join(f"**{per_req[s]:.2f}**" for s in scenarios)
        + " |",
    ]
    for label, pattern in NODES:
        cells = []
        any_value = False
        for s in scenarios:
            share = node_share(tables[s], pattern)
            if share is None:
                cells.append("")
            else:
                any_value = True
                cells.append(f"{per_req[s] * share / 100:.2f}")
        if any_value:
            L.append(f"| {label.replace('  ', '&nbsp;&nbsp;')} | " + " | ".join(cells) + " |")
    L.append("")
    text = "\n".join(L)
    with open(os.path.join(run_dir, "profile-summary.md"), "w", encoding="utf-8") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
