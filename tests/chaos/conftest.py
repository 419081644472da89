"""One chaos cluster for the whole directory (starting it is the slow part); see harness.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos.harness import Cluster


@pytest.fixture(scope="session")
def chaos_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with Cluster.start(Path(tmp_path_factory.mktemp("chaos"))) as cluster:
        yield cluster


@pytest.fixture
def cluster(chaos_cluster: Cluster) -> Cluster:
    """The cluster with every process up (a test that killed one left it down)."""
    for process in (chaos_cluster.worker, *chaos_cluster.servers):
        if not process.alive:
            process.launch()
    return chaos_cluster
