#!/usr/bin/env python3
"""How a consistent hash spreads agent names over a server list (the plan of docs/SCALING.md).

Each agent is given the same list of servers and picks one by rendezvous (highest random
weight) hashing of its name: for every server, SHA-256 of "server/agent"; the largest wins,
the second largest is its failover. Prints, for AGENTS names over SERVERS servers: the least,
mean and most agents a server gets, and the share of agents that move when a server is added
and when one is removed (ideally 1/(SERVERS+1) and 1/SERVERS: only the agents that must).

Usage: scripts/consistent-hash.py [agents] [servers]
"""

import hashlib
import json
import sys

AGENTS = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
SERVERS = int(sys.argv[2]) if len(sys.argv) > 2 else 50


def weight(server, agent):
    return int.from_bytes(hashlib.sha256(f"{server}/{agent}".encode()).digest()[:8], "big")


def ranking(agent, servers):
    return sorted(servers, key=lambda s: weight(s, agent), reverse=True)


def main():
    servers = [f"nms-{i:03}.example.net" for i in range(SERVERS)]
    added = servers + [f"nms-{SERVERS:03}.example.net"]
    removed = servers[1:]
    load = {s: 0 for s in servers}
    moved_add = moved_remove = 0
    second_of_first = {}
    for n in range(AGENTS):
        agent = f"agent-{n:07}"
        ranks = ranking(agent, added)
        home = ranks[0] if ranks[0] != added[-1] else ranks[1]
        load[home] += 1
        if ranks[0] == added[-1]:
            moved_add += 1
        if home == servers[0]:
            moved_remove += 1
            nxt = next(s for s in ranks if s not in (added[-1], servers[0]))
            second_of_first[nxt] = second_of_first.get(nxt, 0) + 1
    counts = sorted(load.values())
    print(json.dumps({
        "agents": AGENTS, "servers": SERVERS,
        "per_server_min": counts[0], "per_server_mean": AGENTS / SERVERS,
        "per_server_max": counts[-1],
        "moved_when_one_added": round(moved_add / AGENTS, 4),
        "ideal_when_added": round(1 / (SERVERS + 1), 4),
        "moved_when_one_removed": round(moved_remove / AGENTS, 4),
        "ideal_when_removed": round(1 / SERVERS, 4),
        "servers_taking_the_removed_ones": len(second_of_first),
        "most_taken_by_one": max(second_of_first.values()) if second_of_first else 0,
    }))


if __name__ == "__main__":
    main()
