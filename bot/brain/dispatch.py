"""The Brain's turn: from an understood message to the handler or flow that answers it.

The pipeline for a message that passed compliance (bot/engine.py):

0. Safety and feelings first (:mod:`bot.safety`): a dental emergency or a
   complaint is answered at once and handed to staff.
1. Hand-off (:mod:`bot.handoff`): while a person has the conversation, the bot
   passes messages on and only acknowledges after a quiet spell (until
   ``HANDOFF_IDLE_MINUTES`` without messages, when it says it is back, or the
   user texts "bot" or "menu", which gets a "you're back" answer). Outside a
   flow, a message with several requests is split (:mod:`bot.compound`):
   questions answered first, then the request.
2. The active flow's expected answer (an FAQ question, :mod:`bot.faq`, is
   never one): an offered choice (button, "1"/"2", its title), or slot
   values / yes / no for the current step. A button of a message sent
   outside the turn (the reminder's Confirm / Reschedule,
   :attr:`Brain.buttons`) comes first.
3. Rules, then 4. the local classifier (:mod:`bot.nlu`); an FAQ of the
   business file is answered from it.
5. The LangChain model, only when 3-4 gave ``fallback`` and ``LLM_MODEL`` is set;
   the service, date and time it read fill the slots the rules did not find.

Then the intent's handler (:mod:`bot.handlers`) or flow (:mod:`bot.flows`,
tables run by one interpreter) answers from the business data and templates; a
question in the middle of a flow is answered and the flow is resumed. A
media-only message is acknowledged (and its URLs kept in ``state.data``), a
shared location gets the address and directions. A yes or no right after a
question asked outside a flow ("Want to book?") answers that question.

The Brain is built by :func:`bot.brain.build.build_handler`.

Example::

    brain = build_handler(settings, templates=templates, clock=clock, store=store)
    result = await brain.handle(ctx)
    result.intent, [r.text for r in result.replies]
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import date
from typing import Any

from bot.appointments import AppointmentBook
from bot.business import Business
from bot.channels import profile_of
from bot.compound import split_requests
from bot.confirmations.answers import ReminderAnswers
from bot.contacts.flow import ContactVerification
from bot.engine import TurnContext
from bot.errors import ConfigError
from bot.faq import REQUEST_MARGIN, FaqBook, FaqMatch
from bot.flows.base import ASKED, YES_NO, Flow, Turn
from bot.flows.options import Offered, pick, recall, remember
from bot.flows.when import fmt_date
from bot.handlers import Handler, Handlers
from bot.handoff import Handoff, StaffNotifier
from bot.languages.choose import Languages
from bot.languages.profile import profile_for
from bot.messages import Reply, TurnResult
from bot.nlu.intents import FALLBACK
from bot.nlu.model import ModelDecision, ModelStep, with_model_slots
from bot.nlu.slots import extract_slots
from bot.nlu.understand import NLU, Understanding
from bot.opening import opening_status
from bot.safety import SafetyMatch, SafetyRules
from bot.settings import Settings
from bot.storage.base import ConversationState
from bot.templates import ReplyTemplates

log = logging.getLogger("bot.brain")

#: Intents that ask something the brain answers from the business data: in a
#: message with two requests ("what are your hours and can i book?") they are
#: answered first, then the other request goes on.
QUESTION_INTENTS = frozenset({"hours", "location", "pricing"})
#: How sure the classifier must be of one part of a message with several requests.
PART_CONFIDENCE = 0.6


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
        handoff: Handoff,
        model: ModelStep | None = None,
        faq: FaqBook | None = None,
        safety: SafetyRules | None = None,
        contacts: ContactVerification | None = None,
    ) -> None:
        self.settings = settings
        self.nlu = nlu
        self.business = business
        self.templates = templates
        self.book = book
        self.flows = dict(flows)
        self.model = model
        self.handoff = handoff
        self.faq = faq
        self.safety = safety
        #: Reminder contacts verified through Twilio Verify (bot/contacts); None when Verify is not configured.
        self._contacts = contacts
        #: The business's languages and how a conversation's is chosen (None: one language).
        self.languages: Languages | None = None
        #: The same brain in each other language (its NLU, business words, FAQ, replies), by code.
        self.translations: dict[str, Brain] = {}
        self.template_context: dict[str, Any] = handoff.context
        self.answers = Handlers(business=business, templates=templates, book=book, settings=settings)
        a = self.answers
        # Intent -> handler, registered explicitly; every flow is started by its name.
        self.handlers: dict[str, Handler] = {
            "greet": a.template("greeting"),
            "help": a.template("help"),
            "hours": a.template("hours"),
            "location": a.template("location"),
            "pricing": a.pricing,
            "thanks": a.template("thanks"),
            "goodbye": a.template("goodbye"),
            "affirm": a.template("nothing_pending"),
            "deny": a.template("nothing_pending"),
            "opt_out": a.template("opt_out_question"),
            "opt_in": a.template("greeting"),
            "my_appointments": a.my_appointments,
            "fallback": a.template("fallback"),
        }
        for name, flow in self.flows.items():
            self.handlers[name] = flow.start
        # Buttons of content templates the bot sends outside a turn (intents/templates.yaml):
        # payload -> (the intent it means, its handler). The appointment reminder has
        # "confirm" and "reschedule" (set with the reminder answers: set_reminder_answers).
        self.buttons: dict[str, tuple[str, Handler]] = {}
        #: Answers to reminders ("C", "can't make it"; bot/confirmations); None without intents/reminder_replies.yaml.
        self.reminder_answers: ReminderAnswers | None = None
        if "book" in self.flows:
            # "Book a new time" on the no-show message and the recall invitation (bot/confirmations).
            self.buttons["rebook"] = ("book", self.flows["book"].start)
        if "cancel" in self.flows:
            # Compliance's WhatsApp question after a lone "cancel" (bot/compliance).
            self.buttons["cancel_appointment"] = ("cancel", self.flows["cancel"].start)

    @property
    def reminder_lead_hours(self) -> float:
        """How long before an appointment its (first) reminder goes, in hours (the FAQ says it)."""
        steps = self.business.reminders
        if steps and "reminder_lead_hours" not in self.settings.model_fields_set:
            return steps[0].lead.total_seconds() / 3600
        return self.settings.reminder_lead_hours

    def set_reminder_answers(self, answers: ReminderAnswers) -> None:
        """Read answers to reminders with ``answers``; the reminder's buttons act on the appointment reminded."""
        self.reminder_answers = answers
        self.buttons["confirm"] = ("affirm", answers.button("confirm"))
        if "reschedule" in self.flows:
            self.buttons["reschedule"] = ("reschedule", answers.button("reschedule"))

    @property
    def notify_staff(self) -> StaffNotifier | None:
        """How staff hear of a hand-off (set where the outbox exists)."""
        return self.handoff.notify_staff

    @notify_staff.setter
    def notify_staff(self, notifier: StaffNotifier | None) -> None:
        self.handoff.notify_staff = notifier

    @property
    def contacts(self) -> ContactVerification | None:
        """Reminder contacts verified through Twilio Verify (bot/contacts); None when not configured."""
        return self._contacts

    @contacts.setter
    def contacts(self, contacts: ContactVerification | None) -> None:
        self._contacts = contacts
        for translation in self.translations.values():
            translation.contacts = contacts

    @property
    def service_labels(self) -> dict[str, dict[str, str]]:
        """Each other language's service names, by service key: ``{"es": {"cleaning": "Limpieza"}}``.

        For answers given outside the Brain in the conversation's language (the WhatsApp "cancel" question).
        """
        return {code: {key: service.label for key, service in other.business.services.items()}
                for code, other in self.translations.items()}

    def check_intents(self, names: tuple[str, ...], source: object) -> None:
        """Every intent of ``intents.yaml`` must have a handler: a start-up error names the first that has none."""
        for name in names:
            if name not in self.handlers:
                raise ConfigError(
                    f"{source}: intent {name!r} has no handler; register one in Brain.handlers "
                    f"(bot/brain/dispatch.py) or add a flow named {name!r}"
                )

    async def handle(self, ctx: TurnContext) -> TurnResult:
        if self.languages is not None:
            # The conversation's language (bot/languages): its brain answers the turn.
            choice = self.languages.choose(ctx.message, ctx.state)
            brain = self.translations.get(choice.code, self)
            if choice.asked:
                return await brain._switched(ctx)
            if brain is not self:
                return await brain.handle(ctx)
        state, msg = ctx.state, ctx.message
        text = msg.button_text or msg.body if msg.button_payload else msg.body
        understanding = self.nlu.classify(text, now=ctx.now)
        offered = recall(state.data, _where(state))
        # A yes/no question asked outside a flow ("Want to book?") lives one turn.
        offer = state.data.pop("offer", None)
        turn = self._turn(ctx, understanding, offered)
        turn.asked = state.data.pop(ASKED, None)

        # 0. Safety and feelings first: before hand-off, flows and intents (bot/safety.py).
        danger = self.safety.check(text) if self.safety is not None and not msg.button_payload else None
        if danger is not None:
            return self._result(turn, await self._safety_answer(turn, danger), danger.kind)

        # 1. Hand-off (bot/handoff.py).
        handoff = self.handoff.status(ctx, text)
        if handoff == "active":
            return self._result(turn, await self.handoff.waiting(turn), "human")
        if handoff == "released":
            return self._result(turn, [turn.say("handoff_released")], "help")
        if self.contacts is not None and not msg.button_payload:
            # Reminders to another phone (bot/contacts): a verification in progress reads codes first.
            said = await self.contacts.handle(state.key, text, ctx.now, state.data)
            if said is not None:
                return self._result(turn, [turn.say(said.template, **said.values)], "reminder_contact")
        result = await self._answer(turn, text, offered, offer)
        if handoff == "returned" and result.replies:
            # Staff went quiet: say the bot is back, in the same message.
            line = self.handoff.returned_line(msg.channel.value, self.templates)
            first = result.replies[0]
            result = replace(result, replies=(replace(first, text=f"{line} {first.text}"), *result.replies[1:]))
        return result

    async def _switched(self, ctx: TurnContext) -> TurnResult:
        """ "english please", "en español": say so in that language, and where a flow stood."""
        understanding = self.nlu.classify("", now=ctx.now)
        turn = self._turn(ctx, understanding, recall(ctx.state.data, _where(ctx.state)))
        replies = [turn.say("language_switched")]
        flow = self.flows.get(ctx.state.flow or "")
        if flow is not None:
            replies = self._resume(turn, flow, replies, await flow.prompt(turn))
        return self._result(turn, replies, "language")

    async def _answer(
        self, turn: Turn, text: str, offered: list[Offered], offer: Mapping[str, Any] | None
    ) -> TurnResult:
        """Steps 2-5: several requests, the flow's answer, an FAQ, rules and classifier, the model."""
        ctx, understanding = turn.ctx, turn.understanding
        state, msg = ctx.state, ctx.message
        flow = self.flows.get(state.flow or "")
        button = self._button_action(msg.button_payload, offered)
        if button is not None:
            # A button of a message sent outside this flow (the reminder's "Confirm").
            intent, handler = button
            return await self._run(turn, flow, intent, handler)
        if flow is None and offer is None and not offered and self.reminder_answers is not None:
            # "C", "ill b there", "can't make it": an answer to the latest reminder (bot/confirmations).
            reminder = await self.reminder_answers.answer(turn, text)
            if reminder is not None:
                return self._result(turn, reminder[1], reminder[0])

        if flow is None and turn.choice is None and text.strip():
            several = await self._several(turn, text)
            if several is not None:
                return several
        # An FAQ question ("how long does a checkup take?") is never a flow's answer.
        faq = self._faq_match(turn)
        # 2. The active flow's expected answer.
        if flow is not None and faq is None:
            if turn.among and turn.asked == turn.where:
                return await self._stuck(turn)  # asked "which one?" already; still several fit
            answered = await flow.answer(turn)
            if answered is not None:
                return self._result(turn, answered, self._answer_intent(turn, state.flow or flow.name))

        intent = understanding.intent
        attachment = bool(msg.media or msg.location is not None) and intent == FALLBACK
        if faq is not None and not attachment:
            return await self._run(turn, flow, "faq", self._faq_handler(faq))
        # 5. The model, only for what rules and classifier left unresolved.
        if understanding.needs_model and self.model is not None and not attachment:
            facts = (
                self.faq.grounding(ctx.now, reminder_lead_hours=self.reminder_lead_hours)
                if self.faq is not None
                else []
            )
            decision = await self.model.decide(
                text, history=state.history, intents=self.nlu.catalog.names, facts=facts,
                language=profile_for(self.business.language).name,
            )
            picked = self._model_pick(turn, decision, offered) if flow is not None else None
            if picked is not None and flow is not None:
                # The model said which offered option ("the whitening one"): the flow takes it.
                turn.choice = picked
                answered = await flow.answer(turn)
                if answered is not None:
                    return self._result(turn, answered, self._answer_intent(turn, state.flow or flow.name))
            if decision is not None and decision.intent != FALLBACK and decision.intent in self.handlers:
                intent = decision.intent
                turn.understanding = with_model_slots(understanding, decision, now=ctx.now, business=self.business)
            elif decision is not None and decision.answer:
                replies = [self.answers.model_answer(turn, decision.answer)]
                return await self._run(turn, flow, FALLBACK, Handlers.constant(replies))

        if attachment:
            # Nothing to classify: answer what was sent (a shared location, a photo).
            if msg.location is not None:
                return await self._run(turn, flow, "location", self.answers.shared_location)
            return await self._run(turn, flow, FALLBACK, self.answers.media_received)
        if offer is not None and intent in ("affirm", "deny"):
            return await self._run(turn, flow, intent, self.answers.offer_answer(offer, self.flows))
        return await self._run(turn, flow, intent, self.handlers.get(intent, self.handlers[FALLBACK]))

    async def _run(self, turn: Turn, flow: Flow | None, intent: str, handler: Handler) -> TurnResult:
        """Run ``handler`` for ``intent``; a digression inside ``flow`` resumes it after."""
        state = turn.ctx.state
        if flow is not None and intent in self.flows and intent != flow.name:
            turn.leave()  # switching to another flow ("actually, cancel it instead")
            flow = None
        if flow is not None and state.flow == flow.name and handler is self.handlers[FALLBACK]:
            # Not understood inside a flow: say so briefly and ask again (not the whole fallback), once.
            if not turn.asking():
                return await self._stuck(turn)
            return self._result(turn, [self._reminder(turn, flow, await flow.prompt(turn), repeat=True)], intent)
        replies = await handler(turn)
        if flow is not None and state.flow == flow.name and intent not in self.flows:
            # A digression ("what are your hours?") inside a flow: answer, then a short reminder.
            replies = self._resume(turn, flow, replies, await flow.prompt(turn))
        return self._result(turn, replies, intent)

    async def _stuck(self, turn: Turn) -> TurnResult:
        """Still unclear after one clarification at this step: a person takes over (a call is put
        through), rather than the same question again."""
        await self.handoff.start(turn, notice="handoff_staff_stuck")
        opening = opening_status(self.business, turn.now)
        return self._result(turn, [turn.say("handoff_stuck", opening=opening)], "human")

    # -- helpers ------------------------------------------------------------
    def _turn(self, ctx: TurnContext, understanding: Understanding, offered: list[Offered]) -> Turn:
        msg = ctx.message
        # Another language's "la primera", "el del viernes" read as the picker's English words (bot/languages).
        reader = self.business.slot_reader
        said = reader(msg.body) if reader is not None and offered else msg.body
        picked = pick(said, offered, understanding.slots) if offered and not msg.button_payload else None
        return Turn(
            ctx=ctx,
            understanding=understanding,
            choice=msg.button_payload or (picked.chosen.payload if picked and picked.chosen else None),
            business=self.business,
            book=self.book,
            templates=self.templates,
            context=self.template_context,
            among=picked.among if picked and ctx.state.flow else (),
        )

    def _button_action(self, payload: str | None, offered: list[Offered]) -> tuple[str, Handler] | None:
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
        # Offered options stay pickable while the conversation stays at the step they were offered at.
        if turn.offered is not None:
            remember(state.data, turn.offered, _where(state))
        elif isinstance(state.data.get("choices"), list) or not recall(state.data, _where(state)):
            state.data.pop("choices", None)  # moved on (or the older one-turn form)
        if profile_of(turn.ctx.message.channel).counts_segments:
            # SMS in a language with letters GSM-7 lacks: written without them when that keeps it GSM-7.
            speaking = profile_for(self.business.language)
            replies = [
                replace(r, text=speaking.for_sms(r.text),
                        choices=tuple(replace(c, title=speaking.for_sms(c.title)) for c in r.choices))
                for r in replies
            ]
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
        reminder = self._reminder(turn, flow, prompt)
        joined = "\n\n".join([*(r.text for r in answer), reminder.text])
        return [Reply(text=joined, choices=reminder.choices)]

    def _reminder(self, turn: Turn, flow: Flow, prompt: list[Reply], *, repeat: bool = False) -> Reply:
        """A short reminder of where ``flow`` stood (``resume_flow``), with the prompt's choices.

        ``prompt`` is the flow's own question, used when the template has no
        shorter form for the step; ``repeat`` after a message that was not understood.
        """
        last = prompt[-1] if prompt else Reply(text="")
        slots = turn.slots
        service = self.business.service(str(slots.get("service") or ""))
        day = slots.get("date")
        text = self.templates.render(
            "resume_flow",
            turn.ctx.message.channel.value,
            flow=flow.name,
            step=turn.ctx.state.step,
            service=service.label.lower() if service else None,
            day=fmt_date(date.fromisoformat(str(day)), self.business.language) if day else None,
            question=last.text,
            repeat=repeat,
            **self.template_context,
        )
        return Reply(text=text, choices=last.choices)

    # -- FAQ, several requests, safety ---------------------------------------
    def _faq_match(self, turn: Turn) -> FaqMatch | None:
        """The FAQ the message asks, unless a rule or an offered choice already says what it is."""
        u = turn.understanding
        if self.faq is None or turn.choice is not None or u.source == "rule" or turn.ctx.message.button_payload:
            return None
        request = u.intent in self.flows and u.confidence >= PART_CONFIDENCE
        return self.faq.match(u.text, margin=REQUEST_MARGIN if request else 0.0)

    def _faq_handler(self, hit: FaqMatch) -> Handler:
        async def handler(turn: Turn) -> list[Reply]:
            assert self.faq is not None
            # "how long does it take?" while booking a whitening: the whitening.
            named = turn.understanding.slots.service or str(turn.slots.get("service") or "")
            service = self.business.service(named)
            in_flow = turn.ctx.state.flow is not None
            text = self.faq.answer(
                hit,
                service=service,
                now=turn.now,
                reminder_lead_hours=self.reminder_lead_hours,
                in_flow=in_flow,
            )
            offer = self.business.faq[hit.key].offer
            if offer is not None and not in_flow:
                # The answer ends with a question ("Want to book?"): a "yes" next takes it.
                turn.offer(offer.intent, service=service.key if service else offer.service)
            return [Reply(text=text)]

        return handler

    async def _several(self, turn: Turn, text: str) -> TurnResult | None:
        """A message with several requests: answer its questions, then go on with the rest.

        "what are your hours and can i book a checkup?" -> the hours, then the
        first booking question, in one reply. None when the message holds one
        request (the usual case).
        """
        speaking = profile_for(self.business.language)
        parts = split_requests(text, speaking.joiners)
        if len(parts) < 2:
            return None
        asked: list[tuple[str, Turn, Handler]] = []
        main: str | None = None
        for part in parts:
            u = self.nlu.classify(part, now=turn.now)
            sub = replace(turn, understanding=u)
            hit = self.faq.match(part) if self.faq is not None and u.source != "rule" else None
            if hit is not None:
                asked.append(("faq", sub, self._faq_handler(hit)))
            elif (
                u.intent in QUESTION_INTENTS
                and u.confidence >= PART_CONFIDENCE
                and speaking.is_question(part)
            ):
                asked.append((u.intent, sub, self.handlers[u.intent]))
            elif main is None and u.intent in self.flows and u.confidence >= PART_CONFIDENCE:
                main = u.intent
        if not asked or (main is None and len(asked) < 2):
            return None
        replies: list[Reply] = []
        for _, sub, handler in asked:
            replies.extend(await handler(sub))
            if sub.offered is not None:
                turn.offered = sub.offered
        intent = asked[0][0]
        if main is not None:
            # The whole message's slots: "how much is a cleaning? also can i come thu at 10".
            intent = main
            replies.extend(await self.handlers[intent](turn))
        joined = Reply(text="\n\n".join(r.text for r in replies), choices=replies[-1].choices)
        return self._result(turn, [joined], intent)

    async def _safety_answer(self, turn: Turn, danger: SafetyMatch) -> list[Reply]:
        """An emergency or a complaint: answer now, and hand the conversation to staff."""
        assert self.safety is not None
        log.info("safety message", extra={"fields": {"kind": danger.kind, "rule": danger.rule}})
        reason = "urgent" if danger.kind == "emergency" else "complaint"
        await self.handoff.start(turn, notice=danger.staff_notice, reason=reason, rule=danger.rule)
        return [
            turn.say(
                danger.reply,
                opening=opening_status(self.business, turn.now),
                emergency_number=self.safety.emergency_number,
            )
        ]

    def _model_pick(self, turn: Turn, decision: ModelDecision | None, offered: list[Offered]) -> str | None:
        """The payload of the offered option the model's ``appointment`` words pick, if exactly one."""
        if decision is None or not decision.appointment or not offered or turn.choice is not None:
            return None
        words = decision.appointment
        found = pick(words, offered, extract_slots(words, now=turn.now, business=self.business))
        return found.chosen.payload if found.chosen is not None else None


def _where(state: ConversationState) -> str:
    """The step options were offered at: they stay pickable while it lasts."""
    return f"{state.flow or ''}/{state.step or ''}"
