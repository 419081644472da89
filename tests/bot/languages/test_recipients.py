"""The language of a message the bot starts: the conversation's, the number's, the business's first."""

from __future__ import annotations

from datetime import datetime
from typing import cast
from zoneinfo import ZoneInfo

from bot.business import Business
from bot.languages.choose import STATE_KEY, Languages
from bot.languages.recipients import ONE_LANGUAGE, RecipientLanguages
from bot.messages import Channel
from bot.storage.base import ConversationKey, ConversationState, ConversationStore
from tests.bot.outbound.conftest import ROOT

NY = ZoneInfo("America/New_York")
SPANISH_LINE = "+15005550007"
ENGLISH_LINE = "+15005550006"
LABELS = {"es": {"cleaning": "Limpieza"}}


class States:
    """Conversation states by key: all a recipient's language needs of the store."""

    def __init__(self, *states: ConversationState) -> None:
        self.states = {s.key: s for s in states}
        self.loads = 0

    async def load(self, key: ConversationKey) -> ConversationState | None:
        self.loads += 1
        return self.states.get(key)


def key(user: str, bot: str = ENGLISH_LINE) -> ConversationKey:
    return ConversationKey(Channel.SMS, bot, user)


def spoken(code: str, user: str, bot: str = ENGLISH_LINE) -> ConversationState:
    state = ConversationState.new(key(user, bot))
    state.data[STATE_KEY] = code
    return state


def recipients(store: States) -> RecipientLanguages:
    languages = Languages(("en", "es"), by_number={SPANISH_LINE: "es"})
    return RecipientLanguages(cast(ConversationStore, store), languages, LABELS)


async def test_the_kept_language_then_the_number_s_then_the_first() -> None:
    store = States(spoken("es", "+14155550001"), spoken("en", "+14155550002", SPANISH_LINE))
    them = recipients(store)
    assert await them.language_of(key("+14155550001")) == "es"  # kept
    assert await them.language_of(key("+14155550002", SPANISH_LINE)) == "en"  # kept beats the number's
    assert await them.language_of(key("+14155550003", SPANISH_LINE)) == "es"  # no state: the number's
    assert await them.language_of(key("+14155550003")) == "en"  # else the business's first


async def test_speaking_writes_the_service_the_time_and_the_greeting_in_the_language() -> None:
    from bot.business import load_business

    business: Business = load_business(ROOT / "intents" / "business.yaml")
    them = recipients(States(spoken("es", "+14155550001")))
    moment = datetime(2026, 3, 7, 9, 0, tzinfo=NY)
    es = await them.speaking(key("+14155550001"), business)
    assert (es.service("cleaning"), es.when(moment), es.name(None), es.name(" Ana ")) == (
        "limpieza", "sábado 7 de marzo a las 9:00 am", "de nuevo", "Ana")
    assert es.template("appointment_reminder", {}).language == "es"
    en = await them.speaking(key("+14155550009"), business)
    assert (en.service("cleaning"), en.when(moment), en.name(""), en.template("x", {}).language) == (
        "cleaning", "Sat, Mar 7 at 9:00 AM", "there", None)


async def test_one_language_reads_no_state() -> None:
    store = States(spoken("es", "+14155550001"))
    one = RecipientLanguages(cast(ConversationStore, store), Languages(("en",)))
    assert await one.language_of(key("+14155550001")) == "en" and store.loads == 0
    assert await ONE_LANGUAGE.language_of(key("+14155550001")) == "en" and ONE_LANGUAGE.codes == ("en",)
