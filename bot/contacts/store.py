"""Who receives a patient's reminders besides (or instead of) the patient's own number.

A contact is added only after Twilio Verify approved a code sent to it
(:mod:`bot.contacts.flow`), and removed when that number opts out. Two
records per link, each one key (so each lives on one Redis Cluster slot):

- ``contacts:{<conversation tag>}``: the patient's verified contacts;
- ``contact_of:{<number>}``: the patients a number receives reminders for
  (so the number's own STOP removes it everywhere).

Both are JSON in a key/value store with ``get``/``set``/``delete`` (the
ledger store of :mod:`bot.storage`, Redis or memory). Appends are
read-modify-write: a patient's conversation runs one turn at a time, which
is the only writer of its record.

Example::

    contacts = ContactBook(records)
    await contacts.add(patient_key, "+14155550199", mode="also", at=now)
    await contacts.for_patient(patient_key)      # [Contact(number="+1415...", mode="also", ...)]
    await contacts.remove_number("+14155550199") # after that number's STOP
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from bot.messages import Channel
from bot.storage import ConversationKey

Mode = Literal["also", "instead"]


class KeyValues(Protocol):
    """The three record operations the contact book needs."""

    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, value: str, *, ttl: float | None = None, only_if_absent: bool = False) -> bool:
        ...

    async def delete(self, key: str) -> None: ...


@dataclass(frozen=True)
class Contact:
    """A verified number that gets a patient's reminders."""

    number: str
    mode: Mode
    verified_at: str
    #: How reminders reach it: ``sms`` or ``whatsapp`` (the channel its code was sent on).
    channel: str = "sms"


def _patient_ref(key: ConversationKey) -> str:
    return f"{key.channel.value}|{key.bot}|{key.user}"


def _patient_key(ref: str) -> ConversationKey:
    channel, bot, user = ref.split("|", 2)
    return ConversationKey(Channel(channel), bot, user)


def contacts_key(key: ConversationKey) -> str:
    return f"contacts:{key.tag}"


def contact_of_key(number: str) -> str:
    return "contact_of:{" + number + "}"


class ContactBook:
    """Patients' verified reminder contacts."""

    def __init__(self, records: KeyValues) -> None:
        self._records = records

    async def for_patient(self, key: ConversationKey) -> list[Contact]:
        raw = await self._records.get(contacts_key(key))
        return [Contact(**item) for item in json.loads(raw)] if raw else []

    async def patients_of(self, number: str) -> list[ConversationKey]:
        raw = await self._records.get(contact_of_key(number))
        return [_patient_key(ref) for ref in json.loads(raw)] if raw else []

    async def add(self, key: ConversationKey, number: str, *, mode: Mode, at: datetime,
                  channel: str = "sms") -> Contact:
        """Add (or re-add with a new mode) ``number`` as a contact of ``key``'s patient."""
        contact = Contact(number=number, mode=mode, verified_at=at.isoformat(), channel=channel)
        kept = [c for c in await self.for_patient(key) if c.number != number]
        await self._records.set(contacts_key(key), json.dumps([c.__dict__ for c in [*kept, contact]]))
        refs = {_patient_ref(k) for k in await self.patients_of(number)} | {_patient_ref(key)}
        await self._records.set(contact_of_key(number), json.dumps(sorted(refs)))
        return contact

    async def remove_number(self, number: str) -> list[ConversationKey]:
        """Remove ``number`` from every patient's contacts (its own opt-out); the patients it served."""
        patients = await self.patients_of(number)
        for key in patients:
            kept = [c for c in await self.for_patient(key) if c.number != number]
            if kept:
                await self._records.set(contacts_key(key), json.dumps([c.__dict__ for c in kept]))
            else:
                await self._records.delete(contacts_key(key))
        await self._records.delete(contact_of_key(number))
        return patients

    async def forget(self, key: ConversationKey, event_id: str, at: datetime, has_appointment: bool) -> None:
        """An opt-out observer (:class:`bot.compliance.Compliance`): the number that opted out stops being a contact."""
        await self.remove_number(key.user)

    async def reminder_numbers_of(self, key: ConversationKey) -> tuple[bool, list[Contact]]:
        """(whether the patient's own number still gets reminders, the verified contacts)."""
        contacts = await self.for_patient(key)
        own = not any(c.mode == "instead" for c in contacts)
        return own, contacts
