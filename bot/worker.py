"""``bot worker``: the arq worker that sends, re-runs late turns and reminds.

It builds the same :class:`~bot.runtime.Runtime` as the web app (turns run
the same way wherever they run) and serves the jobs of
:mod:`bot.outbound.jobs` from the queue on ``REDIS_URL``.

Crash safety comes from arq: a job stays in the queue while it runs, marked
"in progress" for the job timeout plus a grace period. A worker that dies
(SIGKILL, OOM, a lost machine) stops nothing for good: once the mark
expires any worker runs the job again, and the jobs are idempotent. A
SIGTERM (``docker stop``) cancels running jobs and requeues them at once.

Redis outages do not end it: :func:`supervise` runs one arq worker at a
time, and when Redis refuses connections, drops them or stops answering
(``REDIS_TIMEOUT_SECONDS`` per call), it logs the fault, waits (0.5 s
doubling to 30 s) and starts a fresh worker on a fresh connection, which
picks the queued jobs up where they were. While it waits, its health record
in Redis lapses, so ``bot worker --check`` (the compose/Kubernetes probe)
fails until it is back.

With ``WORKER_METRICS_PORT`` set it serves its metrics registry (sends, jobs,
``bot_outbound_held_total``, late turns: what happens in the worker and not
in the web app) at ``http://0.0.0.0:<port>/metrics`` for Prometheus
(:func:`serve_metrics`, prometheus_client's own threaded server).

Example::

    settings = load_settings()
    run_worker(settings)                 # blocks; what `bot worker` does
    exit_code = asyncio.run(check_health(settings))   # `bot worker --check`
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import time
from typing import Any, Final
from wsgiref.simple_server import WSGIServer

from arq import cron
from arq.connections import ArqRedis, RedisSettings
from arq.worker import Worker, func
from prometheus_client import CollectorRegistry, start_http_server
from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot.confirmations.jobs import JOB_AFTER_VISIT, JOB_RECALL, after_visit_job, recall_job
from bot.errors import ConfigError
from bot.mail.jobs import EMAIL_MAX_TRIES, JOB_DIGEST, digest_job, email_job
from bot.mail.queue import JOB_EMAIL
from bot.outbound.jobs import MAX_TRIES, broadcast_job, handoff_return_job, reminders_job, run_turn_job, send_job
from bot.outbound.outbox import JOB_BROADCAST, JOB_HANDOFF_RETURN, JOB_REMINDERS, JOB_RUN_TURN, JOB_SEND, dumps, loads
from bot.runtime import Runtime, build_runtime
from bot.settings import Settings
from bot.storage.connect import is_sentinel_url, queue_pool

log = logging.getLogger("bot.worker")

#: A finished job's id is kept this long; arq drops a resubmit meanwhile.
KEEP_RESULT_SECONDS: Final = 24 * 3600
#: How often the worker proves it is alive (``bot worker --check`` reads it).
HEALTH_INTERVAL_SECONDS: Final = 30
#: Waits before reconnecting after a Redis fault: doubling from the first to the last.
RECONNECT_DELAYS: Final = (0.5, 30.0)


def health_key() -> str:
    """Per host (a container's hostname is its id), so each worker is checked alone."""
    return f"bot:worker:health:{socket.gethostname()}"


def worker_settings(settings: Settings, *, runtime: Runtime | None = None, cron_jobs: bool = True) -> dict[str, Any]:
    """arq ``Worker`` keyword arguments for ``settings``.

    ``runtime`` may be injected (tests, a frozen clock); otherwise the worker
    builds and opens its own on start-up and closes it on shutdown.
    """
    queue_url = settings.queue_url
    if not queue_url:
        raise ConfigError("bot worker needs REDIS_URL (or QUEUE_REDIS_URL): the job queue lives in Redis")
    timeout = settings.worker_job_timeout_seconds

    async def startup(ctx: dict[str, Any]) -> None:
        ctx["runtime"] = runtime or build_runtime(settings)
        await ctx["runtime"].open()
        # The staff-email jobs take their narrow parts, not the runtime.
        parts = ctx["runtime"].staff_mail
        ctx.update(settings=settings, clock=ctx["runtime"].clock,
                   staff_mail=parts.mail if parts else None, email_queue=parts.queue if parts else None)

    async def shutdown(ctx: dict[str, Any]) -> None:
        if runtime is None and "runtime" in ctx:
            await ctx["runtime"].aclose()

    functions = [
        func(send_job, name=JOB_SEND, timeout=timeout, max_tries=MAX_TRIES),
        func(broadcast_job, name=JOB_BROADCAST, timeout=timeout, max_tries=MAX_TRIES),
        func(run_turn_job, name=JOB_RUN_TURN, timeout=timeout, max_tries=MAX_TRIES),
        func(handoff_return_job, name=JOB_HANDOFF_RETURN, timeout=timeout, max_tries=MAX_TRIES),
        func(email_job, name=JOB_EMAIL, timeout=timeout, max_tries=EMAIL_MAX_TRIES),
    ]
    crons = [
        # Every minute; ``unique`` makes the run one job even with many workers.
        cron(reminders_job, name=JOB_REMINDERS, second=0, run_at_startup=True, unique=True,
             timeout=timeout, max_tries=1),
        # The staff digest: every minute it checks DIGEST_TIME; the day's digest is one job.
        cron(digest_job, name=JOB_DIGEST, second=0, unique=True, timeout=timeout, max_tries=1),
        # Follow-ups after visits and recall (docs/confirmations.md): each send once by its key.
        cron(after_visit_job, name=JOB_AFTER_VISIT, minute=set(range(0, 60, 5)), second=30, unique=True,
             timeout=timeout, max_tries=1),
        cron(recall_job, name=JOB_RECALL, minute={15}, second=45, unique=True, timeout=timeout, max_tries=1),
    ] if cron_jobs else []
    queue: dict[str, Any]
    if is_sentinel_url(queue_url):
        # arq's settings name one host; a Sentinel pool follows the master instead.
        pool = queue_pool(queue_url, socket_timeout=max(1.0, settings.redis_timeout_seconds),
                          socket_connect_timeout=2.0)
        queue = {"redis_pool": ArqRedis(connection_pool=pool, job_serializer=dumps, job_deserializer=loads)}
    else:
        redis_settings = RedisSettings.from_dsn(queue_url)
        # Each call bounded: a hung Redis is a fault to recover from, not a silent stall.
        redis_settings.conn_timeout = max(1, round(settings.redis_timeout_seconds))
        queue = {"redis_settings": redis_settings}
    return {
        "functions": functions,
        "cron_jobs": crons,
        **queue,
        "job_serializer": dumps,
        "job_deserializer": loads,
        "on_startup": startup,
        "on_shutdown": shutdown,
        "job_timeout": timeout,
        "keep_result": KEEP_RESULT_SECONDS,
        "max_tries": MAX_TRIES,
        "health_check_interval": HEALTH_INTERVAL_SECONDS,
        "health_check_key": health_key(),
    }


def build_worker(
    settings: Settings,
    *,
    runtime: Runtime | None = None,
    cron_jobs: bool = True,
    crash_grace: float | None = None,
    **overrides: Any,
) -> Worker:
    """An arq :class:`~arq.worker.Worker` for ``settings``.

    ``crash_grace`` replaces arq's fixed 10 s added to the job timeout before
    a dead worker's job runs again (tests shorten it). ``overrides`` go to
    the Worker (``burst=True``, ``poll_delay=0.05``, ``handle_signals=False``).
    """
    worker = Worker(**{**worker_settings(settings, runtime=runtime, cron_jobs=cron_jobs), **overrides})
    if crash_grace is not None:
        # arq keeps no setting for it; the attribute is what it reads.
        worker.in_progress_timeout_s = settings.worker_job_timeout_seconds + crash_grace
    return worker


def run_worker(settings: Settings, **overrides: Any) -> None:
    """Run the worker until SIGINT/SIGTERM, through Redis outages (what ``bot worker`` does)."""
    asyncio.run(supervise(settings, **overrides))


def _redis_fault(exc: BaseException) -> bool:
    # What a Redis outage looks like from arq and our store: refused or dropped
    # connections, timeouts, and our own StoreError from a job's startup.
    from bot.errors import StoreError

    return isinstance(exc, (RedisError, OSError, TimeoutError, StoreError))


async def supervise(
    settings: Settings,
    *,
    runtime: Runtime | None = None,
    stop: asyncio.Event | None = None,
    delays: tuple[float, float] = RECONNECT_DELAYS,
    **overrides: Any,
) -> None:
    """Run arq workers one after another until ``stop`` is set (SIGTERM/SIGINT set it).

    A worker that fails on Redis is abandoned (its running jobs cancelled:
    arq runs them again, and they are idempotent) and a new one starts after
    a growing pause. The process's :class:`Runtime` is built once and kept.

    Example::

        stop = asyncio.Event()
        task = asyncio.create_task(supervise(settings, stop=stop))
        stop.set()   # what SIGTERM does
    """
    own_runtime = runtime is None
    runtime = runtime or build_runtime(settings)
    stop = stop or asyncio.Event()
    metrics_server = (serve_metrics(settings.worker_metrics_port, runtime.metrics.registry)
                      if settings.worker_metrics_port else None)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop.set)
    first, last = delays
    delay = first
    try:
        while not stop.is_set():
            worker = build_worker(settings, runtime=runtime, handle_signals=False, **overrides)
            started = time.monotonic()
            run = asyncio.ensure_future(worker.async_run())
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait({run, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if stop.is_set() or not run.done():
                await _close(worker, run)
                return
            error = run.exception()
            if error is None:  # a burst run finished its queue
                await _close(worker, run)
                return
            if not _redis_fault(error):
                await _close(worker, run)
                raise error
            if time.monotonic() - started > last:
                delay = first  # it ran well for a while: this is a new outage
            log.error("worker lost Redis; reconnecting", extra={"fields": {
                "error": f"{type(error).__name__}: {error}", "retry_in_seconds": delay}})
            await _close(worker, run)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, last)
        log.info("worker stopped")
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(signum)
        if metrics_server is not None:
            metrics_server.shutdown()
            metrics_server.server_close()
        if own_runtime:
            await runtime.aclose()


def serve_metrics(port: int, registry: CollectorRegistry, *, addr: str = "0.0.0.0") -> WSGIServer:
    """Serve ``registry`` at ``http://<addr>:<port>/metrics`` (Prometheus text) from a daemon thread.

    The worker has no web app of its own; prometheus_client's server is enough
    (a scrape only reads counters). Stop it with ``shutdown()``.

    Example::

        server = serve_metrics(9101, runtime.metrics.registry)
        ...                                   # curl localhost:9101/metrics
        server.shutdown()
    """
    server, _thread = start_http_server(port, addr=addr, registry=registry)
    log.info("worker metrics served", extra={"fields": {"port": port}})
    return server


async def _close(worker: Worker, run: asyncio.Future[None]) -> None:
    """Stop ``worker``: cancel its jobs (arq requeues them) and close its connections.

    Bounded and quiet: with Redis gone, arq's own close (which deletes the
    health key) cannot finish; the health key then lapses on its own.
    """
    worker.handle_sig(signal.SIGUSR1)  # cancels running jobs and the main task
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await asyncio.wait_for(asyncio.shield(run), 5)
    try:
        await asyncio.wait_for(worker.close(), 10)
    except (asyncio.CancelledError, Exception) as exc:  # best effort on a broken connection
        log.warning("worker did not close cleanly", extra={"fields": {"error": f"{type(exc).__name__}: {exc}"}})
        pool = worker._pool
        worker._pool = None
        if pool is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pool.aclose(close_connection_pool=True), 2)


async def check_health(settings: Settings) -> int:
    """0 when this host's worker recorded its health recently, else 1 (``bot worker --check``)."""
    if not settings.queue_url:
        return 1
    client = Redis(connection_pool=queue_pool(settings.queue_url, socket_connect_timeout=2.0, socket_timeout=2.0))
    try:
        return 0 if await client.exists(health_key()) else 1
    except (TimeoutError, RedisError, OSError):
        return 1
    finally:
        await client.aclose()
