"""Builds the reminder-contact verification from ``Settings`` (off without ``TWILIO_VERIFY_SERVICE_SID``).

Example::

    flow = build_contact_verification(settings, store=store, twilio=lambda: runtime.twilio)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.compliance.ledger import AddressHasher, ConsentEvent, ConsentLedger
from bot.contacts.flow import ConsentRecorder, ContactPhrases, ContactVerification
from bot.contacts.store import ContactBook, KeyValues
from bot.contacts.verifier import TwilioVerifier
from bot.memo import fingerprint, memo
from bot.messages import Channel
from bot.observability import mask_phone
from bot.settings import Settings
from bot.storage import ConversationKey

PHRASES_FILE = "reminder_contacts.yaml"


def verified_consent(ledger: ConsentLedger, hasher: AddressHasher) -> ConsentRecorder:
    """Record a verified reminder contact in the consent ledger (source ``verified``)."""

    async def record(number: str, channel: Channel, patient: ConversationKey, at: datetime) -> None:
        await ledger.append(ConsentEvent.create(
            action="opt_in", channel=channel, bot=patient.bot, user=number, source="verified", at=at,
            hasher=hasher, message_sid=f"verified:{patient.tag}:{int(at.timestamp())}",
            words=f"reminder contact of {mask_phone(patient.user)}",
        ))

    return record


def build_contact_verification(
    settings: Settings,
    *,
    store: KeyValues,
    twilio: Callable[[], Any],
    record_consent: ConsentRecorder | None = None,
) -> ContactVerification | None:
    """The verification flow, or None when Verify is not configured."""
    if not settings.twilio_verify_service_sid:
        return None
    path = Path(settings.intents_dir) / PHRASES_FILE
    phrases = memo(("contact-phrases", fingerprint(path)), lambda: ContactPhrases.load(path))
    return ContactVerification(
        TwilioVerifier(twilio, service_sid=settings.twilio_verify_service_sid),
        ContactBook(store),
        store,
        phrases,
        record_consent=record_consent,
        max_tries=settings.verify_max_code_tries,
    )
