"""The `monitoring` Compose profile: Prometheus scrapes the app, Grafana loads a dashboard that
is schema-valid and whose queries name metrics (and labels) the app really exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

from bot.messages import Channel
from bot.settings import Settings
from bot.storage import RedisStore
from devtools.webhook_client import inbound_form
from tests.conftest import BOT_NUMBER, signed_client
from webhooks.app import create_app

ROOT = Path(__file__).parents[1]
MONITORING = ROOT / "monitoring"
DASHBOARD = MONITORING / "grafana" / "dashboards" / "twilio-bot.json"

# What the issue asks the dashboard to show, as words its panel titles must contain.
REQUIRED_PANELS = ["messages and turns per minute", "latency", "intents", "fallbacks", "hand-offs", "opt-outs",
                   "segments", "cost", "delivery failures by error code"]


def _exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def test_dashboard_validates_against_its_schema() -> None:
    tool = shutil.which("check-jsonschema") or str(Path(sys.executable).parent / "check-jsonschema")
    result = subprocess.run(
        [tool, "--schemafile", str(MONITORING / "grafana" / "dashboard.schema.json"), str(DASHBOARD)],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_has_a_panel_for_each_thing_to_watch() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    titles = " | ".join(panel["title"].lower() for panel in dashboard["panels"])
    assert [want for want in REQUIRED_PANELS if want not in titles] == []
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    # The cost panel multiplies by a price the operator can change.
    assert any("$price_per_segment" in expr for expr in _exprs())
    assert [v["name"] for v in dashboard["templating"]["list"]] == ["price_per_segment"]


def test_compose_monitoring_profile_wires_prometheus_and_grafana_to_the_files() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert services["prometheus"]["profiles"] == ["monitoring"]
    assert services["grafana"]["profiles"] == ["monitoring"]
    assert "profiles" not in services["app"]  # `docker compose up` alone stays app + worker + Redis
    mounts = " ".join(services["prometheus"]["volumes"] + services["grafana"]["volumes"])
    for local in ("./monitoring/prometheus/prometheus.yml", "./monitoring/grafana/provisioning",
                  "./monitoring/grafana/dashboards"):
        assert local in mounts
        assert (ROOT / local).exists(), local
    scrape = yaml.safe_load((MONITORING / "prometheus" / "prometheus.yml").read_text())["scrape_configs"]
    assert scrape[0]["static_configs"][0]["targets"] == ["app:8000"]
    assert scrape[0]["metrics_path"] == "/metrics"
    provider = yaml.safe_load((MONITORING / "grafana/provisioning/dashboards/dashboards.yml").read_text())
    dashboards_mount = next(v for v in services["grafana"]["volumes"] if v.startswith("./monitoring/grafana/dash"))
    assert provider["providers"][0]["options"]["path"] == dashboards_mount.split(":")[1]
    datasource = yaml.safe_load((MONITORING / "grafana/provisioning/datasources/prometheus.yml").read_text())
    uid = datasource["datasources"][0]["uid"]
    dashboard = json.loads(DASHBOARD.read_text())
    assert {panel["datasource"]["uid"] for panel in dashboard["panels"]} == {uid}


async def test_every_dashboard_query_names_metrics_and_labels_the_app_exports(
    settings: Settings, redis_store: RedisStore,
) -> None:
    app = create_app(settings, store=redis_store)
    client = signed_client(app)
    try:
        # Some traffic, so labelled series exist and their label names can be checked.
        await client.post("/twilio/messages", inbound_form(Channel.SMS, "+14155550111", BOT_NUMBER, "hi"))
        await client.post("/twilio/messages", inbound_form(Channel.SMS, "+14155550111", BOT_NUMBER, "STOP"))
        text = (await client.http.get("/metrics")).text
    finally:
        await client.http.aclose()
    samples: dict[str, set[str]] = {}  # sample name -> label names seen
    families: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        families[family.name] = family.type
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}.get(family.type, [""])
        for suffix in suffixes:
            samples.setdefault(family.name + suffix, set())
        for sample in family.samples:
            samples.setdefault(sample.name, set()).update(sample.labels)

    exprs = _exprs()
    assert exprs
    for expr in exprs:
        names = set(re.findall(r"\bbot_[a-z0-9_]+\b", expr))
        assert names, expr
        unknown = names - set(samples)
        assert not unknown, f"{expr}: the app exports no {sorted(unknown)}"
        # Labels used in `by (...)` and in selectors must be labels of those metrics (when seen).
        used = set()
        for group in re.findall(r"by \(([^)]*)\)", expr):
            used |= {label.strip() for label in group.split(",")} - {"le"}
        for selector in re.findall(r"\{([^}]*)\}", expr):
            used |= {m.group(1) for m in re.finditer(r"([a-z_]+)\s*(?:=~|!=|!~|=)", selector)}
        seen = set().union(*(samples[n] for n in names))
        if seen:
            assert used <= seen | {"le"}, f"{expr}: labels {sorted(used - seen)} are not on {sorted(names)}"


def test_prometheus_scrapes_every_worker_on_the_port_compose_gives_it() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    port = int(services["worker"]["environment"]["WORKER_METRICS_PORT"])
    scrape = yaml.safe_load((MONITORING / "prometheus" / "prometheus.yml").read_text())["scrape_configs"]
    worker = next(job for job in scrape if job["job_name"] == "twilio-bot-worker")
    assert worker["metrics_path"] == "/metrics"
    # DNS service discovery: the service name resolves to every worker container (--scale worker=N).
    assert worker["dns_sd_configs"] == [{"names": ["worker"], "type": "A", "port": port}]
