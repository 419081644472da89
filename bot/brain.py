"""The Brain: from an understood message to replies, across turns.

The pipeline for a message that passed compliance (bot/engine.py):

1. Hand-off: while a person has the conversation, the bot says nothing
   (until ``HANDOFF_IDLE_MINUTES`` without messages, or the user texts "bot").
2. The active flow's expected answer: an offered choice (button, "1"/"2",
   its title), or slot values / yes / no for the current step.
3. Rules, then 4. the local classifier (:mod:`bot.nlu`).
5. The LangChain model, only when 3-4 gave ``fallback`` and ``LLM_MODEL`` is set.

Then the intent's handler answers from the business data and templates; a
question in the middle of a flow is answered and the flow is resumed.

Example::

    brain = build_handler(settings, templates=templates, clock=clock, store=store)
    result = await brain.handle(ctx)
    result.intent, [r.text for r in result.replies]
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.appointments import AppointmentBook
from bot.business import Business, load_business
from bot.clock import Clock
from bot.engine import TurnContext
from bot.flows.appointments import BookFlow, CancelFlow, RescheduleFlow, fmt_when
from bot.flows.base import Flow, Turn
from bot.memo import memo
from bot.messages import Channel, Choice, Reply, TurnResult
from bot.nlu.classifier import IntentClassifier
from bot.nlu.intents import load_intents
from bot.nlu.model import ModelStep, build_chat_model
from bot.nlu.understand import NLU, Understanding
from bot.settings import Settings
from bot.sms.render import cap_segments, pick_choice
from bot.storage.base import ConversationKey, ConversationStore
from bot.templates import ReplyTemplates

log = logging.getLogger("bot.brain")

Handler = Callable[[Turn], Awaitable[list[Reply]]]

# Texting one of these while a person has the conversation gives it back to the bot.
RELEASE_WORDS = frozenset({"bot", "menu", "back to bot", "talk to bot"})


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
        notify_staff: Callable[[ConversationKey, str, str], Awaitable[None]] | None = None,
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

    async def handle(self, ctx: TurnContext) -> TurnResult:
        state, msg = ctx.state, ctx.message
        text = msg.button_text or msg.body if msg.button_payload else msg.body
        understanding = self.nlu.classify(text, now=ctx.now)
        turn = self._turn(ctx, understanding, self._picked(ctx))

        if self._in_handoff(ctx, text):
            # A person has the conversation; the bot only keeps the idle clock.
            state.data["handoff_until"] = ctx.now.timestamp() + self._handoff_idle()
            return self._result(turn, [], "human")

        # 2. The active flow's expected answer.
        flow = self.flows.get(state.flow or "")
        if flow is not None:
            answered = await flow.answer(turn)
            if answered is not None:
                return self._result(turn, answered, state.flow or flow.name)

        intent = understanding.intent
        # 5. The model, only for what rules and classifier left unresolved.
        if understanding.needs_model and self.model is not None and not msg.media:
            decision = await self.model.decide(text, history=state.history[:-1], intents=self.nlu.catalog.names)
            if decision is not None and decision.intent != "fallback" and decision.intent in self.handlers:
                intent = decision.intent
            elif decision is not None and decision.answer:
                return self._result(turn, [self._model_answer(turn, decision.answer)], "fallback")

        if flow is not None and intent in self.flows and intent != flow.name:
            turn.leave()  # switching to another flow ("actually, cancel it instead")
            flow = None
        handler = self.handlers.get(intent, self.handlers["fallback"])
        replies = await handler(turn)
        if flow is not None and state.flow == flow.name and intent not in self.flows:
            # A digression ("what are your hours?") inside a flow: answer, then resume.
            replies = self._resume(turn, replies, await flow.prompt(turn))
        return self._result(turn, replies, intent)

    # -- helpers ------------------------------------------------------------
    def _turn(self, ctx: TurnContext, understanding: Understanding, choice: str | None) -> Turn:
        return Turn(ctx=ctx, understanding=understanding, choice=choice, business=self.business,
                    book=self.book, templates=self.templates, context=self.template_context)

    def _picked(self, ctx: TurnContext) -> str | None:
        """The payload of an offered choice the user picked, if any."""
        offered = [Choice(p, t) for p, t in ctx.state.data.pop("choices", [])]
        msg = ctx.message
        if msg.button_payload:
            return msg.button_payload
        picked = pick_choice(msg.body, offered) if offered else None
        return picked.payload if picked else None

    def _result(self, turn: Turn, replies: list[Reply], intent: str) -> TurnResult:
        u = turn.understanding
        state = turn.ctx.state
        return TurnResult(replies=tuple(replies), intent=intent, confidence=u.confidence,
                          entities=u.entities, flow=state.flow, step=state.step)

    def _resume(self, turn: Turn, answer: list[Reply], prompt: list[Reply]) -> list[Reply]:
        if not answer or not prompt:
            return answer + prompt
        # One message, not two: on SMS every message costs at least a segment.
        intro = self.templates.render("resume_flow", turn.ctx.message.channel.value, **self.template_context)
        last = prompt[-1]
        joined = "\n\n".join([*(r.text for r in answer), f"{intro} {last.text}"])
        return [Reply(text=joined, choices=last.choices)]

    def _template(self, name: str) -> Handler:
        async def handler(turn: Turn) -> list[Reply]:
            return [turn.say(name, name=turn.ctx.message.profile_name,
                             hours=self.business.opening_hours_text())]

        return handler

    def _model_answer(self, turn: Turn, answer: str) -> Reply:
        if turn.ctx.message.channel is Channel.SMS:
            answer = cap_segments(answer, self.settings.llm_max_sms_segments)
        return Reply(text=answer)

    async def _pricing(self, turn: Turn) -> list[Reply]:
        service = self.business.service(turn.understanding.slots.service or "")
        return [turn.say("pricing", service=service, services=list(self.business.services.values()))]

    async def _my_appointments(self, turn: Turn) -> list[Reply]:
        upcoming = await self.book.upcoming_for(turn.ctx.state.key, now=turn.now)
        items = [{"service": self._label(a.service), "when": fmt_when(a.start, self.business.tz)}
                 for a in upcoming]
        return [turn.say("my_appointments", appointments=items)]

    def _label(self, service_key: str) -> str:
        service = self.business.service(service_key)
        return service.label.lower() if service else service_key

    # -- hand-off -----------------------------------------------------------
    def _handoff_idle(self) -> float:
        return timedelta(minutes=self.settings.handoff_idle_minutes).total_seconds()

    def _in_handoff(self, ctx: TurnContext, text: str) -> bool:
        until = ctx.state.data.get("handoff_until")
        if until is None:
            return False
        if ctx.now.timestamp() >= float(until) or text.strip().lower() in RELEASE_WORDS:
            del ctx.state.data["handoff_until"]
            return False
        return True

    async def _handoff(self, turn: Turn) -> list[Reply]:
        turn.leave()
        ctx = turn.ctx
        ctx.state.data["handoff_until"] = ctx.now.timestamp() + self._handoff_idle()
        recent = " | ".join(f"{h.role}: {h.text}" for h in ctx.state.history[-6:])
        notice = self.templates.render(
            "handoff_staff", "sms", user=ctx.message.user, channel=ctx.message.channel.value,
            recent=recent, **self.template_context,
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
        settings=settings, nlu=nlu, business=business, templates=templates,
        book=AppointmentBook(store, business.tz), flows=flows, model=step,
    )
