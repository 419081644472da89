"""Real Redis Cluster and Sentinel deployments for the test run, from ``redis-server`` processes.

:func:`redis_cluster` starts three masters (no replicas) on free ports and
joins them with ``redis-cli --cluster create``; :func:`redis_sentinel` starts
a master, a replica and one sentinel watching them. Both fail loudly when
``redis-server``/``redis-cli`` are missing (tests never skip for want of them).

Example::

    with redis_cluster() as url:      # "redis+cluster://127.0.0.1:7001,127.0.0.1:7002,..."
        ...
    with redis_sentinel() as deployment:
        deployment.url                # "redis+sentinel://127.0.0.1:26379/mymaster"
        deployment.failover()
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.redis_server import free_port

SERVICE = "mymaster"


def _cluster_port(taken: set[int]) -> int:
    """A free port whose cluster bus port (+10000) is free too, so below 55536."""
    for _ in range(200):
        port = random.randint(20000, 50000)
        if port in taken or port + 10000 in taken:
            continue
        try:
            for candidate in (port, port + 10000):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        taken.update((port, port + 10000))
        return port
    raise RuntimeError("no free port pair for a cluster node")


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"Tests need {name} (apt-get install redis-server redis-tools). Refusing to skip.")
    return found


def _wait_port(proc: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis did not start on port {port}") from None
            time.sleep(0.05)


def _cli(*args: str, timeout: float = 30) -> str:
    done = subprocess.run([_binary("redis-cli"), *args], capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"redis-cli {' '.join(args)} failed: {done.stdout}{done.stderr}")
    return done.stdout


@contextmanager
def _server(stack: ExitStack, workdir: Path, port: int, *extra: str) -> Iterator[subprocess.Popen[bytes]]:
    data = workdir / str(port)
    data.mkdir()
    proc = subprocess.Popen(
        [_binary("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(data), "--logfile", str(data / "log"), *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )
    try:
        _wait_port(proc, port)
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


@contextmanager
def redis_cluster(masters: int = 3) -> Iterator[str]:
    """Yield a ``redis+cluster://`` URL of a fresh cluster of ``masters`` masters."""
    with tempfile.TemporaryDirectory(prefix="bot-cluster-") as tmp, ExitStack() as stack:
        taken: set[int] = set()
        ports = [_cluster_port(taken) for _ in range(masters)]
        for port in ports:
            stack.enter_context(_server(stack, Path(tmp), port, "--cluster-enabled", "yes",
                                        "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000"))
        _cli("--cluster", "create", *(f"127.0.0.1:{p}" for p in ports), "--cluster-replicas", "0", "--cluster-yes")
        _until(lambda: "cluster_state:ok" in _cli("-p", str(ports[0]), "cluster", "info"),
               time.monotonic() + 30, "the test cluster never reached cluster_state:ok")
        yield "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in ports)


@dataclass
class SentinelDeployment:
    """One master, one replica, one sentinel (real processes)."""

    master_port: int
    replica_port: int
    sentinel_port: int
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel_port}/{SERVICE}"

    def master(self) -> int:
        """The port the sentinel names as master now."""
        reply = _cli("-p", str(self.sentinel_port), "sentinel", "get-master-addr-by-name", SERVICE).split()
        return int(reply[1])

    def failover(self, timeout: float = 60) -> int:
        """A planned failover: promote the replica and wait until the sentinel names it; its port.

        As an operator should (docs/scaling.md): writes on the master are
        paused (CLIENT PAUSE WRITE) and the replica catches up first, then
        SENTINEL FAILOVER. Clients' writes meanwhile wait, then fail and are
        retried on the new master; none lands on the old one after the switch.
        Every step waits on the state it needs (offsets, the sentinel's
        answer, each server's role), bounded by ``timeout`` in all; the pause
        outlasts that bound and is lifted only once the old master is a replica.
        """
        before = self.master()
        replica = self.replica_port if before == self.master_port else self.master_port
        deadline = time.monotonic() + timeout
        _cli("-p", str(before), "client", "pause", str(int(timeout * 1000) + 10_000), "write")
        try:
            _until(lambda: _offset(before, "master_repl_offset") == _offset(replica, "slave_repl_offset"),
                   deadline, "the replica never caught up")
            # redis-cli exits 0 on an error reply: read it. The sentinel may refuse
            # for a moment (NOGOODSLAVE while its view of the replica is stale).
            _until(lambda: self.master() != before or _cli(
                "-p", str(self.sentinel_port), "sentinel", "failover", SERVICE).strip() == "OK",
                   deadline, "the sentinel refused to fail over")
            _until(lambda: self.master() != before, deadline, "the sentinel did not fail over in time")
            after = self.master()
            _until(lambda: "role:master" in _cli("-p", str(after), "info", "replication"),
                   deadline, "the promoted replica never became master")
            # The old master stays paused until it is a replica of the new one
            # (the sentinel would do it at its next check, up to 10 s later).
            _cli("-p", str(before), "replicaof", "127.0.0.1", str(after))
            _until(lambda: "role:slave" in _cli("-p", str(before), "info", "replication"),
                   deadline, "the old master was never turned into a replica")
        finally:
            _cli("-p", str(before), "client", "unpause")
        return after


def _until(done: Callable[[], bool], deadline: float, failure: str) -> None:
    """Poll ``done`` (real state) until it holds; RuntimeError(``failure``) past ``deadline``."""
    while not done():
        if time.monotonic() > deadline:
            raise RuntimeError(failure)
        time.sleep(0.02)


def _offset(port: int, field_name: str) -> int:
    for line in _cli("-p", str(port), "info", "replication").splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split(":", 1)[1])
    return -1


@contextmanager
def redis_sentinel() -> Iterator[SentinelDeployment]:
    """Yield a running :class:`SentinelDeployment` (master, replica, sentinel on free ports)."""
    with tempfile.TemporaryDirectory(prefix="bot-sentinel-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        master, replica, sentinel = free_port(), free_port(), free_port()
        deployment = SentinelDeployment(master, replica, sentinel)
        deployment.procs[master] = stack.enter_context(_server(stack, workdir, master))
        deployment.procs[replica] = stack.enter_context(
            _server(stack, workdir, replica, "--replicaof", "127.0.0.1", str(master)))
        conf = workdir / "sentinel.conf"
        conf.write_text(
            f"port {sentinel}\nbind 127.0.0.1\ndir {workdir}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {master} 1\n"
            f"sentinel down-after-milliseconds {SERVICE} 5000\n"
            f"sentinel failover-timeout {SERVICE} 5000\n"
            f"sentinel parallel-syncs {SERVICE} 1\n",
            encoding="utf-8",
        )
        proc = subprocess.Popen([_binary("redis-server"), str(conf), "--sentinel"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            _wait_port(proc, sentinel)
            # Ready when the replica is in sync and the sentinel knows it (it can then promote it).
            # The sentinel reads its master's INFO every 10 s: it may take that long to see the replica.
            _until(lambda: "master_link_status:up" in _cli("-p", str(replica), "info", "replication")
                   and "num-slaves\n1" in _cli("-p", str(sentinel), "sentinel", "master", SERVICE),
                   time.monotonic() + 40, "the test sentinel never saw its replica")
            deployment.procs[sentinel] = proc
            yield deployment
        finally:
            proc.terminate()
            proc.wait(timeout=10)
