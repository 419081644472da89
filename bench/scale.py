"""``bench/run --sections scale``: 1 and 2 web processes, one Redis vs a 3-master Redis Cluster.

For each store (a single ``redis-server``; a Redis Cluster of three masters
started from ``redis-server`` processes, the job queue then on the single
Redis through ``QUEUE_REDIS_URL``) and each process count (1, 2), the same
signed traffic as the ``load`` section is sent with wrk, one wrk per process
(one process cannot load-balance; each wrk takes its own slice of the
conversations, so nothing is shared but Redis). It reports:

- requests per second in total and per web process;
- Redis commands per message (every node's ``commandstats``, scripts' inner
  commands included) and Redis CPU per message, per node;
- the scaling ratio (2 processes vs 1) for each store.

docs/scaling.md's sizing table is computed from these figures
(``docs/scaling.json``).

Example::

    .venv/bin/python -m bench.scale --duration 6 --json docs/scaling.json
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import redis

from bench import payloads
from bench.load import ACCOUNT_SID, PUBLIC_BASE_URL, run_wrk, server_env
from bench.servers import AppServer, RedisServer
from tests.support.redis_cluster import redis_cluster

PROCESSES = (1, 2)


def _nodes(url: str) -> list[redis.Redis]:
    hosts = url.split("://", 1)[1].split("/")[0].split(",")
    return [redis.Redis(host=h.rsplit(":", 1)[0], port=int(h.rsplit(":", 1)[1]), decode_responses=True) for h in hosts]


def _stats(nodes: list[redis.Redis]) -> tuple[int, float]:
    """Commands so far (all nodes, INFO excluded) and Redis CPU seconds."""
    commands, cpu = 0, 0.0
    for node in nodes:
        stats = node.info("commandstats")
        commands += sum(int(v["calls"]) for k, v in stats.items() if k not in ("cmdstat_info", "cmdstat_cluster"))
        info = node.info("cpu")
        cpu += float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    return commands, cpu


def measure(store: str, url: str, nodes: list[redis.Redis], queue_url: str, processes: int, *,
            file: Path, total: int, connections: int, duration: float, workdir: Path,
            auth_token: str, twilio_url: str) -> dict[str, Any]:
    env = server_env(url, auth_token, twilio_url)
    env["QUEUE_REDIS_URL"] = queue_url
    with ExitStack() as stack:
        apps = [stack.enter_context(AppServer("webhooks.app:app_from_env", env=env, name=f"{store}-{processes}-{n}",
                                              log_dir=workdir)) for n in range(processes)]
        per = max(1, connections // processes)
        slice_size = total // processes
        # Warm-up: connections, script loads, the first classifier calls.
        with ThreadPoolExecutor(processes) as pool:
            list(pool.map(lambda i: run_wrk(apps[i].url, file=file, offset=i * slice_size, limit=slice_size // 4,
                                            connections=per, threads=1, duration=1.0, log=workdir / "wrk.log"),
                          range(processes)))
        commands0, cpu0 = _stats(nodes)
        with ThreadPoolExecutor(processes) as pool:
            results = list(pool.map(
                lambda i: run_wrk(apps[i].url, file=file, offset=i * slice_size + slice_size // 4,
                                  limit=slice_size // 2, connections=per, threads=1, duration=duration,
                                  log=workdir / "wrk.log"),
                range(processes)))
        commands1, cpu1 = _stats(nodes)
    requests = sum(r["requests"] for r in results)
    seconds = max(r["duration_us"] for r in results) / 1e6
    return {
        "store": store, "processes": processes, "redis_nodes": len(nodes), "connections": per * processes,
        "requests": requests, "errors": sum(sum(r["errors"].values()) if isinstance(r["errors"], dict)
                                            else int(r["errors"]) for r in results),
        "rps": requests / seconds, "rps_per_process": requests / seconds / processes,
        "redis_commands_per_message": (commands1 - commands0) / max(1, requests),
        "redis_cpu_ms_per_message": 1000 * (cpu1 - cpu0) / max(1, requests),
        "redis_cpu_ms_per_message_per_node": 1000 * (cpu1 - cpu0) / max(1, requests) / len(nodes),
    }


def run(*, duration: float = 6.0, connections: int = 20, messages: int = 40_000) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    auth_token = secrets.token_hex(16)
    run_id = secrets.token_hex(4)
    traffic = payloads.generate(messages, seed=int(run_id, 16))
    file = workdir / "requests.tsv"
    payloads.write_wrk_file(traffic, file, auth_token=auth_token, public_base_url=PUBLIC_BASE_URL,
                            run_id=run_id, account_sid=ACCOUNT_SID)
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    with ExitStack() as stack:
        single = stack.enter_context(RedisServer())
        cluster_url = stack.enter_context(redis_cluster())
        twilio = stack.enter_context(AppServer(
            "bench.apps:simulator", name="simulator", log_dir=workdir,
            env={"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": auth_token}))
        stores = {"single": (single.url, [single.client()]), "cluster": (cluster_url, _nodes(cluster_url))}
        for store, (url, nodes) in stores.items():
            for processes in PROCESSES:
                for node in nodes:
                    node.flushall()
                row = measure(store, url, nodes, single.url, processes, file=file, total=len(traffic),
                              connections=connections, duration=duration, workdir=workdir,
                              auth_token=auth_token, twilio_url=twilio.url)
                rows.append(row)
                print(f"  {store:7} x{processes} web: {row['rps']:7.0f} req/s ({row['rps_per_process']:.0f} per "
                      f"process), {row['redis_commands_per_message']:.1f} Redis commands/message", flush=True)
    by = {(r["store"], r["processes"]): r for r in rows}
    return {
        "status": "ok",
        "config": {"duration_s": duration, "connections": connections, "processes": list(PROCESSES)},
        "runs": rows,
        "ratios": {store: by[(store, 2)]["rps"] / by[(store, 1)]["rps"] for store in ("single", "cluster")},
        "seconds": round(time.perf_counter() - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.scale", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    results = run(duration=args.duration, connections=args.connections)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
