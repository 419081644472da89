"""``REDIS_URL`` to a redis-py client: one Redis, a Redis Cluster or a Sentinel-managed master.

The URL's scheme says which (no separate flag to forget):

- ``redis://[user:password@]host:port/db`` (and ``rediss://``, ``unix://``):
  one Redis, :meth:`redis.asyncio.Redis.from_url`;
- ``redis+cluster://[user:password@]host:port[,host:port...]`` (``rediss+cluster://``
  for TLS): a Redis Cluster through :class:`redis.asyncio.cluster.RedisCluster`,
  which discovers every node from the ones named and routes each command by
  its key's slot (no hand-written routing);
- ``redis+sentinel://[user:password@]host:port[,host:port...]/<service>[/db]``:
  the master Sentinel names for ``<service>``, through
  :class:`redis.asyncio.sentinel.Sentinel`; after a failover the client
  asks the sentinels again and reconnects to the new master.
  ``?sentinel_password=...`` authenticates to the sentinels themselves.

Example::

    backend = connect("redis+cluster://10.0.0.1:7000,10.0.0.2:7000")
    backend = connect("redis+sentinel://10.0.0.5:26379,10.0.0.6:26379/mymaster/0")
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import parse_qs, unquote, urlsplit

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool

from bot.errors import ConfigError
from bot.storage.backend import DEFAULT_TIMEOUT, RedisBackend

CLUSTER_SCHEMES: Final = ("redis+cluster", "rediss+cluster")
SENTINEL_SCHEMES: Final = ("redis+sentinel", "rediss+sentinel")
#: Seconds to open a connection (the call bound covers the rest).
CONNECT_TIMEOUT: Final = 2.0


def scheme_of(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else ""


def is_cluster_url(url: str) -> bool:
    """Whether ``url`` names a Redis Cluster.

    >>> is_cluster_url("redis+cluster://10.0.0.1:7000,10.0.0.2:7000")
    True
    """
    return scheme_of(url) in CLUSTER_SCHEMES


def is_sentinel_url(url: str) -> bool:
    """Whether ``url`` names a Sentinel-managed master.

    >>> is_sentinel_url("redis+sentinel://10.0.0.5:26379/mymaster")
    True
    """
    return scheme_of(url) in SENTINEL_SCHEMES


def hosts(netloc: str, default_port: int) -> list[tuple[str, int]]:
    """``a:1,b:2`` (after any ``user:password@``) as ``[("a", 1), ("b", 2)]``.

    >>> hosts("u:p@a:7000,b", 6379)
    [('a', 7000), ('b', 6379)]
    """
    found: list[tuple[str, int]] = []
    for part in netloc.rpartition("@")[2].split(","):
        host, _, port = part.strip().rpartition(":") if ":" in part else (part.strip(), "", "")
        if not host:
            raise ConfigError(f"REDIS_URL: bad host {part!r}")
        try:
            found.append((host.strip("[]"), int(port) if port else default_port))
        except ValueError:
            raise ConfigError(f"REDIS_URL: bad port in {part!r}") from None
    return found


def _credentials(netloc: str) -> dict[str, Any]:
    userinfo = netloc.rpartition("@")[0]
    if not userinfo:
        return {}
    user, _, password = userinfo.partition(":")
    return {"username": unquote(user) or None, "password": unquote(password) or None}


def client_for(url: str, **kwargs: Any) -> Any:
    """A redis-py asyncio client for ``url`` (see the module docstring); values decoded as UTF-8.

    ``kwargs`` go to the client (``socket_connect_timeout`` ...).
    """
    kwargs.setdefault("socket_connect_timeout", CONNECT_TIMEOUT)
    kwargs.setdefault("decode_responses", True)
    scheme = scheme_of(url)
    if scheme in CLUSTER_SCHEMES:
        parts = urlsplit(url)
        nodes = [ClusterNode(host, port) for host, port in hosts(parts.netloc, 6379)]
        if scheme.startswith("rediss"):
            kwargs.setdefault("ssl", True)
        return RedisCluster(startup_nodes=nodes, **_credentials(parts.netloc), **kwargs)
    if scheme in SENTINEL_SCHEMES:
        kwargs.update(_sentinel_db(url))
        kwargs.update(_credentials(urlsplit(url).netloc))
        if scheme.startswith("rediss"):
            kwargs.setdefault("ssl", True)
        return sentinel_for(url).master_for(sentinel_service(url), **kwargs)
    if scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(f"REDIS_URL: unknown scheme {scheme!r} (redis, rediss, unix, redis+cluster, "
                          "redis+sentinel)")
    return Redis.from_url(url, **kwargs)


def sentinel_for(url: str) -> Sentinel:
    """The :class:`Sentinel` for a ``redis+sentinel://`` URL."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    sentinel_kwargs: dict[str, Any] = {"socket_connect_timeout": CONNECT_TIMEOUT}
    if "sentinel_password" in query:
        sentinel_kwargs["password"] = query["sentinel_password"][0]
    return Sentinel(  # type: ignore[no-untyped-call]  # redis-py leaves __init__ unannotated
        hosts(parts.netloc, 26379), sentinel_kwargs=sentinel_kwargs, socket_connect_timeout=CONNECT_TIMEOUT)


def sentinel_service(url: str) -> str:
    """The master's name in a ``redis+sentinel://host:port/<service>[/db]`` URL."""
    service = urlsplit(url).path.strip("/").split("/")[0]
    if not service:
        raise ConfigError("REDIS_URL: a redis+sentinel:// URL names the master: redis+sentinel://host:26379/mymaster")
    return service


def _sentinel_db(url: str) -> dict[str, Any]:
    parts = urlsplit(url).path.strip("/").split("/")
    return {"db": int(parts[1])} if len(parts) > 1 and parts[1] else {}


def queue_pool(url: str, **kwargs: Any) -> ConnectionPool:
    """A connection pool for the job queue (arq) on ``url``: one Redis or a Sentinel master.

    Values stay bytes (arq decodes its own). A cluster URL is refused: arq's
    queue keys and its transactions do not fit a cluster (docs/scaling.md).

    Example::

        ArqRedis(connection_pool=queue_pool("redis+sentinel://10.0.0.5:26379/mymaster"))
    """
    if is_cluster_url(url):
        raise ConfigError("the job queue cannot run on a Redis Cluster: set QUEUE_REDIS_URL to a plain Redis "
                          "or a Sentinel master")
    if is_sentinel_url(url):
        kwargs.update(_sentinel_db(url))
        kwargs.update(_credentials(urlsplit(url).netloc))
        pool: ConnectionPool = SentinelConnectionPool(  # type: ignore[no-untyped-call]
            sentinel_service(url), sentinel_for(url), **kwargs)
        return pool
    return ConnectionPool.from_url(url, **kwargs)


def connect(url: str, *, timeout: float = DEFAULT_TIMEOUT, **kwargs: Any) -> RedisBackend:
    """A :class:`RedisBackend` on ``url``; nothing connects until the first call.

    Example::

        backend = connect("redis://127.0.0.1:6379/0", timeout=0.5)
    """
    return RedisBackend(client_for(url, **kwargs), timeout=timeout)
