"""The replay runner: transcripts that must fail do fail, with the right message.

Replay goes through the real signed webhook path in-process; a few tests swap
the Brain (``handler_factory``) or the store (``store_factory``) for broken
ones, to prove that replay notices what they get wrong.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from twilio.request_validator import RequestValidator

from bot.engine import TurnContext, TurnHandler
from bot.messages import Reply, TurnResult
from bot.settings import Settings
from bot.storage import MemoryStore
from bot.storage.base import ConversationKey, TurnStart
from devtools.replay.config import PUBLIC_URL
from devtools.replay.report import ConversationResult, StepResult
from devtools.replay.runner import YOUNG_GENERATION, ReplayRunner
from devtools.replay.scripted_model import ScriptedChatModel
from devtools.replay.transcript import load_transcripts, parse_transcripts
from tests.support.servers import run_app
from webhooks.app import create_app

SPINE = Path(__file__).parents[2] / "transcripts" / "spine"
GREETING = "Hi! This is Bright Smile Dental."


@pytest.fixture
def replay_settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(redis_url=None)


@pytest.fixture
def runner(replay_settings: Settings) -> ReplayRunner:
    return ReplayRunner(replay_settings)


async def replay(runner: ReplayRunner, source: str) -> ConversationResult:
    [transcript] = parse_transcripts(source, path="case.yaml")
    report = await runner.run([transcript])
    return report.results[0]


def failure(result: ConversationResult) -> str:
    assert result.status == "failed", result.line()
    assert result.failure is not None
    return result.failure


# -- the project's own transcripts ---------------------------------------------------


async def test_the_spine_transcripts_pass(runner: ReplayRunner) -> None:
    report = await runner.run(load_transcripts([SPINE]))
    assert report.ok, "\n".join(r.failure or "" for r in report.results)
    assert report.summary() == f"{report.passed} passed, 0 failed"
    assert report.passed >= 6


async def test_each_conversation_is_isolated_so_order_and_parallelism_do_not_matter(
    replay_settings: Settings,
) -> None:
    # Same texter in every copy: a STOP in one must not silence another.
    transcripts = load_transcripts([SPINE]) * 3
    forward = await ReplayRunner(replay_settings, concurrency=8).run(transcripts)
    backward = await ReplayRunner(replay_settings, concurrency=1).run(list(reversed(transcripts)))
    assert forward.ok and backward.ok


async def test_with_redis_each_conversation_has_its_own_keys_and_leaves_none(
    make_settings: Callable[..., Settings], redis_url: str, redis_client: Any
) -> None:
    runner = ReplayRunner(make_settings(redis_url=redis_url))
    report = await runner.run(load_transcripts([SPINE]) * 2)
    assert report.ok, "\n".join(r.failure or "" for r in report.results)
    keys = [key async for key in redis_client.scan_iter("*")]
    # Only the dedupe records remain: answers kept for retries and the seen
    # MessageSids (they expire with DEDUPE_ANSWER_TTL_SECONDS / DEDUPE_TTL_SECONDS).
    assert keys and all(":msg:" in key or key.endswith(":seen") for key in keys), keys
    bots = {key.split(":")[2] for key in keys}
    assert len(bots) == len(report.results)  # a bot number per conversation


# -- failures say what was expected and what the bot sent -----------------------------


async def test_a_wrong_expected_reply_fails_with_both_texts(runner: ReplayRunner) -> None:
    text = failure(await replay(runner, """
name: wrong reply
user: "+14155550123"
turns:
  - user: "hi"
    expect: {reply: "Hello there"}
"""))
    lines = text.splitlines()
    assert lines[0] == 'case.yaml:5: "wrong reply" failed at step 1 of 1'
    assert lines[1] == '  step 1: user: "hi"'
    assert lines[2].startswith(f'  - expected reply "Hello there", but the bot sent: "{GREETING}')
    assert "(they differ from character 2)" in lines[2]
    assert lines[3] == "  the bot sent 1 message:"
    assert lines[4].startswith(f'    1. [twiml, 1 segment] "{GREETING}')


async def test_a_missing_reply_fails(runner: ReplayRunner) -> None:
    text = failure(await replay(runner, """
name: missing reply
user: "+14155550123"
turns:
  - user: "STOP"
  - user: "are you there?"
    expect: {reply_contains: "unsubscribed"}
"""))
    assert '- expected reply containing "unsubscribed", but the bot sent nothing' in text
    assert text.rstrip().endswith("the bot sent nothing")


async def test_an_extra_reply_fails(runner: ReplayRunner) -> None:
    text = failure(await replay(runner, """
name: extra reply
user: "+14155550123"
turns:
  - user: "STOP"
    expect: {replies: 1, reply_contains: "unsubscribed"}
  - user: "hi"
    expect: {no_reply: true}
  - user: "START"
  - user: "hi"
    expect: {no_reply: true}
"""))
    assert "failed at step 4 of 4" in text
    assert f'- expected no reply, but the bot sent 1 message: "{GREETING}' in text


async def test_more_replies_than_expected_fail_with_the_count(
    replay_settings: Settings,
) -> None:
    runner = ReplayRunner(replay_settings, handler_factory=fixed_answers("one", "two"))
    text = failure(await replay(runner, """
name: two answers
user: "+14155550123"
turns:
  - user: "hi"
    expect: {replies: 1}
"""))
    assert '- expected 1 reply, got 2: "one", "two"' in text


async def test_a_wrong_intent_fails(runner: ReplayRunner) -> None:
    text = failure(await replay(runner, """
name: wrong intent
user: "+14155550123"
turns:
  - user: "hi"
    expect: {intent: hours}
"""))
    assert "- expected intent hours, got greet" in text


async def test_a_step_without_a_turn_has_no_intent(runner: ReplayRunner) -> None:
    text = failure(await replay(runner, """
name: duplicate has no intent
user: "+14155550123"
turns:
  - user: "hi"
    expect: {intent: greet}
  - duplicate: true
    expect: {intent: greet}
"""))
    assert "- expected intent greet, got none (no intent was resolved)" in text


# -- exactly once ----------------------------------------------------------------------


async def test_duplicate_proves_exactly_once(runner: ReplayRunner) -> None:
    result = await replay(runner, """
name: retried
user: "+14155550123"
turns:
  - user: "hi"
    expect: {replies: 1, intent: greet}
  - duplicate: true
    expect: {replies: 1}
  - duplicate: true
""")
    assert result.status == "passed", result.failure
    first, second, third = result.steps
    assert second.sent == first.sent and third.sent == first.sent
    assert second.intent is None  # the turn did not run again


class ForgetfulStore(MemoryStore):
    """A broken store: it never recognises a message it has handled.

    Each delivery is filed under its own name (the SID and the delivery's
    turn token), so a retry of the same MessageSid looks new, whatever keys
    the real store keeps for exactly-once.
    """

    async def begin_turn(self, key: ConversationKey, message_sid: str, token: str, **kwargs: Any) -> TurnStart:
        return await super().begin_turn(key, f"{message_sid}:{token}", token, **kwargs)

    async def commit_turn(self, key: ConversationKey, message_sid: str, token: str, **kwargs: Any) -> bool:
        committed: bool = await super().commit_turn(key, f"{message_sid}:{token}", token, **kwargs)
        return committed

    async def abort_turn(self, key: ConversationKey, message_sid: str, token: str) -> None:
        await super().abort_turn(key, f"{message_sid}:{token}", token)


class Counter:
    """A Brain that answers "answer #N", N counting its turns: a retry that runs shows."""

    def __init__(self) -> None:
        self.turns = 0

    async def handle(self, ctx: TurnContext) -> TurnResult:
        self.turns += 1
        return TurnResult(replies=(Reply(text=f"answer #{self.turns}"),), intent="count")


def counting(settings: Settings, **parts: Any) -> TurnHandler:
    return Counter()


async def test_a_duplicate_that_produced_a_second_answer_fails(replay_settings: Settings) -> None:
    runner = ReplayRunner(replay_settings, handler_factory=counting, store_factory=ForgetfulStore,
                          share_handler=False)
    text = failure(await replay(runner, """
name: broken exactly-once
user: "+14155550123"
turns:
  - user: "hi"
    expect: {reply: "answer #1"}
  - duplicate: true
"""))
    assert "failed at step 2 of 2" in text
    assert re.search(r"- exactly-once broken: the retried delivery of SM[0-9a-f]{32} ran the turn again", text)
    assert re.search(r'- exactly-once broken: .* was not answered with the first answer byte for byte', text)
    assert '1. [twiml, 1 segment] "answer #2"' in text


async def test_the_same_broken_store_passes_without_duplicates(replay_settings: Settings) -> None:
    runner = ReplayRunner(replay_settings, handler_factory=counting, store_factory=ForgetfulStore,
                          share_handler=False)
    result = await replay(runner, """
name: no retry, no problem
user: "+14155550123"
turns:
  - user: "hi"
    expect: {reply: "answer #1", intent: count}
  - user: "hi"
    expect: {reply: "answer #2"}
""")
    assert result.status == "passed", result.failure


# -- the scripted model -----------------------------------------------------------------


class Parrot:
    """A Brain that says whatever the model says."""

    def __init__(self, model: ScriptedChatModel) -> None:
        self.model = model

    async def handle(self, ctx: TurnContext) -> TurnResult:
        answer = await self.model.ainvoke(ctx.message.body)
        return TurnResult(replies=(Reply(text=str(answer.content)),), intent="model")


def parrot(settings: Settings, *, chat_model: Any, **parts: Any) -> TurnHandler:
    assert chat_model is not None, "replay gives a model only to conversations with llm:"
    return Parrot(chat_model)


async def test_the_model_answers_from_the_script_in_order(replay_settings: Settings) -> None:
    runner = ReplayRunner(replay_settings, handler_factory=parrot)
    result = await replay(runner, """
name: scripted
user: "+14155550123"
llm: ["first", "second"]
turns:
  - user: "one"
    expect: {reply: "first"}
  - user: "two"
    expect: {reply: "second"}
""")
    assert result.status == "passed", result.failure
    [call] = result.steps[1].model_calls
    assert call.messages[-1].content == "two" and call.response == "second"


async def test_a_model_script_that_ran_out_fails(replay_settings: Settings) -> None:
    runner = ReplayRunner(replay_settings, handler_factory=parrot)
    text = failure(await replay(runner, """
name: too few outputs
user: "+14155550123"
llm: ["only one"]
turns:
  - user: "one"
  - user: "two"
"""))
    assert "failed at step 2 of 2" in text
    assert "- model script ran out after 1 response; add outputs to llm:" in text
    assert '2. asked "two" -> no answer (model script ran out after 1 response)' in text
    # The crash inside the turn is shown as the app logged it.
    assert "the app logged:" in text and "ModelScriptExhausted" in text


async def test_the_brain_s_model_step_uses_the_script(runner: ReplayRunner) -> None:
    result = await replay(runner, """
name: out of scope
user: "+14155550123"
llm:
  - '{"intent": "fallback", "answer": "We only do teeth, not sports."}'
turns:
  - user: "who won the game last night"
    expect: {reply_contains: "not sports", intent: fallback}
""")
    assert result.status == "passed", result.failure


async def test_a_brain_that_swallows_model_errors_still_fails_the_step(runner: ReplayRunner) -> None:
    # The Brain falls back quietly when its model fails; replay must not.
    text = failure(await replay(runner, """
name: not enough outputs
user: "+14155550123"
llm:
  - '{"intent": "fallback", "answer": "We only do teeth."}'
turns:
  - user: "who won the game last night"
  - user: "and the weather tomorrow?"
"""))
    assert "- model script ran out after 1 response" in text


# -- steps the app cannot run yet ---------------------------------------------------------


async def test_an_unknown_job_fails_clearly(runner: ReplayRunner) -> None:
    text = failure(await replay(runner, """
name: no such job
user: "+14155550123"
turns:
  - user: "hi"
  - advance: 23h
  - run: no_such_job
"""))
    assert "failed at step 3 of 3" in text
    assert '- unknown job "no_such_job"; this app\'s scheduled jobs:' in text


async def test_rest_sends_templates_buttons_jobs_and_status_callbacks(runner: ReplayRunner) -> None:
    # WhatsApp choices go out as a quick-reply content template through the
    # official SDK to the local Twilio API; the press carries the button's
    # title; the reminder job sends a template; a status callback reaches
    # /twilio/status for the bot's last REST message.
    result = await replay(runner, """
name: book, remind, report
channel: whatsapp
user: "+14155550199"
profile_name: Ana
now: "2026-03-02T09:00:00-05:00"
turns:
  - user: "book a cleaning tomorrow at 3pm"
    expect: {intent: book, replies: 1, template: quick_reply_2, reply_contains: "Tue, Mar 3"}
  - button: "yes"
    expect: {reply_contains: "booked"}
  - advance: 23h
  - run: reminders
    expect: {template: appointment_reminder, reply_contains: "Hi Ana"}
  - status: {status: undelivered, error_code: 30003}
    expect: {no_reply: true}
""")
    assert result.status == "passed", result.failure
    book, press, _, remind, status = result.steps
    assert [m.via for m in book.sent] == ["rest"] and book.sent[0].template == "quick_reply_2"
    assert press.intent == "affirm"  # the Yes button answers the confirmation
    assert remind.sent[0].via == "rest" and remind.intent is None
    assert status.http_status == 204


SMS_REMINDER = """
name: SMS reminder
user: "+14155550123"
now: "2026-03-02T09:00:00-05:00"
turns:
  - user: "book a cleaning tomorrow at 3pm"
  - user: "yes"
    expect: {reply_contains: "booked"}
  - advance: 23h
  - run: reminders
    expect: {template: TEMPLATE, replies: 1}
"""


async def test_on_sms_a_template_s_text_fallback_counts_as_that_template(runner: ReplayRunner) -> None:
    # SMS has no content templates: the sender sends the sms_fallback text
    # as a Body, and replay reads the template's name from the send ledger.
    result = await replay(runner, SMS_REMINDER.replace("TEMPLATE", "appointment_reminder"))
    assert result.status == "passed", result.failure
    [reminder] = result.steps[3].sent
    assert reminder.via == "rest" and reminder.template == "appointment_reminder"
    assert "reminder" in reminder.body.lower()


async def test_on_sms_another_template_name_fails_naming_the_one_sent(runner: ReplayRunner) -> None:
    text = failure(await replay(runner, SMS_REMINDER.replace("TEMPLATE", "some_other")))
    assert "failed at step 4 of 4" in text
    assert "- expected template some_other, but the bot sent template appointment_reminder" in text


async def test_a_status_step_before_any_message_fails(runner: ReplayRunner) -> None:
    text = failure(await replay(runner, """
name: nothing sent yet
user: "+14155550123"
turns:
  - status: delivered
"""))
    assert "the bot has not sent any message yet" in text


# -- what replay sends ----------------------------------------------------------------------


class Recorder:
    """A Brain that keeps every message it was given."""

    def __init__(self) -> None:
        self.seen: list[TurnContext] = []

    async def handle(self, ctx: TurnContext) -> TurnResult:
        self.seen.append(ctx)
        return TurnResult(replies=(Reply(text="ok"),), intent="seen")


async def test_steps_become_twilio_shaped_messages_and_the_clock_is_frozen(replay_settings: Settings) -> None:
    recorder = Recorder()
    runner = ReplayRunner(replay_settings, handler_factory=lambda settings, **parts: recorder)
    result = await replay(runner, """
name: shapes
channel: whatsapp
user: "+14155550123"
profile_name: Ana
now: "2026-03-02T09:00:00-05:00"
turns:
  - user: "look"
    media: [image/jpeg, application/pdf]
  - advance: 1d2h
  - user: ""
    location: {lat: 40.7, lon: -74.0}
  - button: "confirm"
""")
    assert result.status == "passed", result.failure
    photo, place, press = (ctx.message for ctx in recorder.seen)
    assert [m.content_type for m in photo.media] == ["image/jpeg", "application/pdf"]
    assert all(m.url.startswith("https://api.twilio.com/2010-04-01/Accounts/") for m in photo.media)
    assert photo.profile_name == "Ana" and photo.user == "+14155550123"
    assert place.location is not None and (place.location.latitude, place.location.longitude) == (40.7, -74.0)
    assert press.button_payload == "confirm" and press.button_text == "confirm"
    assert press.message_type == "button"
    assert recorder.seen[0].now.isoformat() == "2026-03-02T14:00:00+00:00"
    assert recorder.seen[1].now.isoformat() == "2026-03-03T16:00:00+00:00"


async def test_webhooks_are_signed_like_twilio(replay_settings: Settings) -> None:
    # Checked with the official SDK's validator, over the public URL replay declares.
    runner = ReplayRunner(replay_settings, handler_factory=lambda settings, **parts: Recorder())
    [transcript] = parse_transcripts('name: x\nuser: "+14155550123"\nturns:\n  - user: "hi"\n')
    from devtools.replay.inprocess import InProcessConversation

    async with InProcessConversation(replay_settings, channel=transcript.channel, user=transcript.user) as conv:
        assert conv.webhooks is not None
        body, headers = conv.webhooks.signed("/twilio/messages", conv.user_form("hi"))
    form = dict(httpx.QueryParams(body.decode()))
    validator = RequestValidator(replay_settings.twilio_auth_token.get_secret_value())
    assert validator.validate(PUBLIC_URL + "/twilio/messages", form, headers["X-Twilio-Signature"])
    assert runner.settings.llm_model is None


async def test_step_results_carry_timings_and_a_json_report(runner: ReplayRunner) -> None:
    result = await replay(runner, """
name: timed
user: "+14155550123"
turns:
  - user: "hi"
    expect: {reply_contains: "Bright Smile"}
  - advance: 1h
""")
    hi, later = result.steps
    assert isinstance(hi, StepResult) and hi.webhook_seconds is not None
    assert 0 < hi.webhook_seconds <= hi.seconds
    assert later.webhook_seconds is None
    data = result.to_dict()
    assert data["status"] == "passed" and data["file"] == "case.yaml" and data["line"] == 2
    step = data["steps"][0]
    assert step["expected"] == {"reply_contains": ["Bright Smile"]}
    assert step["actual"]["intent"] == "greet" and step["actual"]["sent"][0]["via"] == "twiml"
    assert step["timings"]["webhook_ms"] > 0


# -- against a running server -----------------------------------------------------------------


def test_replay_against_a_running_server(replay_settings: Settings) -> None:
    import asyncio

    server_settings = replay_settings.model_copy(update={"public_base_url": None})
    with run_app(create_app(server_settings)) as url:
        runner = ReplayRunner(replay_settings, url=url)
        transcripts = [
            *load_transcripts([SPINE]),
            *parse_transcripts("""
name: needs the clock
user: "+14155550123"
turns:
  - user: "hi"
    expect: {reply_contains: "Bright Smile"}
  - advance: 23h
  - user: "hi"
---
name: needs the model
user: "+14155550123"
llm: ["x"]
turns:
  - user: "hi"
""", path="local.yaml"),
        ]
        report = asyncio.run(runner.run(transcripts))
        again = asyncio.run(runner.run(transcripts))  # fresh texter numbers: no state left over
    assert report.failed == 0, "\n".join(r.failure or "" for r in report.results)
    assert again.summary() == report.summary()
    by_name = {r.name: r for r in report.results}
    clock = by_name["needs the clock"]
    assert clock.status == "skipped"
    assert clock.reason == (
        "step 2 needs the frozen clock (advance: 23h); a running server cannot replay it (--url); step 1 passed"
    )
    assert [s.status for s in clock.steps] == ["passed", "skipped", "skipped"]
    assert by_name["needs the model"].reason is not None
    assert "needs the scripted model (llm)" in by_name["needs the model"].reason
    greeting = by_name["greeting over SMS"]
    assert greeting.status == "passed"
    assert "[intent not checked on 1 step: needs in-process replay]" in greeting.line()
    assert report.mode == "url"


def test_replay_against_a_server_with_another_token_fails_with_a_hint(
    replay_settings: Settings, make_settings: Callable[..., Settings]
) -> None:
    import asyncio

    other = make_settings(twilio_auth_token="not-the-same", public_base_url=None)
    with run_app(create_app(other)) as url:
        report = asyncio.run(ReplayRunner(replay_settings, url=url).run(load_transcripts([SPINE / "help.yaml"])))
    text = report.results[0].failure or ""
    assert "POST /twilio/messages answered HTTP 403" in text
    assert "the server's auth token and PUBLIC_BASE_URL must match" in text


# -- helpers ---------------------------------------------------------------------------------


def fixed_answers(*texts: str) -> Callable[..., TurnHandler]:
    class Fixed:
        async def handle(self, ctx: TurnContext) -> TurnResult:
            return TurnResult(replies=tuple(Reply(text=t) for t in texts), intent="fixed")

    return lambda settings, **parts: Fixed()


async def test_a_run_collects_young_garbage_early_and_restores_the_collector(runner: ReplayRunner) -> None:
    before = gc.get_threshold()
    seen: list[int] = []
    transcript = parse_transcripts('name: t\nuser: "+14155550123"\nturns:\n  - user: "hi"\n')
    original = runner.run_transcript

    async def spying(t: Any) -> ConversationResult:
        seen.append(gc.get_threshold()[0])
        return await original(t)

    runner.run_transcript = spying  # type: ignore[method-assign]
    await runner.run(transcript)
    assert seen == [max(before[0], YOUNG_GENERATION)]
    assert gc.get_threshold() == before
