"""Every Lua script and pipeline the Redis stores run, in every storage test, touches one cluster slot.

The check (:class:`tests.support.slots.SlotCheck`) wraps redis-py for each
test: a script call's KEYS must hash to one slot, a pipeline must not be a
transaction, and on a cluster each pipelined command must touch one slot,
else the test fails naming the keys. The contract suites run over memory,
one Redis and a real Redis Cluster, so every code path they cover is checked
here, and on the cluster for real.
"""

from __future__ import annotations

import pytest

from tests.support.slots import SlotCheck


@pytest.fixture(autouse=True)
def slot_check(monkeypatch: pytest.MonkeyPatch) -> SlotCheck:
    return SlotCheck.install(monkeypatch)
