"""Redis Cluster slots of the bot's Lua scripts and pipelines: found in its source, checked on every call.

:func:`bot_scripts` and :func:`bot_pipelines` read ``bot/`` (its syntax
tree, so a script or pipeline added later cannot be missed): every
``register_script(<CONSTANT>)`` and every ``.pipeline(...)`` call;
:func:`bot_multi_key_commands` every direct command over several keys.
:class:`SlotCheck` wraps redis-py for one test: each script call must name
keys of one slot, each pipeline the bot opens must be non-transactional (a
cluster runs no MULTI across nodes) and, on a cluster, each of its commands
must touch one slot (keys found by the cluster's own command parser). A
call that breaks this fails the test at once, naming its keys.

Example::

    check = SlotCheck.install(monkeypatch)
    ...                                   # run the stores on the cluster
    assert check.scripts_called() == set(bot_scripts())
    assert check.pipeline_sites() == bot_pipelines()
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio.client import Pipeline, Redis
from redis.asyncio.cluster import ClusterPipeline, RedisCluster
from redis.commands.core import AsyncScript
from redis.crc import key_slot

ROOT = Path(__file__).parents[2]
BOT = ROOT / "bot"


def slots_of(keys: tuple[str, ...]) -> set[int]:
    """The cluster slots ``keys`` hash to (hash tags included)."""
    return {key_slot(key.encode()) for key in keys}


def _bot_modules() -> list[tuple[str, ast.Module]]:
    return [(str(path.relative_to(ROOT)), ast.parse(path.read_text(encoding="utf-8")))
            for path in sorted(BOT.rglob("*.py"))]


def bot_scripts() -> dict[str, str]:
    """Every Lua script ``bot/`` registers: its source -> ``path:CONSTANT``.

    A script given as anything but a module-level string constant fails
    here: the check below must be able to name it.
    """
    found: dict[str, str] = {}
    for path, tree in _bot_modules():
        constants = {target.id: node.value.value for node in tree.body if isinstance(node, ast.Assign)
                     for target in node.targets if isinstance(target, ast.Name)
                     and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr == "register_script":
                arg = node.args[0] if node.args else None
                if not isinstance(arg, ast.Name) or arg.id not in constants:
                    raise AssertionError(f"{path}:{node.lineno}: register a module-level script constant")
                found[constants[arg.id]] = f"{path}:{arg.id}"
    return found


def bot_pipelines() -> set[str]:
    """Every place ``bot/`` opens a Redis pipeline, as ``path:line``."""
    return {f"{path}:{node.lineno}" for path, tree in _bot_modules() for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "pipeline"}


#: redis-py commands over several keys (a cluster runs them only when all share one slot).
MULTI_KEY_COMMANDS = frozenset({
    "mget", "mset", "msetnx", "sunion", "sunionstore", "sinter", "sinterstore", "sintercard", "sdiff",
    "sdiffstore", "zunion", "zunionstore", "zinter", "zinterstore", "zintercard", "zdiff", "zdiffstore",
    "rename", "renamenx", "smove", "lmove", "blmove", "rpoplpush", "brpoplpush", "lmpop", "blmpop", "zmpop",
    "bzmpop", "pfmerge", "pfcount", "bitop", "zrangestore", "watch", "transaction", "blpop", "brpop",
})
#: Commands that take one key or several: several only count.
VARIADIC_KEY_COMMANDS = frozenset({"delete", "unlink", "exists", "touch"})


def bot_multi_key_commands() -> set[str]:
    """Every direct multi-key Redis command in ``bot/`` (outside scripts), as ``path:line command``."""
    found = set()
    for path, tree in _bot_modules():
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            name = node.func.attr
            if name in MULTI_KEY_COMMANDS or (name in VARIADIC_KEY_COMMANDS and (
                    len(node.args) > 1 or any(isinstance(a, ast.Starred) for a in node.args))):
                found.add(f"{path}:{node.lineno} {name}")
    return found


@dataclass
class SlotCheck:
    """What one test's scripts and pipelines touched (see the module docstring)."""

    #: (script source, keys) of every script call.
    scripts: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    #: (``path:line`` the pipeline was opened at, keys of one command) of every pipelined command on a cluster.
    commands: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    #: ``path:line`` of every pipeline of the bot that ran, on any backend.
    sites: list[str] = field(default_factory=list)
    _opened: dict[int, str] = field(default_factory=dict)

    @classmethod
    def install(cls, monkeypatch: pytest.MonkeyPatch) -> SlotCheck:
        check = cls()
        script_call = AsyncScript.__call__

        def call_script(script: AsyncScript, keys: Any = None, args: Any = None, client: Any = None) -> Any:
            found = tuple(str(k) for k in keys or ())
            source = script.script.decode() if isinstance(script.script, bytes) else str(script.script)
            check.scripts.append((source, found))
            assert len(slots_of(found)) <= 1, f"a script's keys span cluster slots: {found}"
            return script_call(script, keys=keys, args=args, client=client)

        monkeypatch.setattr(AsyncScript, "__call__", call_script)
        for client_class in (Redis, RedisCluster):
            monkeypatch.setattr(client_class, "pipeline", check._opener(client_class.pipeline))
        plain_execute, cluster_execute = Pipeline.execute, ClusterPipeline.execute

        async def execute_plain(pipe: Pipeline, raise_on_error: bool = True) -> Any:
            site = check._ran(pipe)
            assert site is None or not pipe.is_transaction, f"{site}: a transaction (MULTI) cannot span cluster slots"
            return await plain_execute(pipe, raise_on_error)

        async def execute_cluster(pipe: ClusterPipeline, raise_on_error: bool = True,
                                  allow_redirections: bool = True) -> Any:
            site = check._ran(pipe)
            if site is not None and len(pipe):
                client = pipe._client
                if client._initialize:  # redis-py's flag: not connected yet (the parser is loaded then)
                    await client.initialize()
                for command in pipe._command_stack:
                    keys = tuple(str(k) for k in await client.commands_parser.get_keys(*command.args))
                    check.commands.append((site, keys))
                    assert len(slots_of(keys)) == 1, f"{site}: a pipelined command spans cluster slots: {keys}"
            return await cluster_execute(pipe, raise_on_error, allow_redirections)

        monkeypatch.setattr(Pipeline, "execute", execute_plain)
        monkeypatch.setattr(ClusterPipeline, "execute", execute_cluster)
        return check

    def _opener(self, pipeline: Any) -> Any:
        def opened(client: Any, *args: Any, **kwargs: Any) -> Any:
            pipe = pipeline(client, *args, **kwargs)
            caller = sys._getframe(1)
            path = Path(caller.f_code.co_filename)
            if path.is_relative_to(BOT):
                self._opened[id(pipe)] = f"{path.relative_to(ROOT)}:{caller.f_lineno}"
            return pipe

        return opened

    def _ran(self, pipe: Any) -> str | None:
        site = self._opened.pop(id(pipe), None)
        if site is not None:
            self.sites.append(site)
        return site

    def scripts_called(self) -> set[str]:
        """Sources of the scripts called so far."""
        return {source for source, _ in self.scripts}

    def pipeline_sites(self) -> set[str]:
        """``path:line`` of the bot's pipelines that ran so far."""
        return set(self.sites)
