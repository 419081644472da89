"""``bot replay``'s output and exit status, and the pytest plugin's collection and reports."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.settings import Settings
from devtools.replay.cli import replay_command

pytest_plugins = ["pytester"]

SPINE = Path(__file__).parents[2] / "transcripts" / "spine"
# The plugin needs no pytest-asyncio; the inner runs leave it out.
INNER = ("-p", "no:asyncio", "-p", "no:cacheprovider")

PASSING = """\
name: greets
user: "+14155550123"
turns:
  - user: "hi"
    expect: {intent: greet, reply_contains: "Bright Smile"}
"""
FAILING = """\
name: expects the wrong thing
user: "+14155550123"
turns:
  - user: "hi"
    expect: {reply: "Hello there"}
"""
SKIPPED = """\
name: needs the clock
user: "+14155550123"
turns:
  - advance: 1h
"""


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(redis_url=None)


def run(settings: Settings, *paths: Path, **options: object) -> tuple[int, list[str], str]:
    out, err = io.StringIO(), io.StringIO()
    code = replay_command(list(paths), settings=settings, out=out, err=err, **options)  # type: ignore[arg-type]
    return code, out.getvalue().splitlines(), err.getvalue()


def test_all_passing_prints_one_line_each_and_exits_0(settings: Settings) -> None:
    code, lines, err = run(settings, SPINE)
    assert code == 0, "\n".join(lines)
    assert all(line.startswith("PASS ") for line in lines[:-1])
    assert lines[-1] == f"{len(lines) - 1} passed, 0 failed"
    assert err == ""


def test_a_failure_prints_its_text_indented_and_exits_1(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "cases.yaml").write_text(PASSING + "---\n" + FAILING)
    code, lines, _ = run(settings, tmp_path)
    assert code == 1
    assert lines[0] == f"PASS greets ({tmp_path / 'cases.yaml'}:1)"
    assert lines[1] == f"FAIL expects the wrong thing ({tmp_path / 'cases.yaml'}:7)"
    assert lines[2] == f'    {tmp_path / "cases.yaml"}:10: "expects the wrong thing" failed at step 1 of 1'
    assert lines[3] == '      step 1: user: "hi"'
    assert lines[4].startswith('      - expected reply "Hello there", but the bot sent: "Hi! This is Bright Smile')
    assert lines[-1] == "1 passed, 1 failed"


def test_skipped_conversations_are_counted_and_explained(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(PASSING + "---\n" + SKIPPED)
    code, lines, _ = run(settings, tmp_path, url="http://127.0.0.1:9")
    # Nothing listens on port 9: the reachable conversation fails, the other is skipped before any request.
    assert code == 1
    assert lines[-1] == "0 passed, 1 failed, 1 skipped"
    assert "SKIP needs the clock: step 1 needs the frozen clock (advance: 1h); a running server cannot replay it" in (
        "\n".join(lines)
    )
    assert "cannot reach http://127.0.0.1:9/twilio/messages" in "\n".join(lines)


def test_k_selects_by_name_or_file_name(settings: Settings) -> None:
    code, lines, _ = run(settings, SPINE, k="whatsapp")
    assert code == 0
    assert lines[:-1] and all("WhatsApp" in line for line in lines[:-1])
    code, lines, _ = run(settings, SPINE, k="help.yaml")
    assert code == 0 and lines[-1] == "2 passed, 0 failed"


def test_nothing_to_run_is_an_error_not_a_pass(settings: Settings, tmp_path: Path) -> None:
    code, lines, err = run(settings, SPINE, k="no such conversation")
    assert code == 2 and lines == []
    assert "no conversation matches -k 'no such conversation'" in err
    code, _, err = run(settings, tmp_path / "missing.yaml")
    assert code == 2 and "missing.yaml: no such file or folder" in err
    (tmp_path / "bad.yaml").write_text(PASSING.replace("expect: {intent: greet", "expect: {repl: greet"))
    code, _, err = run(settings, tmp_path / "bad.yaml")
    assert code == 2 and "bad.yaml:5: unknown key 'repl' in expect; did you mean 'reply'?" in err, err


def test_json_report(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "cases.yaml").write_text(PASSING + "---\n" + FAILING)
    report_path = tmp_path / "out" / "report.json"
    code, _, _ = run(settings, tmp_path / "cases.yaml", json_path=report_path)
    assert code == 1
    report = json.loads(report_path.read_text())
    assert report["summary"]["passed"] == 1 and report["summary"]["failed"] == 1
    assert report["mode"] == "in-process" and report["pattern"] is None
    passed, failed = report["conversations"]
    assert (passed["name"], passed["status"], passed["line"]) == ("greets", "passed", 1)
    assert failed["status"] == "failed" and failed["line"] == 7
    assert failed["failure"].startswith(f'{tmp_path / "cases.yaml"}:10: "expects the wrong thing" failed')
    [step] = failed["steps"]
    assert step["expected"] == {"reply": "Hello there"}
    assert step["actual"]["sent"][0]["body"].startswith("Hi! This is Bright Smile")
    assert step["failures"][0].startswith('expected reply "Hello there"')
    assert step["timings"]["webhook_ms"] > 0 and failed["timings"]["steps_run"] == 1


def test_the_bot_replay_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    (tmp_path / "cases.yaml").write_text(PASSING + "---\n" + FAILING)
    result = CliRunner().invoke(app, ["replay", str(tmp_path), "-k", "wrong"])
    assert result.exit_code == 1, result.output
    assert result.output.splitlines()[-1] == "0 passed, 1 failed"
    result = CliRunner().invoke(app, ["replay", str(SPINE), "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "r.json").read_text())["summary"]["failed"] == 0


# -- the pytest plugin ---------------------------------------------------------------------

REPO = Path(__file__).parents[3]


@pytest.fixture(autouse=True)
def business_data(monkeypatch: pytest.MonkeyPatch) -> None:
    # pytester runs in a temporary folder: point the bot at this repository's data.
    monkeypatch.setenv("INTENTS_DIR", str(REPO / "intents"))
    monkeypatch.setenv("PROMPTS_DIR", str(REPO / "prompts"))
    monkeypatch.delenv("REDIS_URL", raising=False)



def test_the_plugin_collects_one_item_per_conversation(pytester: pytest.Pytester) -> None:
    folder = pytester.mkdir("transcripts")
    (folder / "cases.yaml").write_text(PASSING + "---\n" + FAILING)
    # Skipped until the app has POST /twilio/status, then passes: either way not a failure.
    (folder / "status.yaml").write_text(PASSING.replace("greets", "reports delivery") + "  - status: delivered\n")
    (folder / "broken.yaml").write_text('name: x\nuser: "4155550123"\nturns:\n  - user: "hi"\n')
    pytester.makefile(".yaml", notes="not: a transcript")  # outside a transcripts folder: ignored

    result = pytester.runpytest(*INNER, "-p", "devtools.replay.pytest_plugin", "-v", "--continue-on-collection-errors")
    outcomes = result.parseoutcomes()
    assert (outcomes.get("passed", 0) + outcomes.get("skipped", 0), outcomes["failed"], outcomes["errors"]) == (2, 1, 1)
    result.stdout.fnmatch_lines([
        "*transcripts/cases.yaml::greets PASSED*",
        "*transcripts/cases.yaml::expects the wrong thing FAILED*",
    ])
    text = result.stdout.str()
    # The same failure text as bot replay, without a Python traceback.
    assert '"expects the wrong thing" failed at step 1 of 1' in text
    assert '  - expected reply "Hello there", but the bot sent: "Hi! This is Bright Smile' in text
    assert "Traceback" not in text and "raise TranscriptFailure" not in text
    assert 'broken.yaml:2: user "4155550123" is not an E.164 number' in text
    if outcomes.get("skipped"):
        assert "status step: the app has no POST /twilio/status endpoint yet (HTTP 404)" in text


def test_the_plugin_and_a_conftest_import_do_not_collect_twice(pytester: pytest.Pytester) -> None:
    folder = pytester.mkdir("transcripts")
    (folder / "cases.yaml").write_text(PASSING)
    (folder / "conftest.py").write_text("from devtools.replay.pytest_plugin import pytest_collect_file  # noqa: F401\n")
    result = pytester.runpytest(*INNER, "-p", "devtools.replay.pytest_plugin")
    result.assert_outcomes(passed=1)


def test_the_repository_collects_its_own_transcripts(pytester: pytest.Pytester) -> None:
    shutil.copytree(SPINE, pytester.path / "tests" / "transcripts" / "spine")
    shutil.copy(SPINE.parent / "conftest.py", pytester.path / "tests" / "transcripts" / "conftest.py")
    result = pytester.runpytest(*INNER, "tests", "-k", "opt_out")
    result.assert_outcomes(passed=2)
