#!/usr/bin/env python3
"""Connection flood against a running Portcullis: what idle keep-alive and slowloris
connections cost it, whether normal clients still get answers, and whether the memory comes
back once the flood ends.

    tools/conn-flood/conn_flood.py --url http://127.0.0.1:PORT --pid PID [--idle N] [--slowloris N]
                  [--hold SECONDS] [--settle SECONDS] [--json FILE]

Phases, each sampling the server's RSS (/proc/PID/status VmRSS):
  baseline -> N idle keep-alive connections (one GET /ping answered on each, then left open)
  -> M slowloris connections (a request head that never ends, a byte every second)
  -> normal clients during the flood: 200 sequential GET /ping on fresh connections, p50/p99
  -> every flood connection closed -> RSS after --settle seconds.
Connections the server refuses or resets are counted, not fatal: beyond a connection limit
they are expected. Only 127.0.0.1 is ever contacted. Prints one JSON object (also to --json).
"""

import argparse
import asyncio
import json
import sys
import time
import urllib.parse


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def connect(host, port, stats):
    """A connection, or None (counted as refused) if it isn't accepted within 10 s."""
    try:
        return await asyncio.wait_for(asyncio.open_connection(host, port), 10)
    except Exception:
        stats["refused"] += 1
        return None


async def idle_connection(host, port, hold, stats):
    conn = await connect(host, port, stats)
    if conn is None:
        return
    r, w = conn
    try:
        w.write(b"GET /ping HTTP/1.1\r\nHost: flood\r\n\r\n")
        await w.drain()
        head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 10)
        if b" 200 " in head.split(b"\r\n", 1)[0]:
            stats["answered"] += 1
            await asyncio.wait_for(r.readexactly(2), 5)  # "OK"
        await hold.wait()
    except Exception:
        stats["dropped"] += 1
    finally:
        w.close()


async def slowloris_connection(host, port, hold, stats):
    conn = await connect(host, port, stats)
    if conn is None:
        return
    r, w = conn
    try:
        w.write(b"GET /ping HTTP/1.1\r\nHost: flood\r\n")
        await w.drain()
        stats["opened"] += 1
        while not hold.is_set():
            w.write(b"X")
            await w.drain()
            try:
                await asyncio.wait_for(hold.wait(), 1)
            except asyncio.TimeoutError:
                pass
            if r.at_eof():
                stats["closed_by_server"] += 1
                return
    except Exception:
        stats["closed_by_server"] += 1
    finally:
        w.close()


async def normal_clients(host, port, count):
    latencies, errors = [], 0
    for _ in range(count):
        t = time.monotonic()
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection(host, port), 5)
            w.write(b"GET /ping HTTP/1.1\r\nHost: normal\r\nConnection: close\r\n\r\n")
            await w.drain()
            head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 5)
            w.close()
            if b" 200 " not in head.split(b"\r\n", 1)[0]:
                errors += 1
                continue
            latencies.append((time.monotonic() - t) * 1000)
        except Exception:
            errors += 1
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else None
    return {"ok": len(latencies), "errors": errors, "p50_ms": pick(0.5), "p99_ms": pick(0.99)}


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--idle", type=int, default=4000)
    ap.add_argument("--slowloris", type=int, default=0)
    ap.add_argument("--hold", type=float, default=3)
    ap.add_argument("--settle", type=float, default=15)
    ap.add_argument("--json")
    a = ap.parse_args()
    u = urllib.parse.urlsplit(a.url)
    host, port = u.hostname, u.port
    if host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("conn_flood.py only targets loopback")
    out = {"idle": a.idle, "slowloris": a.slowloris, "rss_kib": {"baseline": rss_kib(a.pid)}}
    hold = asyncio.Event()
    idle_stats = {"answered": 0, "refused": 0, "dropped": 0}
    slow_stats = {"opened": 0, "refused": 0, "closed_by_server": 0}
    tasks = []
    for i in range(a.idle):
        tasks.append(asyncio.create_task(idle_connection(host, port, hold, idle_stats)))
        if i % 200 == 199:
            await asyncio.sleep(0.05)
    for _ in range(a.slowloris):
        tasks.append(asyncio.create_task(slowloris_connection(host, port, hold, slow_stats)))
    await asyncio.sleep(a.hold)
    out["rss_kib"]["flood"] = rss_kib(a.pid)
    out["normal_during_flood"] = await normal_clients(host, port, 200)
    out["rss_kib"]["flood_peak"] = max(out["rss_kib"]["flood"], rss_kib(a.pid))
    hold.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(a.settle)
    out["rss_kib"]["after"] = rss_kib(a.pid)
    out["idle_connections"] = idle_stats
    out["slowloris_connections"] = slow_stats
    flood = a.idle + a.slowloris
    grown = out["rss_kib"]["flood_peak"] - out["rss_kib"]["baseline"]
    out["kib_per_connection"] = round(grown / flood, 1) if flood else None
    text = json.dumps(out)
    print(text)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    asyncio.run(main())
