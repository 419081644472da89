"""Real processes for fault tests: a redis-server we may hang or restart, ``bot`` commands.

Example::

    with RedisProcess.start() as redis:
        redis.pause()      # SIGSTOP: connections accepted, nothing answered
        redis.resume()     # SIGCONT
        redis.restart()    # SHUTDOWN NOSAVE, then a new server on the same port
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
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.redis_server import free_port

ROOT = Path(__file__).resolve().parents[2]
#: The ``bot`` command of this virtualenv.
BOT = Path(sys.executable).parent / "bot"


def wait_for_port(port: int, proc: subprocess.Popen[bytes] | None = None, *, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if (proc is not None and proc.poll() is not None) or time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on port {port}") from None
            time.sleep(0.05)


class RedisProcess:
    """A private redis-server (always its own, whatever ``REDIS_URL`` says)."""

    def __init__(self, port: int, workdir: str) -> None:
        self.port = port
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @classmethod
    @contextmanager
    def start(cls) -> Iterator[RedisProcess]:
        if shutil.which("redis-server") is None:
            raise RuntimeError("fault tests need redis-server (apt-get install redis-server); refusing to skip")
        with tempfile.TemporaryDirectory(prefix="bot-chaos-redis-") as workdir:
            redis = cls(free_port(), workdir)
            redis.launch()
            try:
                yield redis
            finally:
                redis.kill()

    def launch(self) -> None:
        # Append-only on, as in docker-compose.yml: a restart keeps the data.
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", self.workdir, "--logfile", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port, self.proc)
        # Accepting connections is not the same as having loaded the data.
        deadline = time.monotonic() + 20
        while True:
            out = subprocess.run(["redis-cli", "-p", str(self.port), "PING"], capture_output=True, text=True,
                                 check=False)
            if out.stdout.strip() == "PONG" or time.monotonic() > deadline:
                return
            time.sleep(0.05)

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def shutdown(self) -> None:
        """``SHUTDOWN`` as an operator would (the append-only file is kept)."""
        assert self.proc is not None
        subprocess.run(["redis-cli", "-p", str(self.port), "SHUTDOWN"], capture_output=True, check=False)
        self.proc.wait(timeout=20)

    def restart(self) -> None:
        self.shutdown()
        self.launch()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(timeout=10)


class BotProcess:
    """``bot serve`` or ``bot worker`` as a child process, with its stderr kept in a file."""

    def __init__(self, args: list[str], env: Mapping[str, str], log: Path, port: int | None = None) -> None:
        self.args = args
        self.env = dict(env)
        self.log = log
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def launch(self) -> None:
        self.spawn()
        self.wait_ready()

    def spawn(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [str(BOT), *self.args], env=self.env, cwd=ROOT,
                stdout=out, stderr=subprocess.STDOUT,
            )

    def wait_ready(self, within: float = 300.0) -> None:
        """Until ``/healthz`` answers (a server trains its classifier first: slow on a busy machine)."""
        if self.port is None:
            return
        wait_for_port(self.port, self.proc, within=within)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(self.url + "/healthz", timeout=10).status_code == 200:
                    return
            except httpx.TransportError:
                # The port answered but the server is not there yet (or was another
                # process's for a moment: ports are picked free, not reserved).
                pass
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"bot {self.args} exited ({self.proc.returncode}); see {self.log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"bot {self.args} did not come up; see {self.log}")
            time.sleep(0.1)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def lines(self) -> list[str]:
        return self.log.read_text(encoding="utf-8", errors="replace").splitlines() if self.log.exists() else []


def bot_env(**settings: str) -> dict[str, str]:
    """The environment for a ``bot`` child: this one's, minus any stray Redis, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL",)}
    env.update(settings)
    return env
