"""The conversation that adds a verified reminder contact.

"send my reminders to my husband's phone" → the bot asks for the number (or
takes it from the message: "use this number from now on: +1 415 555 0199"),
starts a Twilio Verify verification to it on the patient's channel, and says
a code was sent. The code is accepted typed on either phone's thread ("the
code is 123456" works): the pending verification is a record of its own,
found from the patient's conversation and from the new number's. Only an
``approved`` check adds the number (:class:`~bot.contacts.store.ContactBook`)
and records consent (source ``verified``). A wrong code can be retried up to
``MAX_CODE_TRIES`` times; an expired code or too many attempts end it with
nothing changed.

The phrases that start it live in ``intents/reminder_contacts.yaml``.

Example::

    flow = ContactVerification(verifier, contacts, records, phrases, max_tries=3)
    said = await flow.handle(key, "send my reminders to +1 415 555 0199", now, state.data)
    said.template   # "contact_code_sent"
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import phonenumbers

from bot.contacts.store import ContactBook, KeyValues, Mode
from bot.contacts.verifier import Verifier, VerifyOutcome
from bot.datafile import read_yaml_mapping
from bot.errors import ConfigError
from bot.messages import Channel
from bot.observability import mask_phone
from bot.storage import ConversationKey

#: A pending verification lives as long as Twilio's code (10 min) plus a margin.
PENDING_TTL_SECONDS: Final = 11 * 60
MAX_CODE_TRIES: Final = 3
#: Set in the patient's conversation state while a verification is pending.
PENDING_FLAG: Final = "contact_verify"
# 4 to 8 digits, a space allowed between them ("123 456"); not part of a date, time or phone number.
_CODE = re.compile(r"(?<![\d/:.+-])(\d(?: ?\d){3,7})(?![\d/:.-])")


@dataclass(frozen=True)
class ContactPhrases:
    """The patterns of ``intents/reminder_contacts.yaml``, compiled."""

    request: tuple[re.Pattern[str], ...]
    request_with_number: tuple[re.Pattern[str], ...]
    instead: tuple[re.Pattern[str], ...]
    cancel: tuple[re.Pattern[str], ...]

    @classmethod
    def load(cls, path: Path) -> ContactPhrases:
        data = read_yaml_mapping(path)
        try:
            return cls(*(tuple(re.compile(p, re.IGNORECASE) for p in data.get(part) or ())
                         for part in ("request", "request_with_number", "instead", "cancel")))
        except re.error as exc:
            raise ConfigError(f"{path}: bad pattern: {exc}") from None

    def asks(self, text: str, region: str = "US") -> bool:
        if any(p.search(text) for p in self.request):
            return True
        return any(p.search(text) for p in self.request_with_number) and find_number(text, region) is not None

    def mode(self, text: str) -> Mode:
        return "instead" if any(p.search(text) for p in self.instead) else "also"

    def cancels(self, text: str) -> bool:
        return any(p.search(text) for p in self.cancel)


@dataclass(frozen=True)
class Said:
    """What the flow answers: a reply template and its values."""

    template: str
    values: dict[str, Any] = field(default_factory=dict)


def find_number(text: str, region: str = "US") -> str | None:
    """The first valid phone number written in ``text``, in E.164.

    >>> find_number("use this number from now on: (415) 555-0199 thx")
    '+14155550199'
    >>> find_number("book me at 3pm on 3/14") is None
    True
    """
    for match in phonenumbers.PhoneNumberMatcher(text, region):
        if phonenumbers.is_valid_number(match.number):
            return phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
    return None


def find_code(text: str) -> str | None:
    """A 4-10 digit code in ``text`` ("the code is 123 456" works), or None.

    >>> find_code("the code is 123 456"), find_code("it's 3/14 at 10:30")
    ('123456', None)
    """
    match = _CODE.search(text)
    return re.sub(r"\D", "", match.group(1)) if match else None


def pending_key(key: ConversationKey) -> str:
    return f"verify:{key.tag}"


def pending_by_number_key(number: str) -> str:
    return "verify_to:{" + number + "}"


#: Records consent for a verified number: (number, channel, patient key, at).
ConsentRecorder = Callable[[str, Channel, ConversationKey, datetime], Awaitable[None]]


class ContactVerification:
    """Runs the verification conversation; :meth:`handle` answers a turn or returns None."""

    def __init__(
        self,
        verifier: Verifier,
        contacts: ContactBook,
        records: KeyValues,
        phrases: ContactPhrases,
        *,
        record_consent: ConsentRecorder | None = None,
        max_tries: int = MAX_CODE_TRIES,
        region: str = "US",
    ) -> None:
        self._verifier = verifier
        self.contacts = contacts
        self._records = records
        self._phrases = phrases
        self._record_consent = record_consent
        self._max_tries = max_tries
        self._region = region

    async def _pending(
        self, key: ConversationKey, text: str, data: MutableMapping[str, Any]
    ) -> tuple[ConversationKey, dict[str, Any]] | None:
        """The verification this conversation takes part in: as the patient, or as the new number.

        Ordinary messages cost no store read: the patient's side is flagged in
        the conversation state, and the new number's side is looked up only
        when the message holds a code.
        """
        if data.get(PENDING_FLAG):
            raw = await self._records.get(pending_key(key))
            if raw:
                return key, json.loads(raw)
            data.pop(PENDING_FLAG, None)  # expired with its code
        if find_code(text) is None:
            return None
        ref = await self._records.get(pending_by_number_key(key.user))
        if ref:
            channel, bot, user = ref.split("|", 2)
            patient = ConversationKey(Channel(channel), bot, user)
            raw = await self._records.get(pending_key(patient))
            if raw:
                return patient, json.loads(raw)
        return None

    async def _save(self, patient: ConversationKey, pending: dict[str, Any], data: MutableMapping[str, Any]) -> None:
        await self._records.set(pending_key(patient), json.dumps(pending), ttl=PENDING_TTL_SECONDS)
        if pending.get("to"):
            ref = f"{patient.channel.value}|{patient.bot}|{patient.user}"
            await self._records.set(pending_by_number_key(pending["to"]), ref, ttl=PENDING_TTL_SECONDS)
        data[PENDING_FLAG] = True

    async def _end(self, patient: ConversationKey, pending: dict[str, Any], data: MutableMapping[str, Any]) -> None:
        await self._records.delete(pending_key(patient))
        if pending.get("to"):
            await self._records.delete(pending_by_number_key(pending["to"]))
        data.pop(PENDING_FLAG, None)

    async def handle(self, key: ConversationKey, text: str, now: datetime,
                     data: MutableMapping[str, Any]) -> Said | None:
        """Answer ``text`` if it belongs to this flow; None lets the rest of the bot answer.

        ``data`` is the conversation's state data (the flow keeps one flag there).
        """
        found = await self._pending(key, text, data)
        if found is None:
            if not self._phrases.asks(text, self._region):
                return None
            return await self._start(key, text, now, mode=self._phrases.mode(text), data=data)
        patient, pending = found
        # On the new number's own thread only a code counts; its state is not the patient's.
        mine = data if patient == key else {}
        if self._phrases.cancels(text) and patient == key:
            await self._end(patient, pending, mine)
            return Said("contact_cancelled")
        if not pending.get("to"):  # waiting for the number
            if find_number(text, self._region) is None:
                if re.search(r"\d", text):
                    return Said("contact_ask_number")
                return None  # something else: the bot answers it; the question stays open
            return await self._start(patient, text, now, mode=pending.get("mode", "also"), data=mine)
        # A phone number is not a code: another number restarts with it ("no wait, use 415 555 0188").
        number = find_number(text, self._region)
        if number is not None:
            if patient == key and number != pending["to"]:
                return await self._start(patient, text, now, mode=pending.get("mode", "also"), data=mine)
            return None
        code = find_code(text)
        if code is None:
            return None
        return await self._check(patient, pending, code, now, mine)

    async def _start(self, patient: ConversationKey, text: str, now: datetime, *, mode: Mode,
                     data: MutableMapping[str, Any]) -> Said:
        number = find_number(text, self._region)
        if number is None:
            await self._save(patient, {"to": "", "mode": mode, "tries": 0}, data)
            return Said("contact_ask_number")
        if number == patient.user:
            await self._end(patient, {}, data)
            return Said("contact_same_number")
        channel = "whatsapp" if patient.channel is Channel.WHATSAPP else "sms"
        outcome = await self._verifier.start(number, channel=channel)
        masked = mask_phone(number)
        if outcome is VerifyOutcome.SENT:
            await self._save(patient, {"to": number, "mode": mode, "tries": 0, "channel": channel}, data)
            return Said("contact_code_sent", {"number": masked, "channel": channel})
        await self._end(patient, {}, data)
        if outcome is VerifyOutcome.TOO_MANY_SENDS:
            return Said("contact_too_many_sends", {"number": masked})
        if outcome is VerifyOutcome.REJECTED:
            return Said("contact_bad_number", {"number": masked})
        return Said("contact_unavailable")

    async def _check(self, patient: ConversationKey, pending: dict[str, Any], code: str, now: datetime,
                     data: MutableMapping[str, Any]) -> Said:
        number: str = pending["to"]
        masked = mask_phone(number)
        outcome = await self._verifier.check(number, code)
        if outcome is VerifyOutcome.APPROVED:
            await self._end(patient, pending, data)
            mode: Mode = pending.get("mode", "also")
            await self.contacts.add(patient, number, mode=mode, at=now, channel=pending.get("channel", "sms"))
            if self._record_consent is not None:
                channel = Channel.WHATSAPP if pending.get("channel") == "whatsapp" else Channel.SMS
                await self._record_consent(number, channel, patient, now)
            return Said("contact_added", {"number": masked, "mode": mode})
        if outcome is VerifyOutcome.WRONG_CODE:
            tries = int(pending.get("tries", 0)) + 1
            if tries >= self._max_tries:
                await self._end(patient, pending, data)
                return Said("contact_too_many_tries", {"number": masked})
            await self._save(patient, {**pending, "tries": tries}, data)
            return Said("contact_wrong_code", {"left": self._max_tries - tries})
        if outcome is VerifyOutcome.UNAVAILABLE:
            return Said("contact_unavailable")
        await self._end(patient, pending, data)
        if outcome is VerifyOutcome.EXPIRED:
            return Said("contact_code_expired", {"number": masked})
        return Said("contact_too_many_tries", {"number": masked})
