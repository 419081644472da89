"""The flow-table interpreter: a new flow is a new table; intents need handlers; picking options."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from bot.brain import build_handler
from bot.clock import FrozenClock
from bot.errors import ConfigError
from bot.flows.appointments import DATE, TIME, appointment_values
from bot.flows.base import Turn
from bot.flows.options import Offered, pick, recall, remember
from bot.flows.table import Change, Confirm, FlowTable, Offer, Slot, TableFlow
from bot.messages import Reply
from bot.nlu.slots import Slots
from bot.settings import Settings
from bot.storage import RedisStore
from bot.templates import ReplyTemplates
from tests.bot.test_brain import MONDAY_9AM, NY, Phone
from webhooks.app import create_app

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(MONDAY_9AM)

STYLISTS = {"mia": "Mia", "leo": "Leo"}


# -- a hair salon booking a stylist: only a table -----------------------------------
def read_stylist(turn: Turn, found: Slots) -> Mapping[str, Any]:
    words = turn.ctx.message.body.lower().split()
    named = [key for key in STYLISTS if key in words]
    return {"stylist": named[0]} if len(named) == 1 else {}


async def offer_stylists(turn: Turn) -> Offer:
    return Offer(offered=[Offered(f"stylist:{k}", name) for k, name in STYLISTS.items()])


async def book_stylist(turn: Turn) -> list[Reply]:
    stylist, when = STYLISTS[turn.slots["stylist"]], appointment_values(turn)["when"]
    turn.leave()
    return [Reply(text=f"See you {when} with {stylist}.")]


SALON = FlowTable(
    name="book",
    slots=(Slot("stylist", prompt="pick_which", read=read_stylist, offer=offer_stylists), DATE, TIME),
    confirm=Confirm("confirm_booking", yes=book_stylist, no=Change(("date", "time"), ask="ask_change")),
    values=appointment_values,
)


async def test_a_new_business_flow_is_a_new_table(
    make_settings: Callable[..., Settings], redis_store: RedisStore, clock: FrozenClock
) -> None:
    settings = make_settings()
    templates = ReplyTemplates(Path(settings.prompts_dir))
    brain = build_handler(settings, templates=templates, clock=clock, store=redis_store)
    salon = TableFlow(SALON)
    brain.flows["book"] = salon
    brain.handlers["book"] = salon.start
    phone = Phone(create_app(settings, store=redis_store, clock=clock, handler=brain))
    # Every slot is read from every message: the day and time now, the stylist asked for.
    assert await phone.say("can i book tomorrow at 3pm") == "Which one do you mean?\n1. Mia\n2. Leo"
    assert (await phone.say("2")).endswith(" on Tue, Mar 3 at 3:00 PM?\n1. Yes\n2. No")
    # A correction at the confirmation changes the slot, in the same flow.
    assert (await phone.say("actually with mia")).endswith(" on Tue, Mar 3 at 3:00 PM?\n1. Yes\n2. No")
    assert await phone.say("yes") == "See you Tue, Mar 3 at 3:00 PM with Mia."


def test_a_table_has_a_confirmation_or_an_action() -> None:
    with pytest.raises(ValueError, match="exactly one of confirm or done"):
        FlowTable(name="broken", slots=())


def test_an_intent_without_a_handler_stops_start_up(
    make_settings: Callable[..., Settings], redis_store: RedisStore, clock: FrozenClock, tmp_path: Path
) -> None:
    intents = tmp_path / "intents"
    shutil.copytree(ROOT / "intents", intents)
    with (intents / "intents.yaml").open("a", encoding="utf-8") as f:
        f.write("\n  refund:\n    description: Wants money back.\n    examples:\n      - i want a refund\n"
                "      - give me my money back\n")
    settings = make_settings(intents_dir=str(intents))
    with pytest.raises(ConfigError, match="intent 'refund' has no handler"):
        build_handler(settings, templates=ReplyTemplates(Path(settings.prompts_dir)), clock=clock, store=redis_store)


# -- picking offered options -------------------------------------------------------------
def at(hour: int, minute: int = 0, day: int = 6) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=NY)


TIMES = [Offered(f"at:{at(h).isoformat()}", f"{h}:00 AM", at=at(h)) for h in (8, 9, 10)]
APPTS = [
    Offered("appt:a", "cleaning Tue, Mar 3 at 3:00 PM", "cleaning", at(15, day=3)),
    Offered("appt:b", "checkup Fri, Mar 6 at 10:00 AM", "checkup", at(10, day=6)),
    Offered("appt:c", "cleaning Sat, Mar 7 at 9:00 AM", "cleaning", at(9, day=7)),
]


@pytest.mark.parametrize(
    ("text", "slots", "payload"),
    [
        ("2", Slots(), "at:" + at(9).isoformat()),
        ("the first one", Slots(), "at:" + at(8).isoformat()),
        ("2nd pls", Slots(), "at:" + at(9).isoformat()),
        ("ok the last one", Slots(), "at:" + at(10).isoformat()),
        ("the 9am", Slots(time=at(9).time()), "at:" + at(9).isoformat()),
        ("10 works", Slots(), "at:" + at(10).isoformat()),
    ],
)
def test_pick_a_time_by_number_ordinal_or_content(text: str, slots: Slots, payload: str) -> None:
    chosen = pick(text, TIMES, slots).chosen
    assert chosen is not None and chosen.payload == payload


def test_a_time_not_offered_picks_nothing() -> None:
    assert pick("10:30 works", TIMES, Slots(time=at(10, 30).time())) == pick("", [], Slots())


def test_pick_an_appointment_by_content_or_ask_which() -> None:
    assert pick("the friday one", APPTS, Slots(date=at(10).date())).chosen == APPTS[1]
    both = pick("the cleaning one", APPTS, Slots(service="cleaning"))
    assert both.chosen is None and both.among == (APPTS[0], APPTS[2])
    assert pick("yes", APPTS, Slots()).among == tuple(APPTS)
    assert pick("ok", APPTS[:1], Slots()).chosen == APPTS[0]


def test_options_are_remembered_at_their_step_only() -> None:
    data: dict[str, Any] = {}
    remember(data, APPTS, "reschedule/appt")
    assert recall(data, "reschedule/appt") == APPTS
    assert recall(data, "reschedule/date") == []
