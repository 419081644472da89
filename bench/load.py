"""Section 1: webhook load with wrk against the project and two baselines.

Three uvicorn servers (one worker each) run side by side -- ``bare``,
``tutorial`` (:mod:`bench.apps`) and ``project`` (``webhooks.app:app_from_env``
on the private Redis, offline pipeline, production settings, its REST calls
going to a fourth process, the local Twilio simulator) -- and wrk
drives each in turn, at each concurrency level, with a short warm-up and then
a fixed measured duration, all from one file of pre-signed requests
(:mod:`bench.payloads`). Servers idle while another is measured.

Each server keeps its own position in the request file, so the project never
sees a ``MessageSid`` twice in a run (duplicates are counted: wrk's side from
wrapped requests, the server's side from ``bot_duplicate_deliveries_total``).

Besides wrk's requests/s and latency, the CPU seconds each server process
used per request are reported: on a shared machine they move less than
requests/s do.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import payloads
from bench.servers import AppServer, RedisServer

LUA = Path(__file__).resolve().parent / "wrk" / "signed.lua"
PUBLIC_BASE_URL = "https://bot.bench.example"
ACCOUNT_SID = "AC" + "b" * 32
SERVERS = {
    "bare": "bench.apps:bare",
    "tutorial": "bench.apps:tutorial",
    "project": "webhooks.app:app_from_env",
}


@dataclass
class LoadConfig:
    levels: tuple[int, ...] = (10, 50)
    duration: float = 8.0
    warmup: float = 2.0
    # Each level runs the servers in turn, this many times (bare, tutorial,
    # project, bare, ...); each figure is the median round, so one noisy
    # moment on a shared machine moves a figure less.
    rounds: int = 3
    threads: int = 1
    messages: int = 100_000
    # At most this many requests are loaded into wrk per run (memory); more wraps around.
    per_run_limit: int = 40_000
    profile: str | None = None  # "py-spy": record the project at the highest level
    servers: tuple[str, ...] = tuple(SERVERS)


def server_env(redis_url: str, auth_token: str, twilio_api: str) -> dict[str, str]:
    """Production settings for every server (the baselines read only the Twilio ones)."""
    return {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": auth_token,
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        # The bot's REST calls go to the local simulator, never to api.twilio.com.
        "TWILIO_API_BASE_URL": twilio_api,
        "REDIS_URL": redis_url,
        "ENVIRONMENT": "production",
        "LLM_MODEL": "",  # the offline pipeline
        "LOG_LEVEL": "INFO",
        "LOG_JSON": "true",
        "TWILIO_SKIP_SIGNATURE_CHECK": "false",
    }


def run_wrk(url: str, *, file: Path, offset: int, limit: int, connections: int, threads: int,
            duration: float, log: Path) -> dict[str, Any]:
    threads = min(threads, connections)
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration:g}s", "--timeout", "10s",
           "--latency", "-s", str(LUA), url,
           "--", str(file), str(offset), payloads.PATH, str(threads), str(limit)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=False)
    with log.open("a", encoding="utf-8") as out:
        out.write(f"$ {' '.join(cmd)}\n{proc.stdout}{proc.stderr}\n")
    match = re.search(r"^BENCH_JSON (.*)$", proc.stdout, re.M)
    if proc.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr.strip()[:500]}")
    result: dict[str, Any] = json.loads(match.group(1))
    return result


def consumed(result: dict[str, Any], threads: int) -> int:
    """How far a run moved through the file (threads take interleaved lines)."""
    return int(max(result["sent_per_thread"])) * len(result["sent_per_thread"])


def parse_metrics(text: str) -> dict[str, float]:
    """Sum Prometheus samples by ``name{labels}`` (counters only; no histograms)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#") or "_bucket" in line:
            continue
        key, _, value = line.rpartition(" ")
        try:
            out[key] = float(value)
        except ValueError:
            continue
    return out


def _sum(metrics: dict[str, float], prefix: str, **labels: str) -> float:
    total = 0.0
    for key, value in metrics.items():
        name = key.split("{", 1)[0]
        if name != prefix:
            continue
        if all(f'{k}="{v}"' in key for k, v in labels.items()):
            total += value
    return total


def project_counters(app: AppServer) -> dict[str, float]:
    m = parse_metrics(app.get("/metrics"))
    ok = _sum(m, "bot_http_requests_total", endpoint="/twilio/messages", status="200")
    all_ = _sum(m, "bot_http_requests_total", endpoint="/twilio/messages")
    return {
        "turns": _sum(m, "bot_turns_total"),
        "duplicates": _sum(m, "bot_duplicate_deliveries_total"),
        "http_200": ok,
        "http_other": all_ - ok,
        "errors": _sum(m, "bot_errors_total"),
    }


def _delta(after: Mapping[str, float], before: Mapping[str, float]) -> dict[str, float]:
    return {k: after.get(k, 0) - before.get(k, 0) for k in after}


def run(redis: RedisServer, workdir: Path, config: LoadConfig,
        progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Measure every server at every level; return the numbers and the ratios."""
    if shutil.which("wrk") is None:
        return {"status": "not available: wrk is not installed (apt-get install -y wrk)"}
    auth_token = secrets.token_hex(16)
    run_id = secrets.token_hex(4)
    messages = payloads.generate(config.messages, seed=int(run_id, 16))
    file = workdir / "requests.tsv"
    started = time.perf_counter()
    payloads.write_wrk_file(messages, file, auth_token=auth_token, public_base_url=PUBLIC_BASE_URL,
                            run_id=run_id, account_sid=ACCOUNT_SID)
    progress(f"  signed {len(messages)} requests in {time.perf_counter() - started:.1f}s")
    wrk_log = workdir / "wrk.log"
    results: dict[str, Any] = {
        "config": {"levels": list(config.levels), "duration_s": config.duration, "warmup_s": config.warmup,
                   "rounds": config.rounds,
                   "wrk_threads": config.threads, "workers": 1, "public_base_url": PUBLIC_BASE_URL},
        "traffic": payloads.mix(messages),
        "runs": {},
    }
    offsets = dict.fromkeys(SERVERS, 0)
    with ExitStack() as stack:
        twilio = stack.enter_context(AppServer(
            "bench.apps:simulator", name="simulator", log_dir=workdir,
            env={"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": auth_token}))
        env = server_env(redis.url, auth_token, twilio.url)
        apps = {name: stack.enter_context(AppServer(target, env=env, name=name, log_dir=workdir))
                for name, target in SERVERS.items() if name in config.servers}
        for level in config.levels:
            rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in apps}
            for rnd in range(config.rounds):
                for name, app in apps.items():
                    if rnd == 0:
                        # Warm-up: connections, caches, the first Lua script loads.
                        warm = run_wrk(app.url, file=file, offset=offsets[name], limit=config.per_run_limit,
                                       connections=level, threads=config.threads, duration=config.warmup,
                                       log=wrk_log)
                        offsets[name] = _advance(offsets[name], warm, config, len(messages), name)
                    spy = _start_profiler(app, workdir, level, config) if name == "project" and rnd == 0 else None
                    row, used = _measure(app, name, redis, twilio, file, offsets[name], level, config, wrk_log, spy)
                    offsets[name] = _advance(offsets[name], used, config, len(messages), name)
                    rounds[name].append(row)
                    progress(f"  c={level:<3} {name:9} {row['rps']:8.0f} req/s  p50 {row['p50_ms']:6.1f} ms  "
                             f"p99 {row['p99_ms']:6.1f} ms  cpu {row['server_cpu_ms_per_req']:.2f} ms/req"
                             f"  (round {rnd + 1}/{config.rounds})")
            for name, rows in rounds.items():
                results["runs"].setdefault(str(level), {})[name] = _median_round(rows)
    results["ratios"] = {
        level: {
            "project_vs_bare": runs["project"]["rps"] / runs["bare"]["rps"],
            "project_vs_tutorial": runs["project"]["rps"] / runs["tutorial"]["rps"],
            "cpu_per_req_project_vs_tutorial": runs["project"]["server_cpu_ms_per_req"]
            / max(1e-9, runs["tutorial"]["server_cpu_ms_per_req"]),
        }
        for level, runs in results["runs"].items()
        if {"bare", "tutorial", "project"} <= set(runs)
    }
    results["project_requests_used"] = offsets.get("project", 0)
    results["project_requests_generated"] = len(messages)
    return results


def _measure(app: AppServer, name: str, redis: RedisServer, twilio: AppServer, file: Path, offset: int,
             level: int, config: LoadConfig, wrk_log: Path, spy: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """One measured wrk run against ``app``: its row, and wrk's result (for the file offset)."""
    cpu0, rcpu0, tcpu0 = app.cpu_seconds(), redis.cpu_seconds(), twilio.cpu_seconds()
    stats0 = redis.commandstats() if name == "project" else {}
    counters0 = project_counters(app) if name == "project" else {}
    result = run_wrk(app.url, file=file, offset=offset, limit=config.per_run_limit,
                     connections=level, threads=config.threads, duration=config.duration, log=wrk_log)
    if spy is not None:
        result["profile"] = _stop_profiler(spy)
    seconds = result["duration_us"] / 1e6
    row: dict[str, Any] = {
        "rps": result["requests"] / seconds,
        "p50_ms": result["latency_us"]["p50"] / 1000,
        "p90_ms": result["latency_us"]["p90"] / 1000,
        "p99_ms": result["latency_us"]["p99"] / 1000,
        "max_ms": result["latency_us"]["max"] / 1000,
        "requests": result["requests"],
        "errors": result["errors"],
        "server_cpu_ms_per_req": 1000 * (app.cpu_seconds() - cpu0) / max(1, result["requests"]),
        "wrk_wrapped": result["duplicates"],
    }
    if name == "project":
        counters = _delta(project_counters(app), counters0)
        stats = {k: v for k, v in _delta(redis.commandstats(), stats0).items() if v}
        turns = max(1.0, counters["turns"])
        row.update({
            "server": counters,
            "duplicates": int(counters["duplicates"]),
            "redis_cpu_ms_per_req": 1000 * (redis.cpu_seconds() - rcpu0) / max(1, result["requests"]),
            # REST calls the bot made (WhatsApp buttons) land here; Twilio's work, not ours.
            "simulator_cpu_ms_per_req": 1000 * (twilio.cpu_seconds() - tcpu0) / max(1, result["requests"]),
            "redis_commands_per_turn": sum(v for k, v in stats.items() if k != "info") / turns,
            "redis_evalsha_per_turn": stats.get("evalsha", 0) / turns,
            "redis_commandstats": stats,
        })
        if "profile" in result:
            row["profile"] = result["profile"]
    return row, result


def _median_round(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The round with the median throughput, plus every round's figures.

    Errors and duplicates are summed over the rounds: one is one too many.
    """
    ordered = sorted(rows, key=lambda r: r["rps"])
    median = dict(ordered[len(ordered) // 2])
    median["rounds"] = [{k: round(r[k], 3) for k in ("rps", "p50_ms", "p99_ms", "server_cpu_ms_per_req")}
                        for r in rows]
    # wrk's errors by kind (connect, read, write, status, timeout), summed.
    median["errors"] = {kind: sum(r["errors"].get(kind, 0) for r in rows) for kind in rows[0]["errors"]}
    median["wrk_wrapped"] = sum(r["wrk_wrapped"] for r in rows)
    if "duplicates" in median:
        median["duplicates"] = sum(r.get("duplicates", 0) for r in rows)
    profiles = [r["profile"] for r in rows if "profile" in r]
    if profiles:
        median["profile"] = profiles[0]
    return median


def _advance(offset: int, result: dict[str, Any], config: LoadConfig, total: int, name: str) -> int:
    """The next unused line. Baselines are stateless: they start over at the end
    of the file. The project must not (its dedupe cache would answer); if it
    ever gets there the wrapped requests show up as duplicates."""
    offset += consumed(result, config.threads)
    if offset + config.threads >= total:
        return 0 if name != "project" else offset % total
    return offset


def _start_profiler(app: AppServer, workdir: Path, level: int, config: LoadConfig) -> Any:
    if config.profile != "py-spy" or level != max(config.levels):
        return None
    binary = shutil.which("py-spy") or str(Path(__file__).resolve().parents[1] / ".venv" / "bin" / "py-spy")
    if not Path(binary).exists():
        return None
    out = workdir / f"project-c{level}.speedscope.json"
    proc = subprocess.Popen(
        [binary, "record", "--pid", str(app.pid), "--rate", "250", "--format", "speedscope",
         "--output", str(out), "--duration", str(int(config.duration)), "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    return proc, out


def _stop_profiler(spy: Any) -> dict[str, Any]:
    proc, out = spy
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        return {"error": "py-spy did not finish"}
    if not Path(out).exists():
        return {"error": (err or "py-spy wrote nothing").strip()[-300:]}
    from bench.profile import summarize_speedscope

    return {"file": str(out), **summarize_speedscope(Path(out))}
