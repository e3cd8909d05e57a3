#!/usr/bin/env python3
"""Several `nms server`s on one machine, with `nms bench --server` spread across them.

Starts SERVERS servers on loopback ports (each its own data directory), then runs one
`nms bench --server` per server at the same time, each with AGENTS/SERVERS simulated agents
reporting RATE times a second for SECONDS. Each server's CPU (from /proc, over the benches'
run) and RSS are read here; each bench prints what its server stored, lost and doubled.
Prints one JSON object per server and a total.

Usage: scripts/scale-servers.py [path/to/nms] [servers] [agents] [rate] [seconds]
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

NMS = sys.argv[1] if len(sys.argv) > 1 else "target/release/nms"
SERVERS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
AGENTS = int(sys.argv[3]) if len(sys.argv) > 3 else 9000
RATE = float(sys.argv[4]) if len(sys.argv) > 4 else 1.0
SECONDS = float(sys.argv[5]) if len(sys.argv) > 5 else 20.0
TICKS = os.sysconf("SC_CLK_TCK")


def free_port(kind):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def main():
    work = tempfile.mkdtemp(prefix="nms-scale-")
    servers = []
    per = AGENTS // SERVERS
    heartbeat = max(1000, per // 10)
    for i in range(SERVERS):
        data = os.path.join(work, f"server-{i}")
        s = {"i": i, "nettask": free_port(socket.SOCK_DGRAM),
             "http": f"127.0.0.1:{free_port(socket.SOCK_STREAM)}", "data": data}
        log = open(os.path.join(work, f"server-{i}.log"), "w")
        s["proc"] = subprocess.Popen(
            [NMS, "server", "--listen", "127.0.0.1", "--nettask-port", str(s["nettask"]),
             "--alertflow-port", str(free_port(socket.SOCK_STREAM)), "--http", s["http"],
             "--data-dir", data, "--heartbeat-ms", str(heartbeat), "--max-agents", "1000000",
             "--new-agents-per-second", "1000000"],
            stdout=log, stderr=log, env={**os.environ, "NO_COLOR": "1"})
        servers.append(s)
    for s in servers:
        while True:
            try:
                urllib.request.urlopen(f"http://{s['http']}/api/status", timeout=1)
                break
            except Exception:
                time.sleep(0.1)
    benches = []
    for s in servers:
        s["rss_before"] = rss_bytes(s["proc"].pid)
        out = open(os.path.join(work, f"bench-{s['i']}.json"), "w")
        benches.append(subprocess.Popen(
            [NMS, "bench", "--server", f"127.0.0.1:{s['nettask']}", "--http", s["http"],
             "--api-token-file", os.path.join(s["data"], "api-token"),
             "--agents", str(per), "--rate", str(RATE), "--seconds", str(SECONDS),
             "--ceiling-seconds", "0.5", "--json"],
            stdout=out, stderr=subprocess.DEVNULL))
        s["cpu_before"] = cpu_seconds(s["proc"].pid)
    started = time.time()
    for b in benches:
        b.wait()
    elapsed = time.time() - started
    results = []
    try:
        for s in servers:
            cpu = cpu_seconds(s["proc"].pid) - s["cpu_before"]
            with open(os.path.join(work, f"bench-{s['i']}.json")) as f:
                bench = json.loads(f.read() or "{}")
            r = {"server": s["i"], "agents": per, "rate": RATE,
                 "reports_per_sec": round(bench.get("reports_per_sec", 0)),
                 "lost": bench.get("lost"), "duplicated": bench.get("duplicated"),
                 "ack_p99_ms": bench.get("ack_p99_ms"),
                 "server_cpu_percent_over_run": round(cpu / elapsed * 100, 1),
                 "server_rss_mib": round(rss_bytes(s["proc"].pid) / 2**20, 1),
                 "server_rss_before_mib": round(s["rss_before"] / 2**20, 1)}
            results.append(r)
            print(json.dumps(r), flush=True)
    finally:
        for s in servers:
            s["proc"].kill()
    print(json.dumps({
        "servers": SERVERS, "agents": per * SERVERS, "rate": RATE,
        "reports_per_sec": sum(r["reports_per_sec"] for r in results),
        "lost": sum(r["lost"] or 0 for r in results),
        "duplicated": sum(r["duplicated"] or 0 for r in results),
        "server_cpu_percent_sum": round(sum(r["server_cpu_percent_over_run"] for r in results), 1),
        "load_average": os.getloadavg()[0], "work_dir": work}))


if __name__ == "__main__":
    main()
