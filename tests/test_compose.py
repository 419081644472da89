"""docker-compose.yml is valid (offline, against the Compose spec) and production-shaped."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).parents[1]


def test_compose_file_validates_against_the_compose_spec() -> None:
    tool = shutil.which("check-jsonschema") or str(Path(sys.executable).parent / "check-jsonschema")
    result = subprocess.run(
        [tool, "--builtin-schema", "vendor.compose-spec", str(ROOT / "docker-compose.yml")],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_services_are_production_shaped() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"app", "redis"} <= set(services)
    assert "--appendonly" in services["redis"]["command"]
    assert services["redis"]["command"][services["redis"]["command"].index("--appendonly") + 1] == "yes"
    for name, service in services.items():
        if service.get("restart") == "no":  # a one-shot (the cluster's create step)
            continue
        assert "healthcheck" in service, name
        assert service.get("restart") in {"unless-stopped", "always"}, name
    assert services["app"]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert services["app"]["environment"]["REDIS_URL"].startswith("redis://redis:")


def test_the_cluster_profile_runs_three_nodes_two_webs_and_two_workers() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    cluster = {name: svc for name, svc in services.items() if "cluster" in svc.get("profiles", ())}
    nodes = [name for name, svc in cluster.items() if "--cluster-enabled" in svc.get("command", [])]
    assert len(nodes) == 3
    create = cluster["cluster-create"]
    assert "--cluster create" in create["command"][-1] and set(create["depends_on"]) == set(nodes)
    bots = {name: svc for name, svc in cluster.items() if svc.get("image") == "twilio-bot:latest"}
    commands = sorted(" ".join(svc["command"][:2]) for svc in bots.values())
    assert commands == ["bot serve", "bot worker"]
    for svc in bots.values():
        assert svc["deploy"]["replicas"] == 2
        assert svc["environment"]["REDIS_URL"].startswith("redis+cluster://")
        assert svc["environment"]["QUEUE_REDIS_URL"].startswith("redis://redis-queue:")
        assert svc["depends_on"]["cluster-create"]["condition"] == "service_completed_successfully"
    # The default profile is untouched: `docker compose up` still starts one Redis, the app and the worker.
    default = {name for name, svc in services.items() if not svc.get("profiles")}
    assert default == {"redis", "app", "worker"}
