"""The answers to intents that are not flows: facts from the business file, media, offers.

:class:`Handlers` holds them; :class:`bot.brain.Brain` registers each one
under its intent explicitly (``Brain.handlers``), next to the flows.

Example::

    answers = Handlers(business=business, templates=templates, book=book, settings=settings)
    replies = await answers.pricing(turn)   # "Cleaning: $120 (60 min). Want to book?"
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from bot.appointments import AppointmentBook
from bot.business import Business
from bot.channels import profile_of
from bot.flows.appointments import fmt_when
from bot.flows.base import Flow, Turn
from bot.messages import Reply
from bot.settings import Settings
from bot.sms.render import cap_segments
from bot.templates import ReplyTemplates

Handler = Callable[[Turn], Awaitable[list[Reply]]]
#: How many received attachments a conversation keeps (URL and type, as data).
MEDIA_KEPT = 10


def media_kind(content_types: Sequence[str]) -> str:
    """What the user sent, in words: ``photo``, ``video``, ``voice message`` or ``file``.

    >>> media_kind(["image/jpeg"]), media_kind(["image/png", "image/png"]), media_kind(["application/pdf"])
    ('photo', 'photos', 'file')
    """
    kinds = {t.split("/", 1)[0].lower() for t in content_types}
    kind = (
        {"image": "photo", "video": "video", "audio": "voice message"}.get(kinds.pop(), "file")
        if len(kinds) == 1
        else "file"
    )
    return f"{kind}s" if len(content_types) > 1 else kind


def directions_url(address: str, *, origin: str = "") -> str:
    """A maps link from ``origin`` ("lat,lon"; blank: the phone's location) to ``address``.

    >>> directions_url("500 Market St, Springfield", origin="40.7,-74")
    'https://www.google.com/maps/dir/?api=1&origin=40.7%2C-74&destination=500+Market+St%2C+Springfield'
    """
    params = {"api": "1", **({"origin": origin} if origin else {}), "destination": address}
    return f"https://www.google.com/maps/dir/?{urlencode(params)}"


class Handlers:
    """Answers from the business data and templates, one method per intent (or event)."""

    def __init__(
        self, *, business: Business, templates: ReplyTemplates, book: AppointmentBook, settings: Settings
    ) -> None:
        self.business = business
        self.templates = templates
        self.book = book
        self.settings = settings

    def template(self, name: str) -> Handler:
        """A fixed answer: ``prompts/replies/<name>``."""

        async def handler(turn: Turn) -> list[Reply]:
            return [turn.say(name, name=turn.ctx.message.profile_name, hours=self.business.opening_hours_text())]

        return handler

    @staticmethod
    def constant(replies: list[Reply]) -> Handler:
        async def handler(turn: Turn) -> list[Reply]:
            return replies

        return handler

    def model_answer(self, turn: Turn, answer: str) -> Reply:
        """The model's own answer, capped to ``LLM_MAX_SMS_SEGMENTS`` on SMS."""
        if profile_of(turn.ctx.message.channel).counts_segments:
            answer = cap_segments(answer, self.settings.llm_max_sms_segments)
        return Reply(text=answer)

    async def pricing(self, turn: Turn) -> list[Reply]:
        # "how much is it?" while booking a whitening: the whitening.
        named = turn.understanding.slots.service or str(turn.slots.get("service") or "")
        service = self.business.service(named)
        # The reply ends "Want to book?" (outside a flow): a "yes" next starts booking that service.
        turn.offer("book", service=service.key if service else None)
        return [
            turn.say(
                "pricing",
                service=service,
                services=list(self.business.services.values()),
                in_flow=turn.ctx.state.flow is not None,
            )
        ]

    async def my_appointments(self, turn: Turn) -> list[Reply]:
        upcoming = await self.book.upcoming_for(turn.ctx.state.key, now=turn.now)
        items = [{"service": self.label(a.service), "when": self.when(a.start)} for a in upcoming]
        if not items:
            turn.offer("book")  # "You have no upcoming appointments. Want to book one?"
        return [turn.say("my_appointments", appointments=items)]

    def offer_answer(self, offer: Mapping[str, Any], flows: Mapping[str, Flow]) -> Handler:
        """Yes or no to the question the last reply asked outside a flow."""

        async def handler(turn: Turn) -> list[Reply]:
            if turn.understanding.intent == "deny":
                return [turn.say("offer_declined")]
            flow = flows.get(str(offer.get("intent")))
            if flow is None:
                return [turn.say("nothing_pending")]
            replies = await flow.start(turn)
            # Seed what the question was about ("how much is whitening?" -> "yes").
            slots = {k: v for k, v in dict(offer.get("slots") or {}).items() if v}
            if slots and turn.ctx.state.flow == flow.name:
                turn.slots.update(slots)
                replies = await flow.prompt(turn)
            return replies

        return handler

    async def media_received(self, turn: Turn) -> list[Reply]:
        """Acknowledge a photo or file; its URL and type are kept as data, never read as text."""
        msg, data = turn.ctx.message, turn.ctx.state.data
        kept = list(data.get("media", []))
        kept.extend(
            {"url": m.url, "content_type": m.content_type, "at": turn.now.timestamp(), "sid": msg.message_sid}
            for m in msg.media
        )
        data["media"] = kept[-MEDIA_KEPT:]
        return [turn.say("media_received", kind=media_kind([m.content_type for m in msg.media]), count=len(msg.media))]

    async def shared_location(self, turn: Turn) -> list[Reply]:
        """A shared location: the clinic's address and a directions link from there."""
        where = turn.ctx.message.location
        origin = f"{round(where.latitude, 6)},{round(where.longitude, 6)}" if where is not None else ""
        link = directions_url(self.business.address, origin=origin)
        return [turn.say("location_shared", directions=link)]

    def when(self, moment: datetime) -> str:
        """``moment`` as the bot writes times, in the business's zone and this view's language."""
        return fmt_when(moment, self.business.tz, self.business.language)

    def label(self, service_key: str) -> str:
        service = self.business.service(service_key)
        return service.label.lower() if service else service_key
