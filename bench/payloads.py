"""Realistic, signed inbound traffic for the load test.

Thousands of distinct users each follow a short journey (say hello and ask a
question, book an appointment step by step, text HELP/STOP/START ...). In
cohorts of 400 users the journeys are interleaved round by round -- every
user's first message, then every user's second -- so one user's messages are
~400 requests apart and arrive in order, as they would from real phones, and
every ~1,400 requests carry the whole mix. Every message has its
own ``MessageSid`` and its own ``X-Twilio-Signature``, computed with the
official SDK over ``PUBLIC_BASE_URL`` + path + params (via
:class:`devtools.webhook_client.WebhookClient`, which signs exactly like Twilio).

The file the wrk script reads has one request per line: ``signature<TAB>body``
(the body is urlencoded, so it never contains a tab or a newline).

Example::

    traffic = generate(20_000, seed=1)
    write_wrk_file(traffic, Path("/tmp/requests.tsv"), auth_token="t",
                   public_base_url="https://bot.example.com")
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from bot.messages import Channel
from devtools.webhook_client import WebhookClient, inbound_form

PATH = "/twilio/messages"
BOT_NUMBER = "+15005550006"

GREETINGS = ["hi", "hello", "hey there", "Hi!!", "good morning", "hey hey", "hello bright smile",
             "hiya", "Hey", "good afternoon"]
QUESTIONS = {
    "hours": ["what are your hours", "r u open on sat?", "when do you close today", "hours?",
              "what time do you open tmrw", "are you open sunday"],
    "location": ["where are you located", "whats the address", "how do i get to your office",
                 "address please", "where r u"],
    "pricing": ["how much is a cleaning", "price of whitening?", "what do you charge for a filling",
                "how much for a checkup", "what are your prices"],
}
BOOK_START = ["i want to book a cleaning", "can i book a checkup", "book a whitening pls",
              "id like to make an appointment for a filling", "need a cleaning appointment"]
BOOK_DATE = ["tomorrow", "next tuesday", "friday", "monday", "next wednesday", "thursday"]
BOOK_TIME = ["10am", "at 2", "9:30", "3pm", "11am", "1:30 pm"]
BOOK_CONFIRM = ["yes", "1", "yep", "Yes please"]
THANKS = ["thanks", "thank you!", "ok thx", "great, thanks"]
OTHER = ["do you take insurance?", "is parking free", "can my kid come too"]
# Texts the offline NLU leaves as ``fallback`` (so they reach a model when one is set).
OUT_OF_SCOPE = ["do you take insurance?", "what's the meaning of life", "tell me a joke about pirates",
                "who won the football game last night"]

# Journeys and their weights: (kind, text choices) per step.
Step = tuple[str, Sequence[str]]


def _question() -> Step:
    return ("question", [q for qs in QUESTIONS.values() for q in qs])


JOURNEYS: list[tuple[float, list[Step]]] = [
    (0.30, [("greeting", GREETINGS), _question(), _question(), ("other", THANKS)]),
    (0.25, [("greeting", GREETINGS), ("booking", BOOK_START), ("booking", BOOK_DATE),
            ("booking", BOOK_TIME), ("booking", BOOK_CONFIRM)]),
    (0.20, [_question(), _question()]),
    (0.15, [("keyword", ["HELP"]), _question(), ("keyword", ["STOP"]), ("keyword", ["START"]),
            ("greeting", GREETINGS)]),
    (0.10, [("greeting", GREETINGS), ("other", OTHER)]),
]


@dataclass(frozen=True, slots=True)
class Message:
    """One inbound message of the generated traffic."""

    kind: str  # greeting | question | booking | keyword | other
    channel: Channel
    user: str
    body: str


def generate(count: int, *, seed: int = 1, whatsapp_share: float = 0.3, cohort: int = 400) -> list[Message]:
    """``count`` messages from about ``count / 3.5`` distinct users.

    Users come in cohorts of ``cohort``; within a cohort the journeys are
    interleaved round by round, so any stretch of a few thousand requests has
    the full mix (first messages and later booking steps) while one user's
    messages stay about ``cohort`` requests apart (rarely in flight together).
    """
    rng = random.Random(seed)
    weights = [w for w, _ in JOURNEYS]
    # A run-specific number block keeps users distinct from any earlier run's.
    block = rng.randrange(100, 999)
    out: list[Message] = []
    serial = 0
    while len(out) < count:
        users: list[tuple[Channel, str, list[Step]]] = []
        for _ in range(cohort):
            _, steps = rng.choices(JOURNEYS, weights)[0]
            channel = Channel.WHATSAPP if rng.random() < whatsapp_share else Channel.SMS
            users.append((channel, f"+1{block}{serial:07d}", steps))
            serial += 1
        for rnd in range(max(len(s) for _, _, s in users)):
            order = [u for u in users if rnd < len(u[2])]
            rng.shuffle(order)
            for channel, user, steps in order:
                kind, texts = steps[rnd]
                out.append(Message(kind, channel, user, rng.choice(texts)))
    return out[:count]


def mix(messages: Sequence[Message]) -> dict[str, object]:
    """Share of each kind, distinct users and the WhatsApp share."""
    kinds = Counter(m.kind for m in messages)
    return {
        "messages": len(messages),
        "distinct_users": len({(m.channel, m.user) for m in messages}),
        "kinds": {k: round(v / len(messages), 3) for k, v in sorted(kinds.items())},
        "whatsapp_share": round(sum(m.channel is Channel.WHATSAPP for m in messages) / len(messages), 3),
    }


def signed_lines(
    messages: Sequence[Message], *, auth_token: str, public_base_url: str, run_id: str,
    account_sid: str = "AC" + "0" * 32,
) -> Iterator[str]:
    """``signature<TAB>body`` per message; ``run_id`` prefixes every MessageSid."""
    # WebhookClient.signed never touches the network; the client only carries the base URL.
    client = WebhookClient(httpx.AsyncClient(base_url=public_base_url), auth_token=auth_token,
                           public_base_url=public_base_url)
    for i, m in enumerate(messages):
        sid = f"SM{run_id}{i:0{32 - len(run_id)}x}"
        fields = inbound_form(m.channel, m.user, BOT_NUMBER, m.body, message_sid=sid,
                              account_sid=account_sid, profile_name="Sam" if m.channel is Channel.WHATSAPP else None)
        body, headers = client.signed(PATH, fields)
        yield f"{headers['X-Twilio-Signature']}\t{body.decode()}"


def write_wrk_file(
    messages: Sequence[Message], path: Path, *, auth_token: str, public_base_url: str, run_id: str,
    account_sid: str = "AC" + "0" * 32,
) -> None:
    with path.open("w", encoding="utf-8") as out:
        for line in signed_lines(messages, auth_token=auth_token, public_base_url=public_base_url,
                                 run_id=run_id, account_sid=account_sid):
            out.write(line + "\n")
