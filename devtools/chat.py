"""``bot chat``: a terminal conversation through the real webhook path.

Each line is sent as a Twilio-signed form POST to ``/twilio/messages`` of an
in-process app, exactly as transcript replay does it
(:class:`~devtools.replay.inprocess.InProcessConversation`): the TwiML answer and any
message the bot sends through the REST API (to a local Twilio API, never the
real one) are printed.

With ``--record FILE`` the session is written as a transcript whose
expectations hold exactly what the bot did (a ``/button N`` press as a
``button:`` step with the button's payload) (:mod:`devtools.replay.record`); the
clock is frozen at the start of the session and kept as ``now:``, so the file
replays green as written (``bot replay FILE``).

With ``--voice`` the session is a phone call to ``/twilio/voice``, played
like Twilio plays it (:class:`~devtools.simulator.calls.CallPlayer`): each line is
speech (``SpeechResult``), ``#12`` presses keys, ``/silence`` says nothing,
``/hangup`` (or Ctrl-D) hangs up; every ``<Say>`` is printed.

On WhatsApp, quick-reply buttons show under the message (``[Yes] [No]``) with
the content template's name; ``/button N`` presses the Nth one. A list picker
(more than three options) shows its button and its items, one numbered line
each; ``/button N`` picks the Nth item.

Example::

    $ bot chat --record tests/transcripts/hello.yaml
    you> hi
    bot> Hi! This is Bright Smile Dental. ...
    ^D
    recorded 1 step to tests/transcripts/hello.yaml
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from bot.clock import Clock, FrozenClock, SystemClock
from bot.errors import TranscriptError
from bot.messages import Channel
from bot.runtime import build_store
from bot.settings import Settings
from devtools.replay.inprocess import InProcessConversation
from devtools.replay.record import TranscriptRecorder
from devtools.replay.report import StepObservation
from devtools.replay.transcript import ButtonStep, CallStep, DigitsStep, HangupStep, Step, UserStep


async def run_chat(
    settings: Settings,
    *,
    whatsapp: bool,
    user: str,
    bot: str,
    profile_name: str | None,
    lines: Iterable[str],
    interactive: bool,
    out: TextIO | None = None,
    record: Path | None = None,
    now: datetime | None = None,
    voice: bool = False,
) -> None:
    """Read lines, send each as a signed inbound message, print the replies.

    ``record``: write the session to this path as a transcript when the input
    ends (the file must not exist yet, so no earlier recording is lost).
    ``now``: freeze the clock at this moment for the whole session (``bot chat
    --now 2026-03-07T18:00:00-05:00``), as replay does, so a conversation can
    be reproduced ("are you open now?" on a Saturday evening).

    Example::

        await run_chat(settings, whatsapp=False, user="+14155550100", bot="+15005550006",
                       profile_name=None, lines=["hi\\n"], interactive=False, record=Path("hi.yaml"))
    """
    out = out or sys.stdout
    channel = Channel.WHATSAPP if whatsapp else Channel.SMS
    if voice:
        if whatsapp or record is not None:
            print("error: --voice is a phone call; it takes neither --whatsapp nor --record", file=sys.stderr)
            raise SystemExit(2)
        await _run_call(settings, user=user, bot=bot, lines=lines, interactive=interactive, out=out,
                        clock=SystemClock() if now is None else FrozenClock(now))
        return
    if record is not None:
        _refuse_existing(record)

    clock: Clock = SystemClock() if now is None else FrozenClock(now)
    recorder: TranscriptRecorder | None = None
    if record is not None:
        # Frozen for the session: the recording replays at this very moment.
        start = now or datetime.now(UTC).replace(microsecond=0)
        clock = FrozenClock(start)
        recorder = TranscriptRecorder(
            name=record.stem.replace("_", " "),
            channel=channel,
            user=user,
            profile_name=profile_name if whatsapp else None,
            now=start,
            comment=(
                f"Recorded with `bot chat --record` on {start.date().isoformat()}. The expectations hold exactly\n"
                "what the bot said; loosen them (reply_contains, reply_matches) before committing.\n"
                f"Run it with: bot replay {record}"
            ),
        )
        if settings.llm_model:
            print(
                "note: LLM_MODEL is set, but model answers are not recorded; replay runs without a model "
                "unless you add llm: outputs to the file",
                file=out,
            )

    async with InProcessConversation(
        settings,
        channel=channel,
        user=user,
        bot=bot,
        profile_name=profile_name,
        clock=clock,
        store=build_store(settings),
    ) as conversation:
        if interactive:
            print(f"Chatting over {channel.value} as {user}. Ctrl-D to quit.", file=out)
        for line in _prompted(lines, interactive, out):
            text = line.rstrip("\n")
            if not text.strip():
                continue
            press = _button_press(text, conversation.offered_buttons)
            if isinstance(press, str) and press.startswith("error:"):
                print(press, file=out)
                continue
            seen = await conversation.step(ButtonStep(press) if press is not None else UserStep(text))
            if seen.http_status not in (None, 200):
                print(f"[HTTP {seen.http_status}] " + "; ".join(seen.problems), file=out)
                continue
            for problem in seen.problems:
                print(f"[!] {problem}", file=out)
            mine = [m for m in seen.outcome.sent if Channel.from_address(m.to)[1] == user]
            if not mine:
                print("bot> (no reply)", file=out)
            for message in seen.outcome.sent:
                to = "" if message in mine else f"(to {message.to}) "
                # Twilio's own keyword confirmations (SMS) are not the bot's words.
                who = "twilio" if message.via == "twilio" else "bot"
                # On WhatsApp say which content template went, as Twilio's logs would.
                tag = f"[template {message.template}] " if message.template and channel is Channel.WHATSAPP else ""
                print(f"{who}> {to}{tag}{message.body}", file=out)
                if message.buttons and message.list_button is not None:
                    # A list picker: the items open from a button, one per line.
                    print(f"     [{message.list_button}] (/button N picks one)", file=out)
                    for number, title in enumerate(message.buttons, 1):
                        print(f"       {number}. {title}", file=out)
                elif message.buttons:
                    print("     " + " ".join(f"[{title}]" for title in message.buttons)
                          + "   (/button N presses one)", file=out)
                for url in message.media:
                    print(f"     [media] {url}", file=out)
            if recorder is not None and press is None:
                recorder.add(text, seen.outcome)
            elif recorder is not None and press is not None:
                recorder.add_button(press, seen.outcome)  # replays as a `button:` step
            out.flush()

    if recorder is not None and record is not None:
        if not recorder.turns:
            print("nothing was said; no transcript written", file=out)
            return
        try:
            recorder.write(record)
        except TranscriptError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(1) from None
        count = len(recorder.turns)
        print(f"recorded {count} step{'s' if count != 1 else ''} to {record}", file=out)


def _button_press(text: str, offered: list[str]) -> str | None:
    """``/button N``: the payload of the Nth button last offered (from 1); an ``error: ...`` line when
    there is none; None for any other text."""
    parts = text.split()
    if not parts or parts[0] != "/button":
        return None
    if len(parts) != 2 or not parts[1].isdigit():
        return "error: /button N presses the Nth button shown, e.g. /button 1"
    index = int(parts[1])
    if not offered:
        return "error: no buttons are on offer"
    if not 1 <= index <= len(offered):
        return f"error: there are {len(offered)} buttons; /button 1 to /button {len(offered)}"
    return offered[index - 1]


async def _run_call(
    settings: Settings, *, user: str, bot: str, lines: Iterable[str], interactive: bool, out: TextIO, clock: Clock
) -> None:
    """``bot chat --voice``: one call, a line at a time."""
    async with InProcessConversation(
        settings, channel=Channel.VOICE, user=user, bot=bot, clock=clock, store=build_store(settings),
    ) as conversation:
        if interactive:
            print(f"Calling the bot as {user}. Type what you say; #1 presses 1; /silence; /hangup or Ctrl-D.",
                  file=out)
        _print_call(await conversation.step(CallStep()), out)

        def ended() -> bool:
            return conversation.call is None or conversation.call.ended

        for line in ([] if ended() else _prompted(lines, interactive, out)):
            text = line.strip()
            if not text:
                continue
            step: Step
            if text.startswith("#") and text[1:] and all(c in "0123456789*#" for c in text[1:]):
                step = DigitsStep(text[1:])
            elif text == "/silence":
                step = UserStep("")
            elif text == "/hangup":
                step = HangupStep()
            else:
                step = UserStep(text)
            _print_call(await conversation.step(step), out)
            if ended():
                break
        if not ended():
            await conversation.step(HangupStep())
        print("(call ended)", file=out)


def _print_call(seen: StepObservation, out: TextIO) -> None:
    for problem in seen.problems:
        print(f"[!] {problem}", file=out)
    for message in seen.outcome.sent:
        who = "bot" if message.via == "twiml" else f"sms (to {message.to})"
        print(f"{who}> {message.body}", file=out)
    out.flush()


def _refuse_existing(path: Path) -> None:
    # Checked before the session starts: nothing typed is lost to a name clash.
    if path.exists():
        print(f"error: {path} already exists; record to a new file (or delete it first)", file=sys.stderr)
        raise SystemExit(2)


def _prompted(lines: Iterable[str], interactive: bool, out: TextIO) -> Iterable[str]:
    if interactive:
        print("you> ", end="", file=out, flush=True)
    for line in lines:
        yield line
        if interactive:
            print("you> ", end="", file=out, flush=True)
