"""The Brain: from an understood message to replies, across turns.

The pipeline for a message that passed compliance (bot/engine.py):

1. Hand-off: while a person has the conversation, the bot says nothing
   (until ``HANDOFF_IDLE_MINUTES`` without messages, or the user texts "bot"
   or "menu", which gets a "you're back" answer).
2. The active flow's expected answer: an offered choice (button, "1"/"2",
   its title), or slot values / yes / no for the current step. A button of
   a message sent outside the turn (the reminder's Confirm / Reschedule,
   :attr:`Brain.buttons`) comes first.
3. Rules, then 4. the local classifier (:mod:`bot.nlu`).
5. The LangChain model, only when 3-4 gave ``fallback`` and ``LLM_MODEL`` is set;
   the service, date and time it read fill the slots the rules did not find.

Then the intent's handler answers from the business data and templates; a
question in the middle of a flow is answered and the flow is resumed. A
media-only message is acknowledged (and its URLs kept in ``state.data``), a
shared location gets the address and directions. A yes or no right after a
question asked outside a flow ("Want to book?") answers that question.

Example::

    brain = build_handler(settings, templates=templates, clock=clock, store=store)
    result = await brain.handle(ctx)
    result.intent, [r.text for r in result.replies]
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal
from urllib.parse import urlencode

from bot.appointments import AppointmentBook
from bot.business import Business, load_business
from bot.clock import Clock
from bot.engine import TurnContext
from bot.flows.appointments import BookFlow, CancelFlow, RescheduleFlow, fmt_when, no_appointments
from bot.flows.base import YES_NO, Flow, Turn
from bot.memo import memo
from bot.messages import Channel, Choice, InboundMessage, Reply, TurnResult
from bot.nlu.classifier import IntentClassifier
from bot.nlu.intents import FALLBACK, load_intents
from bot.nlu.model import ModelDecision, ModelStep, build_chat_model
from bot.nlu.slots import Slots, extract_slots
from bot.nlu.understand import NLU, Understanding
from bot.outbound.models import SendRequest
from bot.outbound.outbox import Outbox
from bot.settings import Settings
from bot.sms.render import cap_segments, pick_choice
from bot.storage.base import ConversationKey, ConversationStore
from bot.templates import ReplyTemplates

log = logging.getLogger("bot.brain")

Handler = Callable[[Turn], Awaitable[list[Reply]]]
#: Tells staff a conversation was handed over: (conversation, notice text, inbound MessageSid).
StaffNotifier = Callable[[ConversationKey, str, str], Awaitable[None]]
HandoffStatus = Literal["none", "active", "released"]

# Texting one of these while a person has the conversation gives it back to the bot.
RELEASE_WORDS = frozenset({"bot", "menu", "back to bot", "talk to bot", "talk to the bot", "back to the bot"})
_RELEASE_STRIP = re.compile(r"^[\W_]+|[\W_]+$")
#: How many received attachments a conversation keeps (URL and type, as data).
MEDIA_KEPT = 10


def _release_word(text: str) -> bool:
    """Whether ``text`` ("Bot!", " menu ") asks to leave the hand-off."""
    return _RELEASE_STRIP.sub("", text.strip().lower()) in RELEASE_WORDS


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


def outbox_staff_notifier(settings: Settings, outbox: Outbox, business: Business) -> StaffNotifier:
    """A :data:`StaffNotifier` that texts ``STAFF_NUMBER`` (default: the business phone) by SMS.

    The notice goes through the outbox (retries, the send ledger); its
    idempotency key is the inbound MessageSid, so a retried turn never
    notifies twice. It is sent from ``TWILIO_PHONE_NUMBER`` when set, else
    from the number the user texted. Wire it where the outbox exists::

        brain.notify_staff = outbox_staff_notifier(settings, runtime.require_outbound().outbox,
                                                   brain.business)
    """
    staff = settings.staff_number or business.phone_e164

    async def notify(key: ConversationKey, notice: str, message_sid: str) -> None:
        sender = settings.twilio_phone_number or key.bot
        await outbox.submit(
            SendRequest(
                key=ConversationKey(Channel.SMS, sender, staff),
                body=notice,
                purpose="handoff",
                idempotency_key=f"handoff:{message_sid}",
            )
        )

    return notify


class Brain:
    """The default turn handler: intents, flows, templates, optional model."""

    def __init__(
        self,
        *,
        settings: Settings,
        nlu: NLU,
        business: Business,
        templates: ReplyTemplates,
        book: AppointmentBook,
        flows: Mapping[str, Flow],
        model: ModelStep | None = None,
        notify_staff: StaffNotifier | None = None,
    ) -> None:
        self.settings = settings
        self.nlu = nlu
        self.business = business
        self.templates = templates
        self.book = book
        self.flows = dict(flows)
        self.model = model
        self.notify_staff = notify_staff
        self.template_context: dict[str, Any] = {"business": business}
        # Intent -> handler, registered explicitly.
        self.handlers: dict[str, Handler] = {
            "greet": self._template("greeting"),
            "help": self._template("help"),
            "hours": self._template("hours"),
            "location": self._template("location"),
            "pricing": self._pricing,
            "thanks": self._template("thanks"),
            "goodbye": self._template("goodbye"),
            "affirm": self._template("nothing_pending"),
            "deny": self._template("nothing_pending"),
            "opt_out": self._template("opt_out_question"),
            "opt_in": self._template("greeting"),
            "my_appointments": self._my_appointments,
            "human": self._handoff,
            "fallback": self._template("fallback"),
        }
        for name, flow in self.flows.items():
            self.handlers[name] = flow.start
        # Buttons of content templates the bot sends outside a turn (intents/templates.yaml):
        # payload -> (the intent it means, its handler). The appointment reminder has
        # "confirm" and "reschedule".
        self.buttons: dict[str, tuple[str, Handler]] = {"confirm": ("affirm", self._confirm_appointment)}
        if "reschedule" in self.flows:
            self.buttons["reschedule"] = ("reschedule", self.flows["reschedule"].start)

    async def handle(self, ctx: TurnContext) -> TurnResult:
        state, msg = ctx.state, ctx.message
        text = msg.button_text or msg.body if msg.button_payload else msg.body
        understanding = self.nlu.classify(text, now=ctx.now)
        offered = [Choice(p, t) for p, t in state.data.pop("choices", [])]
        # A yes/no question asked outside a flow ("Want to book?") lives one turn.
        offer = state.data.pop("offer", None)
        turn = self._turn(ctx, understanding, self._picked(msg, offered))

        handoff = self._handoff_status(ctx, text)
        if handoff == "active":
            # A person has the conversation; the bot only keeps the idle clock.
            state.data["handoff_until"] = ctx.now.timestamp() + self._handoff_idle()
            return self._result(turn, [], "human")
        if handoff == "released":
            return self._result(turn, [turn.say("handoff_released")], "help")

        flow = self.flows.get(state.flow or "")
        button = self._button_action(msg.button_payload, offered)
        if button is not None:
            # A button of a message sent outside this flow (the reminder's "Confirm").
            intent, handler = button
            return await self._run(turn, flow, intent, handler)

        # 2. The active flow's expected answer.
        if flow is not None:
            answered = await flow.answer(turn)
            if answered is not None:
                return self._result(turn, answered, self._answer_intent(turn, state.flow or flow.name))

        intent = understanding.intent
        attachment = bool(msg.media or msg.location is not None) and intent == FALLBACK
        # 5. The model, only for what rules and classifier left unresolved.
        if understanding.needs_model and self.model is not None and not attachment:
            decision = await self.model.decide(text, history=state.history, intents=self.nlu.catalog.names)
            if decision is not None and decision.intent != FALLBACK and decision.intent in self.handlers:
                intent = decision.intent
                turn.understanding = self._with_model_slots(understanding, decision, ctx)
            elif decision is not None and decision.answer:
                replies = [self._model_answer(turn, decision.answer)]
                return await self._run(turn, flow, FALLBACK, self._constant(replies))

        if attachment:
            # Nothing to classify: answer what was sent (a shared location, a photo).
            if msg.location is not None:
                return await self._run(turn, flow, "location", self._shared_location)
            return await self._run(turn, flow, FALLBACK, self._media_received)
        if offer is not None and intent in ("affirm", "deny"):
            return await self._run(turn, flow, intent, self._offer_answer(offer))
        return await self._run(turn, flow, intent, self.handlers.get(intent, self.handlers[FALLBACK]))

    async def _run(self, turn: Turn, flow: Flow | None, intent: str, handler: Handler) -> TurnResult:
        """Run ``handler`` for ``intent``; a digression inside ``flow`` resumes it after."""
        state = turn.ctx.state
        if flow is not None and intent in self.flows and intent != flow.name:
            turn.leave()  # switching to another flow ("actually, cancel it instead")
            flow = None
        replies = await handler(turn)
        if flow is not None and state.flow == flow.name and intent not in self.flows:
            # A digression ("what are your hours?") inside a flow: answer, then resume.
            replies = self._resume(turn, flow, replies, await flow.prompt(turn))
        return self._result(turn, replies, intent)

    # -- helpers ------------------------------------------------------------
    def _turn(self, ctx: TurnContext, understanding: Understanding, choice: str | None) -> Turn:
        return Turn(
            ctx=ctx,
            understanding=understanding,
            choice=choice,
            business=self.business,
            book=self.book,
            templates=self.templates,
            context=self.template_context,
        )

    @staticmethod
    def _picked(msg: InboundMessage, offered: list[Choice]) -> str | None:
        """The payload of an offered choice the user picked, if any."""
        if msg.button_payload:
            return msg.button_payload
        picked = pick_choice(msg.body, offered) if offered else None
        return picked.payload if picked else None

    def _button_action(self, payload: str | None, offered: list[Choice]) -> tuple[str, Handler] | None:
        """What a pressed button means when it is not one of the choices just offered.

        Content templates sent outside a turn (``appointment_reminder`` in
        ``intents/templates.yaml``) carry buttons of their own; their ids are
        the keys of :attr:`buttons`.
        """
        if not payload or any(c.payload == payload for c in offered):
            return None
        return self.buttons.get(payload)

    @staticmethod
    def _answer_intent(turn: Turn, flow: str) -> str:
        """The intent a flow answer is reported as: yes/no answers are ``affirm``/``deny``.

        "yes", the Yes button or "1" at a confirmation is an ``affirm`` (and
        "no", No, "2" a ``deny``), as the user meant it; a slot value or a
        picked time is the flow's own intent (``book``, ``reschedule`` ...).
        """
        if turn.choice is not None:
            return YES_NO.get(turn.choice, flow)
        if turn.understanding.intent in ("affirm", "deny") and turn.understanding.source == "rule":
            return turn.understanding.intent
        return flow

    def _result(self, turn: Turn, replies: list[Reply], intent: str) -> TurnResult:
        u = turn.understanding
        state = turn.ctx.state
        return TurnResult(
            replies=tuple(replies),
            intent=intent,
            confidence=u.confidence,
            entities=u.entities,
            flow=state.flow,
            step=state.step,
        )

    def _resume(self, turn: Turn, flow: Flow, answer: list[Reply], prompt: list[Reply]) -> list[Reply]:
        if not answer or not prompt:
            return answer + prompt
        # One message, not two: on SMS every message costs at least a segment.
        intro = self.templates.render(
            "resume_flow", turn.ctx.message.channel.value, flow=flow.name, **self.template_context
        )
        last = prompt[-1]
        joined = "\n\n".join([*(r.text for r in answer), f"{intro} {last.text}"])
        return [Reply(text=joined, choices=last.choices)]

    def _template(self, name: str) -> Handler:
        async def handler(turn: Turn) -> list[Reply]:
            return [turn.say(name, name=turn.ctx.message.profile_name, hours=self.business.opening_hours_text())]

        return handler

    def _model_answer(self, turn: Turn, answer: str) -> Reply:
        if turn.ctx.message.channel is Channel.SMS:
            answer = cap_segments(answer, self.settings.llm_max_sms_segments)
        return Reply(text=answer)

    @staticmethod
    def _constant(replies: list[Reply]) -> Handler:
        async def handler(turn: Turn) -> list[Reply]:
            return replies

        return handler

    def _with_model_slots(
        self, understanding: Understanding, decision: ModelDecision, ctx: TurnContext
    ) -> Understanding:
        """``understanding`` with the slots the model read filled in where the rules found none.

        The model copies what the customer wrote ("tomorrow", "3pm"); those
        words go through the same slot extraction as any message, so the
        flow still checks and confirms them.
        """
        said = " ".join(
            part for part in (decision.service, decision.date, f"at {decision.time}" if decision.time else None) if part
        )
        if not said:
            return understanding
        found = extract_slots(said, now=ctx.now, business=self.business)
        have = understanding.slots
        merged = Slots(
            service=have.service or found.service,
            date=have.date or found.date,
            time=have.time or found.time,
            datetime=have.datetime or found.datetime,
            in_past=have.in_past or found.in_past,
            approximate=have.approximate if have.time else found.approximate,
            time_window=have.time_window if have.time else found.time_window,
        )
        return replace(understanding, slots=merged, entities=MappingProxyType(merged.as_entities()))

    async def _pricing(self, turn: Turn) -> list[Reply]:
        service = self.business.service(turn.understanding.slots.service or "")
        # The reply ends "Want to book?": a "yes" next starts booking that service.
        turn.offer("book", service=service.key if service else None)
        return [turn.say("pricing", service=service, services=list(self.business.services.values()))]

    async def _my_appointments(self, turn: Turn) -> list[Reply]:
        upcoming = await self.book.upcoming_for(turn.ctx.state.key, now=turn.now)
        items = [{"service": self._label(a.service), "when": fmt_when(a.start, self.business.tz)} for a in upcoming]
        if not items:
            turn.offer("book")  # "You have no upcoming appointments. Want to book one?"
        return [turn.say("my_appointments", appointments=items)]

    def _offer_answer(self, offer: Mapping[str, Any]) -> Handler:
        """Yes or no to the question the last reply asked outside a flow."""

        async def handler(turn: Turn) -> list[Reply]:
            if turn.understanding.intent == "deny":
                return [turn.say("offer_declined")]
            flow = self.flows.get(str(offer.get("intent")))
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

    async def _confirm_appointment(self, turn: Turn) -> list[Reply]:
        """The reminder's "Confirm" button: the upcoming appointment, confirmed back."""
        upcoming = await self.book.upcoming_for(turn.ctx.state.key, now=turn.now)
        if not upcoming:
            return no_appointments(turn)
        # Reminders go out a day ahead, so the soonest appointment is the one reminded.
        appt = upcoming[0]
        return [
            turn.say(
                "appointment_confirmed", service=self._label(appt.service), when=fmt_when(appt.start, self.business.tz)
            )
        ]

    async def _media_received(self, turn: Turn) -> list[Reply]:
        """Acknowledge a photo or file; its URL and type are kept as data, never read as text."""
        msg, data = turn.ctx.message, turn.ctx.state.data
        kept = list(data.get("media", []))
        kept.extend(
            {"url": m.url, "content_type": m.content_type, "at": turn.now.timestamp(), "sid": msg.message_sid}
            for m in msg.media
        )
        data["media"] = kept[-MEDIA_KEPT:]
        return [turn.say("media_received", kind=media_kind([m.content_type for m in msg.media]), count=len(msg.media))]

    async def _shared_location(self, turn: Turn) -> list[Reply]:
        """A shared location: the clinic's address and a directions link from there."""
        where = turn.ctx.message.location
        origin = f"{round(where.latitude, 6)},{round(where.longitude, 6)}" if where is not None else ""
        link = directions_url(self.business.address, origin=origin)
        return [turn.say("location_shared", directions=link)]

    def _label(self, service_key: str) -> str:
        service = self.business.service(service_key)
        return service.label.lower() if service else service_key

    # -- hand-off -----------------------------------------------------------
    def _handoff_idle(self) -> float:
        return timedelta(minutes=self.settings.handoff_idle_minutes).total_seconds()

    def _handoff_status(self, ctx: TurnContext, text: str) -> HandoffStatus:
        """``active`` while a person has the conversation; ``released`` when the user takes it back.

        It ends by itself ``HANDOFF_IDLE_MINUTES`` after the last message
        (``none`` then: the message is handled as usual), or when the user
        texts a release word ("bot", "menu").
        """
        until = ctx.state.data.get("handoff_until")
        if until is None:
            return "none"
        if ctx.now.timestamp() >= float(until):
            del ctx.state.data["handoff_until"]
            return "none"
        if _release_word(text):
            del ctx.state.data["handoff_until"]
            return "released"
        return "active"

    async def _handoff(self, turn: Turn) -> list[Reply]:
        turn.leave()
        ctx = turn.ctx
        ctx.state.data["handoff_until"] = ctx.now.timestamp() + self._handoff_idle()
        # The engine records this message after the turn: add it, or staff miss the request.
        lines = [f"{h.role}: {h.text}" for h in ctx.state.history[-5:]]
        recent = " | ".join([*lines, f"user: {ctx.message.body[:160]}"])
        notice = self.templates.render(
            "handoff_staff",
            "sms",
            user=ctx.message.user,
            channel=ctx.message.channel.value,
            recent=recent,
            **self.template_context,
        )
        if self.notify_staff is not None:
            await self.notify_staff(ctx.state.key, notice, ctx.message.message_sid)
        else:
            log.warning("hand-off requested but no staff notifier is configured")
        return [turn.say("handoff", minutes=self.settings.handoff_idle_minutes)]


def build_handler(
    settings: Settings,
    *,
    templates: ReplyTemplates,
    clock: Clock,
    store: ConversationStore,
    chat_model: Any = None,
) -> Brain:
    """The default :class:`Brain` for ``settings``: the demo business unless edited.

    ``chat_model`` (a LangChain chat model) overrides ``LLM_MODEL``.
    """
    intents_dir = Path(settings.intents_dir)
    business = load_business(intents_dir / "business.yaml")
    catalog = load_intents(intents_dir / "intents.yaml")
    # Training takes seconds: once per distinct catalog per process (bot/memo.py).
    classifier = memo(("classifier", repr(catalog)), lambda: IntentClassifier.train(catalog))
    nlu = NLU(catalog, business, clock=clock, classifier=classifier)
    model = chat_model if chat_model is not None else build_chat_model(settings)
    step = ModelStep(model, templates, business, timeout=settings.llm_timeout_seconds) if model else None
    flows: dict[str, Flow] = {flow.name: flow for flow in (BookFlow(), RescheduleFlow(), CancelFlow())}
    return Brain(
        settings=settings,
        nlu=nlu,
        business=business,
        templates=templates,
        book=AppointmentBook(store, business.tz),
        flows=flows,
        model=step,
    )
