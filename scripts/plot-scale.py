#!/usr/bin/env python3
"""Plots server CPU and memory against the number of agents from `nms bench --json` lines.

Usage: scripts/plot-scale.py OUT.png RUNS.jsonl [MORE.jsonl ...]
Each input line is one `nms bench --json` object; runs are grouped into one line per
reporting rate (reports per second per agent).
"""
import json
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(dst, sources):
    series = defaultdict(list)
    for src in sources:
        for line in open(src):
            if line.strip():
                r = json.loads(line)
                series[r["rate_per_agent"]].append(r)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.6))
    styles = ["o-", "D:", "^-."]
    for i, (rate, runs) in enumerate(sorted(series.items(), key=lambda kv: -(kv[0] or 0))):
        runs.sort(key=lambda r: r["agents"])
        agents = [r["agents"] for r in runs]
        cpu = [r["server_cpu_percent"] for r in runs]
        rss = [r["server_rss_bytes"] / 2**20 for r in runs]
        label = f"{rate} report/s per agent"
        ax1.plot(agents, cpu, styles[i % 3], label=label)
        for a, c, r in zip(agents, cpu, runs):
            ax1.annotate(f'{c:.1f}%\n{r["reports_per_sec"]:,.0f} stored/s', (a, c),
                         textcoords="offset points", xytext=(0, 8), ha="center", fontsize=7)
        ax2.plot(agents, rss, styles[i % 3], label=label)
        for a, m, r in zip(agents, rss, runs):
            ax2.annotate(f'{m:.0f} MiB\n{r["server_bytes_per_agent"]:,.0f} B/agent', (a, m),
                         textcoords="offset points", xytext=(0, 8), ha="center", fontsize=7)
        if i == 0:
            base = [r["server_rss_baseline_bytes"] / 2**20 for r in runs]
            ax2.plot(agents, base, "s--", color="tab:grey",
                     label="with tasks loaded, before agents register")
    ax1.axhline(25, color="grey", ls="--", lw=1, label="target: 10,000 agents at 1/s")
    ax1.set_xscale("log")
    ax1.set_xlabel("agents (log scale)")
    ax1.set_ylabel("server CPU, % of one core")
    ax1.set_ylim(0, 135)
    ax1.set_title("Server CPU while measuring")
    ax1.legend(loc="upper left", fontsize=7)
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    top = max(r["server_rss_bytes"] for runs in series.values() for r in runs) / 2**20
    ax2.set_ylim(top=top * 2.5)
    ax2.set_xlabel("agents (log scale)")
    ax2.set_ylabel("server RSS, MiB (log scale)")
    ax2.set_title("Server memory (RSS at the end)")
    ax2.legend(loc="upper left", fontsize=7)
    fig.suptitle("nms bench --rate R --seconds 20, 2 vCPUs (KVM, AMD EPYC), load generator "
                 "on the same machine; 100,000 at 1/s saturates it", fontsize=8)
    fig.tight_layout()
    fig.savefig(dst, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
