"""Every Lua script the Redis stores run, in every contract test, touches one cluster slot.

The fixture wraps redis-py's script call: each call's KEYS must hash to one
slot (``redis.crc.key_slot``), else the test fails naming the script's keys.
The contract suites run over memory, one Redis and a real Redis Cluster, so
every code path they cover is checked here, and on the cluster for real.
"""

from __future__ import annotations

from typing import Any

import pytest
from redis.commands.core import AsyncScript
from redis.crc import key_slot

#: (script's first line, keys) of every script call in the current test.
CALLS: list[tuple[str, tuple[str, ...]]] = []


def slots_of(keys: tuple[str, ...]) -> set[int]:
    return {key_slot(key.encode()) for key in keys}


@pytest.fixture(autouse=True)
def one_slot_per_script(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[str, ...]]]:
    original = AsyncScript.__call__

    def checked(self: AsyncScript, keys: Any = None, args: Any = None, client: Any = None) -> Any:
        found = tuple(str(k) for k in keys or ())
        source = self.script.decode() if isinstance(self.script, bytes) else str(self.script)
        CALLS.append((source.strip().splitlines()[0], found))
        assert len(slots_of(found)) <= 1, f"a script's keys span cluster slots: {found}"
        return original(self, keys=keys, args=args, client=client)

    CALLS.clear()
    monkeypatch.setattr(AsyncScript, "__call__", checked)
    return CALLS
