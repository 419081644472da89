"""``bot eval``: the figures it prints are counted from what the bot really did."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage
from typer.testing import CliRunner

from bot.cli import app, dev_settings
from bot.errors import TranscriptError
from devtools.replay.evaluate import evaluate

SET = """\
name: labelled sms
user: "+14155550123"
turns:
  - user: "what are your hours"
    expect: {intent: hours}
  - user: "book a cleaning tmrw at 3pm"
    expect: {intent: book, slots: {service: cleaning, date: "2026-03-03", time: "15:00"}}
  # Wrong on purpose: the bot says affirm, and the slot is not read.
  - user: "yes"
    expect: {intent: book, slots: {service: whitening}}
  - user: "who won the game last night"
    expect: {intent: fallback}
---
name: scripted model on whatsapp
channel: whatsapp
user: "+14155550124"
llm:
  - '{"intent": "fallback", "answer": "We are at 500 Market St."}'
turns:
  - user: "zzqx blorp"
    expect: {intent: fallback}
  - user: "hi"
"""


@pytest.fixture
def conversations(tmp_path: Path) -> Path:
    path = tmp_path / "set.yaml"
    path.write_text(SET)
    return path


async def test_offline_figures(conversations: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLM_MODEL", raising=False)
    report = await evaluate([conversations], settings=dev_settings(llm_model=None))
    assert (report.conversations, report.passed, report.turns) == (2, 1, 6)
    assert (report.intent_correct, report.intent_labelled) == (4, 5)
    assert (report.slots_correct, report.slots_labelled) == (3, 4)
    # One turn called the (scripted) model; two fell back (the game, the model's own answer).
    assert (report.model_turns, report.model_calls, report.fallback_turns) == (1, 1, 2)
    # Only the SMS conversation's turns count for segments; each reply fits one.
    assert report.sms_turns == 4 and report.segments_per_turn == 1.0
    text = report.text()
    assert "intent accuracy        80.0%  (4/5 labelled turns)" in text
    assert "slot accuracy          75.0%  (3/4 labelled slots)" in text
    assert any("intent book, got affirm" in miss for miss in report.misses)


async def test_a_configured_model_answers_every_conversation_and_is_measured(conversations: Path) -> None:
    answer = AIMessage(
        content='{"intent": "fallback", "answer": "Sorry, I can only help with our clinic."}',
        usage_metadata={"input_tokens": 120, "output_tokens": 15, "total_tokens": 135},
        response_metadata={"cost": 0.0002},
    )
    model = FakeMessagesListChatModel(responses=[answer])
    report = await evaluate([conversations], settings=dev_settings(llm_model=None), model=model)
    # The llm: script is ignored: the model answers both out-of-scope turns.
    assert report.model_calls == 2 and report.model_turns == 2
    assert (report.input_tokens, report.output_tokens) == (240, 30)
    assert report.cost == pytest.approx(0.0004)
    assert len(report.latencies) == 2
    figures = report.to_dict()
    assert figures["model"] == "FakeMessagesListChatModel" and figures["model_latency_median_ms"] is not None


def test_the_command_prints_and_writes_json(conversations: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLM_MODEL", raising=False)
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(app, ["eval", str(conversations), "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "bot eval: 2 conversations, 6 turns" in result.output
    assert "fallback rate" in result.output and "SMS segments/turn" in result.output
    data = json.loads(out.read_text())
    assert data["intent_accuracy"] == 0.8 and data["slot_accuracy"] == 0.75


def test_a_bad_path_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["eval", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "no such file or folder" in result.output


async def test_nothing_matching_k_is_an_error(conversations: Path) -> None:
    with pytest.raises(TranscriptError, match="no conversation matches"):
        await evaluate([conversations], settings=dev_settings(llm_model=None), k="no such conversation")


def test_slots_expectation_is_parsed_and_strict() -> None:
    from devtools.replay.transcript import parse_transcripts

    [t] = parse_transcripts(
        'name: s\nuser: "+14155550123"\nturns:\n  - user: "book a cleaning"\n'
        '    expect: {slots: {service: cleaning, time: "15:00"}}\n',
        "s.yaml",
    )
    assert t.turns[0].expect is not None and t.turns[0].expect.slots == (("service", "cleaning"), ("time", "15:00"))
    with pytest.raises(TranscriptError, match=r"s\.yaml:5: slots is empty"):
        parse_transcripts('name: s\nuser: "+14155550123"\nturns:\n  - user: "hi"\n    expect: {slots: {}}\n', "s.yaml")


async def test_a_wrong_slot_fails_replay(tmp_path: Path) -> None:
    from devtools.replay.runner import ReplayRunner
    from devtools.replay.transcript import load_transcripts

    path = tmp_path / "slot.yaml"
    path.write_text('name: s\nuser: "+14155550123"\nturns:\n  - user: "book a cleaning tmrw at 3pm"\n'
                    '    expect: {slots: {time: "16:00"}}\n')
    report = await ReplayRunner(dev_settings(llm_model=None)).run(load_transcripts([path]))
    [result] = report.results
    assert result.status == "failed" and 'expected slot time "16:00", got "15:00"' in (result.failure or "")
