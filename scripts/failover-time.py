#!/usr/bin/env python3
"""How fast an agent's reports move to the second server when the first is killed.

Starts two `nms server`s on loopback with the same task file (CPU, RAM and a ping of
127.0.0.1 every second) and `nms agent --server A,B`; then, ROUNDS times, kills the server the
agent uses (SIGKILL), starts it again on its data, and measures the time from the kill until
the other server has stored a report of the agent made after the kill (polled every 20 ms
through its HTTP API). Prints one JSON object per round and a summary.

Usage: scripts/failover-time.py [path/to/nms] [rounds]
"""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

NMS = sys.argv[1] if len(sys.argv) > 1 else "target/release/nms"
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
AGENT = "failover-agent"


def free_port(kind):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def newest_report_ms(http):
    url = f"http://{http}/api/metrics?agent={AGENT}&limit=1"
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            reports = json.load(r)
        return reports[-1]["time_ms"] if reports else 0
    except Exception:
        return None


def main():
    work = tempfile.mkdtemp(prefix="nms-failover-")
    task = os.path.join(work, "task.json")
    with open(task, "w") as f:
        json.dump({"task_id": "failover", "frequency": 1, "devices": [{
            "device_id": AGENT,
            "device_metrics": {"cpu_usage": True, "ram_usage": True, "interface_stats": ["lo"]},
            "link_metrics": {"latency": {"tool": "ping", "destination": "127.0.0.1",
                                         "packet_count": 1, "frequency": 1}}}]}, f)
    servers = []
    for name in ("a", "b"):
        servers.append({
            "name": name,
            "nettask": free_port(socket.SOCK_DGRAM),
            "alertflow": free_port(socket.SOCK_STREAM),
            "http": f"127.0.0.1:{free_port(socket.SOCK_STREAM)}",
            "data": os.path.join(work, name),
            "proc": None,
        })

    def start(s):
        log = open(os.path.join(work, f"server-{s['name']}.log"), "a")
        s["proc"] = subprocess.Popen(
            [NMS, "server", "--listen", "127.0.0.1", "--nettask-port", str(s["nettask"]),
             "--alertflow-port", str(s["alertflow"]), "--http", s["http"],
             "--data-dir", s["data"], "--config", task],
            stdout=log, stderr=log, env={**os.environ, "NO_COLOR": "1"})
        while newest_report_ms(s["http"]) is None:
            time.sleep(0.05)

    for s in servers:
        start(s)
    agent_log = open(os.path.join(work, "agent.log"), "w")
    agent = subprocess.Popen(
        [NMS, "agent", "--server", ",".join(f"127.0.0.1:{s['nettask']}" for s in servers),
         "--id", AGENT, "--data-dir", os.path.join(work, "agent")],
        stdout=agent_log, stderr=agent_log, env={**os.environ, "NO_COLOR": "1"})
    results = []
    try:
        # The agent registers with the first.
        while not newest_report_ms(servers[0]["http"]):
            time.sleep(0.1)
        time.sleep(3)
        using = 0
        for round_ in range(ROUNDS):
            victim, other = servers[using], servers[1 - using]
            before = newest_report_ms(other["http"]) or 0
            killed_ms = time.time() * 1000
            victim["proc"].send_signal(signal.SIGKILL)
            victim["proc"].wait()
            while True:
                newest = newest_report_ms(other["http"]) or 0
                if newest > before:
                    break
                if time.time() * 1000 - killed_ms > 60_000:
                    raise SystemExit("no report reached the other server within 60 s")
                time.sleep(0.02)
            moved_s = (time.time() * 1000 - killed_ms) / 1000
            result = {"round": round_ + 1, "killed": victim["name"], "moved_to": other["name"],
                      "seconds_to_first_report_stored": round(moved_s, 3)}
            results.append(result)
            print(json.dumps(result), flush=True)
            start(victim)
            time.sleep(3)
            using = 1 - using
    finally:
        agent.kill()
        for s in servers:
            if s["proc"] and s["proc"].poll() is None:
                s["proc"].kill()
    times = [r["seconds_to_first_report_stored"] for r in results]
    print(json.dumps({"rounds": len(times), "max_seconds": max(times),
                      "mean_seconds": round(sum(times) / len(times), 3),
                      "work_dir": work}))


if __name__ == "__main__":
    main()
