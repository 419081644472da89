"""Resources end to end: a clinic with two chairs books two people at one time, a third gets alternatives."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi import FastAPI

from bot.appointments import AppointmentBook
from bot.business import DEFAULT_RESOURCE, load_business
from bot.clock import FrozenClock
from bot.errors import ConfigError
from bot.messages import Channel
from bot.settings import Settings
from bot.storage import ConversationKey, RedisStore
from bot.storage.stores import Stores
from tests.bot.test_brain import MONDAY_9AM, NY, Phone
from tests.conftest import BOT_NUMBER

SHIPPED = Path("intents")
CHAIRS = """
resources:
  chair-1: {label: Chair 1}
  chair-2: {label: Chair 2}
"""


def two_chairs(tmp_path: Path, extra: str = "") -> Path:
    intents = tmp_path / "intents"
    shutil.copytree(SHIPPED, intents)
    business = intents / "business.yaml"
    business.write_text(business.read_text() + CHAIRS + extra, encoding="utf-8")
    return intents


def test_the_shipped_clinic_books_one_at_a_time() -> None:
    business = load_business(SHIPPED / "business.yaml")
    assert business.resource_keys == (DEFAULT_RESOURCE,)
    assert business.resources_for("cleaning") == (DEFAULT_RESOURCE,)


def test_resources_load_and_services_name_theirs(tmp_path: Path) -> None:
    path = two_chairs(tmp_path) / "business.yaml"
    whitening = "    duration_minutes: 90\n"
    text = path.read_text().replace(whitening, whitening + "    resources: [chair-2]\n")
    path.write_text(text, encoding="utf-8")
    business = load_business(path)
    assert business.resource_keys == ("chair-1", "chair-2")
    assert business.resources["chair-2"].label == "Chair 2"
    assert business.resources_for("whitening") == ("chair-2",)
    assert business.resources_for("teeth whitening") == ("chair-2",)  # aliases too
    assert business.resources_for("cleaning") == ("chair-1", "chair-2")  # none listed: any


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("    duration_minutes: 90\n", "    duration_minutes: 90\n    resources: [chair-9]\n"),
         "services.whitening.resources: unknown 'chair-9' (resources: chair-1, chair-2)"),
        (("  chair-2: {label: Chair 2}", "  chair|2: {label: Chair 2}"), "resources.chair|2.key"),
        (("  chair-2: {label: Chair 2}", "  chair-2: {colour: red}"), "resources.chair-2.colour: unknown key"),
    ],
)
def test_bad_resources_name_the_field(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    path = two_chairs(tmp_path) / "business.yaml"
    text = path.read_text()
    assert change[0] in text
    path.write_text(text.replace(change[0], change[1]), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_business(path)
    assert message in str(err.value)


async def test_two_chairs_book_two_people_at_one_time(
    tmp_path: Path, make_settings: Callable[..., Settings], redis_store: RedisStore
) -> None:
    from webhooks.app import create_app

    app: FastAPI = create_app(make_settings(intents_dir=str(two_chairs(tmp_path))), store=redis_store,
                              clock=FrozenClock(MONDAY_9AM))
    users = ["+14155550701", "+14155550702", "+14155550703"]
    phones = [Phone(app, Channel.SMS, user) for user in users]
    for phone in phones[:2]:
        assert "Book a cleaning on Tue, Mar 3 at 3:00 PM?" in await phone.say("book a cleaning tmrw at 3pm pls")
        assert "booked" in (await phone.say("yes")).lower()
    # Both chairs are taken at 3: the third texter gets the nearest free times.
    third = await phones[2].say("cleaning tomorrow 3pm")
    assert "Tue, Mar 3 at 3:00 PM is already taken" in third
    book = AppointmentBook(Stores.beside(redis_store).appointments, NY)
    booked = [appt for user in users[:2]
              for appt in await book.upcoming_for(ConversationKey(Channel.SMS, BOT_NUMBER, user), now=MONDAY_9AM)]
    assert sorted(a.resource for a in booked) == ["chair-1", "chair-2"]
    assert {a.start.astimezone(NY).hour for a in booked} == {15}
