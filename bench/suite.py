"""``bench/run``: every benchmark in one command, a table, JSON and a markdown report.

Sections (see bench/README.md for what each number means):

1. ``load``: webhook load with wrk -- project vs ``bare`` and ``tutorial``;
2. ``redis``: Redis round trips and commands per inbound message, by kind;
3. ``memory``: Redis bytes per conversation after 1, 10 and 50 turns;
4. ``slow``: a 20 s model vs the reply budget, and the REST reply time;
5. ``classifier``: ``bench/classifier.py`` (accuracy, time per message);
6. ``replay``: ``bench/replay.py`` (steps per second), when present;
7. ``eval``: ``bench/eval.py``: ``bot eval`` offline (intent and slot accuracy,
   model share, fallback rate, SMS segments per turn);
8. ``scale``: ``bench/scale.py``: 1 and 2 web processes on one Redis and on a
   3-master Redis Cluster (req/s per process, Redis commands per message).

Everything runs on 127.0.0.1 against a private ``redis-server`` the run
starts and stops; every process it starts is stopped by pid at the end.

Usage::

    bench/run                      # everything, ~3-4 minutes
    bench/run --quick              # shorter load runs (a smoke test, not figures)
    bench/run --sections load,redis --profile   # py-spy the project at c=50
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import load, memory, redis_cost, report, scale, slow_model
from bench.servers import PYTHON, ROOT, RedisServer

SECTIONS = ("load", "redis", "memory", "slow", "classifier", "replay", "eval", "scale")
RESULTS = ROOT / "bench" / "results"


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor()

    def cmd(*args: str) -> str:
        try:
            return subprocess.run(args, capture_output=True, text=True, timeout=10, cwd=ROOT).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    wrk = cmd("wrk", "--version") or ""
    return {
        "date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu_model": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "wrk": wrk.splitlines()[0].split(" [", 1)[0] if wrk else None,
        "git_commit": cmd("git", "rev-parse", "--short", "HEAD") or None,
        "git_dirty_files": len([line for line in cmd("git", "status", "--porcelain").splitlines() if line]),
        "load_average_at_start": round(os.getloadavg()[0], 2),
    }


def run_classifier(workdir: Path) -> dict[str, Any]:
    out = workdir / "classifier.json"
    proc = subprocess.run([str(PYTHON), "-m", "bench.classifier", "--json", str(out), "--repeat", "10"],
                          cwd=ROOT, capture_output=True, text=True, timeout=180, check=False)
    if proc.returncode != 0 or not out.exists():
        return {"status": f"error: bench.classifier exited {proc.returncode}: {proc.stderr.strip()[-300:]}"}
    data = json.loads(out.read_text())
    keep = ("n", "oos_n", "accuracy", "oos_recall", "oos_precision", "rule_share", "classifier_accuracy",
            "predict_median_ms", "predict_p99_ms", "predict_cached_median_ms", "classify_median_ms",
            "classify_p99_ms", "threshold", "train_examples", "train_seconds")
    return {"status": "ok", **{k: data.get(k) for k in keep}}


def run_replay(workdir: Path) -> dict[str, Any]:
    script = ROOT / "bench" / "replay.py"
    if not script.exists():
        return {"status": "not available: bench/replay.py is not there yet (Replay issue)"}
    out = workdir / "replay.json"
    proc = subprocess.run([str(PYTHON), "-m", "bench.replay", "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=240, check=False)
    if proc.returncode != 0 or not out.exists():
        tail = (proc.stderr or proc.stdout).strip()[-400:]
        return {"status": f"not available: bench.replay exited {proc.returncode}: {tail}"}
    return {"status": "ok", **json.loads(out.read_text())}


def run_eval(workdir: Path) -> dict[str, Any]:
    out = workdir / "eval.json"
    proc = subprocess.run([str(PYTHON), "-m", "bench.eval", "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0 or not out.exists():
        tail = (proc.stderr or proc.stdout).strip()[-400:]
        return {"status": f"error: bench.eval exited {proc.returncode}: {tail}"}
    return json.loads(out.read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run", description="Run the benchmarks (bench/README.md).")
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"comma-separated subset of {','.join(SECTIONS)}")
    parser.add_argument("--levels", default="10,50", help="wrk concurrency levels")
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds per wrk run")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds before each level")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per level (figures: the median)")
    parser.add_argument("--quick", action="store_true", help="4 s runs, 1 s warm-up: a smoke test")
    parser.add_argument("--profile", action="store_true",
                        help="record the project server with py-spy during the highest-level run")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where latest.json and latest.md go")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, request file)")
    args = parser.parse_args(argv)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    if args.quick:
        args.duration, args.warmup, args.rounds = 4.0, 1.0, 1

    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    # The in-process app's warnings (model timeouts ...) go to a file, not the table.
    logging.basicConfig(level=logging.WARNING, filename=workdir / "inprocess.log", force=True)
    started = time.perf_counter()
    results: dict[str, Any] = {"machine": machine(), "sections": {}}
    print(f"bench: {results['machine']['cpu_model']} x{results['machine']['nproc']}, "
          f"Python {results['machine']['python']}; work dir {workdir}")

    def section(name: str, fn: Callable[[], dict[str, Any]]) -> None:
        if name not in sections:
            return
        print(f"[{name}]", flush=True)
        t0 = time.perf_counter()
        try:
            results["sections"][name] = fn()
        except Exception as exc:
            traceback.print_exc()
            results["sections"][name] = {"status": f"error: {exc.__class__.__name__}: {exc}"}
        results["sections"][name]["seconds"] = round(time.perf_counter() - t0, 1)

    try:
        with RedisServer() as redis:
            results["machine"]["redis"] = redis.version()
            config = load.LoadConfig(
                levels=tuple(int(x) for x in args.levels.split(",")), duration=args.duration,
                warmup=args.warmup, rounds=args.rounds, profile="py-spy" if args.profile else None,
            )
            section("load", lambda: load.run(redis, workdir, config, progress=print))
            section("redis", lambda: redis_cost.run(redis))
            section("memory", lambda: memory.run(redis))
            section("slow", lambda: slow_model.run(redis))
        section("classifier", lambda: run_classifier(workdir))
        section("replay", lambda: run_replay(workdir))
        section("eval", lambda: run_eval(workdir))
        section("scale", lambda: scale.run(duration=args.duration))
        results["machine"]["load_average_at_end"] = round(os.getloadavg()[0], 2)
        results["total_seconds"] = round(time.perf_counter() - started, 1)
        results["targets"] = report.targets(results)

        args.out.mkdir(parents=True, exist_ok=True)
        profile = results["sections"].get("load", {}).get("runs", {})
        for runs in profile.values():
            prof = runs.get("project", {}).get("profile")
            if prof and prof.get("file"):
                target = args.out / Path(prof["file"]).name
                shutil.copy(prof["file"], target)
                prof["file"] = str(target.relative_to(ROOT)) if target.is_relative_to(ROOT) else str(target)
        (args.out / "latest.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
        (args.out / "latest.md").write_text(report.markdown(results))
        print()
        print(report.table(results))
        print(f"\nwrote {args.out / 'latest.json'} and {args.out / 'latest.md'} "
              f"in {results['total_seconds']:.0f}s")
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
