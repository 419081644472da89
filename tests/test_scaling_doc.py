"""docs/scaling.md's measured figures are the committed bench report's (docs/scaling.json), not typed in."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).parents[1]
STORES = {"one Redis": "single", "Cluster (3 masters)": "cluster"}


def test_the_measured_table_and_ratios_are_the_committed_report() -> None:
    doc = (ROOT / "docs" / "scaling.md").read_text(encoding="utf-8")
    report = json.loads((ROOT / "docs" / "scaling.json").read_text(encoding="utf-8"))
    assert report["status"] == "ok"
    runs = {(run["store"], run["processes"]): run for run in report["runs"]}
    rows = re.findall(r"^\| (one Redis|Cluster \(3 masters\)) \| (\d) \| (\d+) \| (\d+) \| ([\d.]+) \| ([\d.]+) ms",
                      doc, flags=re.M)
    assert len(rows) == len(runs) == 4
    for store, processes, rps, per_process, commands, cpu in rows:
        run = runs[(STORES[store], int(processes))]
        assert int(rps) == round(run["rps"]), (store, processes)
        assert int(per_process) == round(run["rps_per_process"]), (store, processes)
        assert float(commands) == round(run["redis_commands_per_message"], 1), (store, processes)
        assert float(cpu) == round(run["redis_cpu_ms_per_message"], 3), (store, processes)
    single, cluster = report["ratios"]["single"], report["ratios"]["cluster"]
    assert f"served {single:.2f}x one" in doc and f"cluster {cluster:.2f}x" in doc.replace("\n", " ")
