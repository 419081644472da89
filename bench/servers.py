"""Processes the benchmark starts and always stops: a private Redis, uvicorn apps.

Everything binds 127.0.0.1 on a free port; every process is stopped (by its
own pid) when its ``with`` block ends, even on Ctrl-C or an error.

Example::

    with RedisServer() as redis, AppServer("bench.apps:bare", env={...}) as app:
        app.url, redis.url, app.cpu_seconds()
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import redis

ROOT = Path(__file__).resolve().parents[1]
PYTHON = ROOT / ".venv" / "bin" / "python"
_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _stop(proc: subprocess.Popen[Any], timeout: float = 10) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


class RedisServer:
    """A private ``redis-server`` (no persistence) for clean, isolated numbers."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("the benchmark needs redis-server (apt-get install redis-server)")
        self.binary = binary
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = tempfile.TemporaryDirectory(prefix="bench-redis-")
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> RedisServer:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self._dir.name, "--logfile", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client().ping()
                return self
            except redis.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.__exit__(None, None, None)
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.05)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.proc is not None:
            _stop(self.proc)
        self._dir.cleanup()

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True)

    def info(self, section: str) -> dict[str, Any]:
        return cast(dict[str, Any], self.client().info(section))

    def version(self) -> str:
        return str(self.info("server")["redis_version"])

    def cpu_seconds(self) -> float:
        info = self.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    def commandstats(self) -> dict[str, int]:
        """Calls per command so far (includes commands run inside Lua scripts)."""
        stats = self.info("commandstats")
        return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


class AppServer:
    """One uvicorn process, one worker, serving an app factory (``module:factory``)."""

    def __init__(self, target: str, *, env: dict[str, str], name: str, log_dir: Path, cwd: Path = ROOT) -> None:
        self.target, self.name, self.cwd = target, name, cwd
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env}
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    def __enter__(self) -> AppServer:
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [str(PYTHON) if PYTHON.exists() else sys.executable, "-m", "uvicorn", self.target,
             "--factory", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
             "--no-access-log", "--log-level", "warning"],
            cwd=self.cwd, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
        )
        # The project trains its classifier at start-up: allow a while.
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as resp:  # noqa: S310
                    if resp.status == 200:
                        return self
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError(f"{self.name} did not start; see {self.log_path}")
            time.sleep(0.2)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.proc is not None:
            _stop(self.proc)
        if self._log is not None:
            self._log.close()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def get(self, path: str) -> str:
        with urllib.request.urlopen(self.url + path, timeout=5) as resp:  # noqa: S310
            return str(resp.read().decode())
