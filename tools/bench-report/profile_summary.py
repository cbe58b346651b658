#!/usr/bin/env python3
"""Turn the `scripts/bench --profile` perf reports into CPU microseconds per request.

    profile_summary.py RUN_DIR

For every profiled scenario it takes, from RUN_DIR/runs/profile-<scenario>.children.txt
(`perf report --children`), the inclusive share of a few kernel call-graph nodes: sending
the response (on loopback this includes TCP delivery to wrk and waking it, work a real
network card moves to the receiver), reading the request, epoll. From
profile-<scenario>.txt (`perf report --no-children`) it sums the self time of user-space
symbols by group (HTTP parsing, Portcullis' code, caches, crypto, ...). Each share is
multiplied by the server's measured CPU time per request in that same run
(profile-<scenario>.cpu / .wrk); the table goes to RUN_DIR/profile-summary.md and stdout.
Standard library only.
"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report  # noqa: E402  (same directory)

# Kernel side: (label, regex on the symbol), inclusive share from the call graph. Kernel
# stacks unwind reliably, and the libc wrappers are the leaf-most user frames, so these hold
# up under the release build's LTO.
KERNEL_NODES = [
    ("send response: writev", r"^__GI___writev$"),
    ("  of which loopback delivery to wrk (softirq)", r"^net_rx_action$"),
    ("  of which waking wrk (sock_def_readable)", r"^sock_def_readable$"),
    ("read request: recv()", r"^__libc_recv$"),
    ("epoll_wait", r"^epoll_wait$"),
]

# User space: (label, regex) over **self** time, summed. With fat LTO most functions are
# inlined into their callers, so inclusive shares of Rust frames are unreliable (DWARF
# unwinding loses frames); self time is always charged to the symbol that ran. Code inlined
# into another crate's function counts for that crate. First match wins.
USER_GROUPS = [
    ("HTTP/1 parse (httparse, hyper h1 parse, request header map)",
     r"^httparse::|^<hyper::proto::h1::role::Server as hyper::proto::h1::Http1Transaction>::parse|^http::header::(map|name)::"),
    ("Portcullis' own code (portcullis::*)", r"^portcullis::|^<portcullis::"),
    ("verified caches (moka, crossbeam)", r"^moka::|^<moka::|^crossbeam"),
    ("crypto (aws-lc: AES-GCM, RSA, EC)", r"aws_lc|^aes_|^aead_|^gcm_|^bn_|^BN_|^rsa_|^RSA_|^ec_|^EC_|^p256|^sha|^SHA|^ed25519|^x25519|^CRYPTO_|^OPENSSL_"),
    ("JSON, base64, zstd", r"^serde_json::|^<serde_json::|^base64::|^ZSTD|^HUF_|^FSE_"),
    ("tokio, hyper connection and response, timers", r"^tokio::|^<tokio::|^hyper|^<hyper|^mio::|^<mio::|^bytes::|^<bytes::|^http::|^<http::|^futures"),
    ("malloc + free", r"malloc|free|^_int_|^unlink_chunk|^cfree"),
    ("memcpy, memcmp, clock_gettime (libc, vDSO)", r"^__mem|^__vdso|clock_gettime|^__GI___pthread"),
]

LINE = re.compile(r"^\s*([\d.]+)%\s+([\d.]+)%\s+\S+\s+\S+\s+\[[.k]\]\s+(.*)$")
SELF_LINE = re.compile(r"^\s*([\d.]+)%\s+\S+\s+(\S+)\s+\[([.k])\]\s+(.*)$")


def shares(path):
    """Largest inclusive share per symbol (perf lists inlined copies separately)."""
    out = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = LINE.match(line)
            if m:
                sym = m.group(3).strip()
                out[sym] = max(out.get(sym, 0.0), float(m.group(1)))
    return out


def self_shares(path):
    """[(percent, is_kernel, symbol)] from a `perf report --no-children` listing."""
    out = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = SELF_LINE.match(line)
            if m:
                out.append((float(m.group(1)), m.group(3) == "k", m.group(4).strip()))
    return out


def node_share(table, pattern):
    rx = re.compile(pattern)
    return max((v for sym, v in table.items() if rx.search(sym)), default=None)


def group_shares(rows):
    """Self-time percent per USER_GROUPS label, plus the user-space rest and the kernel total."""
    compiled = [(label, re.compile(rx)) for label, rx in USER_GROUPS]
    out = {label: 0.0 for label, _ in USER_GROUPS}
    out["other user space"] = 0.0
    out["kernel (all)"] = 0.0
    for pct, kernel, sym in rows:
        if kernel:
            out["kernel (all)"] += pct
            continue
        for label, rx in compiled:
            if rx.search(sym):
                out[label] += pct
                break
        else:
            out["other user space"] += pct
    return out


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
    groups = {}
    for s in scenarios:
        prefix = os.path.join(run_dir, "runs", f"profile-{s}")
        cpu = report.parse_cpu(prefix + ".cpu", clk)
        wrk = report.parse_wrk(prefix + ".wrk")
        per_req[s] = 1e6 * cpu["server_seconds"] / max(wrk["requests"], 1)
        tables[s] = shares(prefix + ".children.txt")
        groups[s] = group_shares(self_shares(prefix + ".txt"))
    L = [
        f"# Where the server CPU goes, µs per request ({meta['date']})",
        "",
        "From `perf record --call-graph dwarf` on the server during one extra run per "
        "scenario (`scripts/bench --profile`), × the server's CPU time per request in that "
        "run. Kernel rows: inclusive share of the call-graph node (indented rows are parts "
        "of the row above). User-space rows: **self** time of the symbols in each group "
        "(the release build inlines across crates, so inclusive shares of Rust frames are "
        "not reliable); with the kernel total they add up to the whole, give or take symbols "
        "under perf's 0.05 % listing limit.",
        "",
        "| | " + " | ".join(scenarios) + " |",
        "| --- |" + " ---: |" * len(scenarios),
        "| **server CPU per request** | "
        + " | ".join(f"**{per_req[s]:.2f}**" for s in scenarios)
        + " |",
    ]
    def row(label, share_of):
        cells = [
            "" if share_of(s) is None else f"{per_req[s] * share_of(s) / 100:.2f}"
            for s in scenarios
        ]
        L.append(f"| {label.replace('  ', '&nbsp;&nbsp;')} | " + " | ".join(cells) + " |")

    L.append("| *kernel, inclusive* |" + " |" * len(scenarios))
    for label, pattern in KERNEL_NODES:
        row(label, lambda s, p=pattern: node_share(tables[s], p))
    L.append("| *user space, self time* |" + " |" * len(scenarios))
    for label in list(groups[scenarios[0]]):
        if label == "kernel (all)":
            continue
        row(label, lambda s, k=label: groups[s][k])
    row("*kernel, all (self time)*", lambda s: groups[s]["kernel (all)"])
    L.append("")
    text = "\n".join(L)
    with open(os.path.join(run_dir, "profile-summary.md"), "w", encoding="utf-8") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
