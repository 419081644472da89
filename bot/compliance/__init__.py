"""Consent: opt-out, opt-in and help, handled before any intent logic.

Rules (docs/compliance.md has each with its FCC/Twilio source):

- Twilio's single-word keywords (:mod:`bot.compliance.keywords`): STOP words
  opt out, START/UNSTOP (and YES while opted out) opt in, HELP/INFO ask for
  help. Twilio's Advanced Opt-Out classification (``OptOutType``) wins.
- Revocations in other words (:mod:`bot.compliance.revocation`, phrases in
  ``intents/consent/``) opt out **at once**: "stop please", "no more texts",
  "ya no me manden mensajes". The model never decides an opt-out.
- On WhatsApp a lone "cancel" from someone with an upcoming appointment asks
  one question (cancel the appointment, or stop all messages?); without an
  appointment it opts out. On SMS it is Twilio's opt-out, always.
- On SMS Twilio answers its own keywords by default
  (``SMS_KEYWORD_REPLIES=twilio``); everything else the bot confirms itself,
  exactly once. While opted out nothing but these answers is sent.
- An opt-out or opt-in ends what was going on (flow, offered choices), is
  written to the consent ledger (:mod:`bot.compliance.ledger`), and staff
  are told when someone with an upcoming appointment opts out.

Example::

    compliance = Compliance(renderer, keyword_replies="twilio", context={"business": biz},
                            matcher=RevocationMatcher.from_dir(Path("intents/consent")))
    outcome = await compliance.handle(msg, state=state, opted_out=False, now=now)
    if outcome is not None:
        outcome.opted_out  # True after "stop texting me"
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final, Literal, Protocol

from bot.channels import profile_of
from bot.clock import Clock
from bot.compliance.keywords import (
    HELP_WORDS,
    START_WORDS,
    STOP_WORDS,
    YES_WORD,
    keyword_of,
    keyword_type,
)
from bot.compliance.ledger import AddressHasher, ConsentEvent, ConsentLedger, Source, latest
from bot.compliance.revocation import Revocation, RevocationMatcher
from bot.languages.choose import Languages
from bot.languages.profile import DEFAULT_LANGUAGE, LanguageProfile, profile_for
from bot.messages import Channel, Choice, InboundMessage, OptOutType, Reply
from bot.observability import mask_phone
from bot.sms.render import pick_choice
from bot.storage.base import ConversationKey, ConversationState

__all__ = [
    "HELP_WORDS",
    "START_WORDS",
    "STOP_WORDS",
    "Compliance",
    "ComplianceOutcome",
    "Revocation",
    "RevocationMatcher",
    "keyword_of",
    "keyword_type",
]

log = logging.getLogger("bot.compliance")

Action = Literal["opt_out", "opt_in", "help", "ask"]
#: Tells staff something about a conversation: (conversation, notice, idempotency id).
StaffNotifier = Callable[[ConversationKey, str, str], Awaitable[None]]
#: Hears of every opt-out: (conversation, event id, time, whether they have an upcoming appointment).
OptOutObserver = Callable[[ConversationKey, str, datetime, bool], Awaitable[None]]

#: The WhatsApp "cancel" question's buttons. ``cancel_appointment`` is a
#: button the Brain knows (it starts the cancel flow); ``stop_messages`` opts out.
CANCEL_APPOINTMENT: Final = Choice("cancel_appointment", "Cancel appointment")
STOP_MESSAGES: Final = Choice("stop_messages", "Stop all messages")
#: Where the pending question lives in ``state.data`` (for one turn).
QUESTION: Final = "consent_question"
#: ``state.data`` entries that outlive an opt-out: preferences, not things going on.
DURABLE_DATA: Final = frozenset({"locale", "language", "lang", "media"})
#: Sources after which Twilio itself holds the number as opted out (so it confirms YES).
_TWILIO_KNOWS: Final = frozenset({"twilio_keyword", "platform_21610"})

_ACTIONS: dict[OptOutType, Action] = {
    OptOutType.STOP: "opt_out",
    OptOutType.START: "opt_in",
    OptOutType.HELP: "help",
}


class ReplyRenderer(Protocol):
    """What compliance needs from the template layer."""

    def render(self, name: str, channel: str, /, **context: Any) -> str: ...

    def in_language(self, language: str) -> ReplyRenderer: ...


class UpcomingAppointment(Protocol):
    """An appointment as compliance sees it."""

    @property
    def service(self) -> str: ...

    @property
    def start(self) -> datetime: ...


class AppointmentLookup(Protocol):
    """What compliance needs from the appointment book."""

    async def upcoming_for(self, key: ConversationKey, *, now: datetime) -> Sequence[UpcomingAppointment]: ...


@dataclass(frozen=True, slots=True)
class ComplianceOutcome:
    """What a compliance message changes and what (if anything) to say.

    ``forward``: not a compliance message after all; run the turn with this
    message instead (an answer to the WhatsApp "cancel" question that picked
    the appointment, as the button press it means).
    """

    action: Action
    intent: str
    replies: tuple[Reply, ...]
    # True/False: the new opt-out status to store; None: unchanged.
    opted_out: bool | None
    source: Source | None = None
    words: str = ""
    forward: InboundMessage | None = None


@dataclass(frozen=True, slots=True)
class _Found:
    action: Action
    source: Source
    words: str
    twilio_keyword: bool  # Twilio's own filter saw a keyword in this message
    # The language of the words ("ya no me manden mensajes": es); None for a bare keyword.
    language: str | None = None


def is_revocation(body: str, matcher: RevocationMatcher | None = None) -> bool:
    """Whether ``body`` asks, in words, to stop receiving messages (default phrase data)."""
    return (matcher or default_matcher()).match(body) is not None


_DEFAULT: list[RevocationMatcher] = []


def default_matcher() -> RevocationMatcher:
    """The matcher of ``intents/consent`` beside this package's project (loaded once)."""
    if not _DEFAULT:
        from pathlib import Path

        _DEFAULT.append(RevocationMatcher.from_dir(Path(__file__).resolve().parents[2] / "intents" / "consent"))
    return _DEFAULT[0]


class Compliance:
    """Recognises consent messages, applies them and builds their answers."""

    def __init__(
        self,
        renderer: ReplyRenderer,
        *,
        keyword_replies: Literal["twilio", "bot"] = "twilio",
        context: Mapping[str, Any] | None = None,
        matcher: RevocationMatcher | None = None,
        ledger: ConsentLedger | None = None,
        hasher: AddressHasher | None = None,
        appointments: AppointmentLookup | None = None,
        tz: Any = None,
        notify_staff: StaffNotifier | None = None,
        clock: Clock | None = None,
        languages: Languages | None = None,
        service_labels: Mapping[str, Mapping[str, str]] | None = None,
        opt_out_observers: Sequence[OptOutObserver] = (),
    ) -> None:
        self._renderer = renderer
        #: The business's languages: answers go out in the conversation's (bot/languages).
        self.languages = languages
        #: Other languages' service names by key ({"es": {"cleaning": "Limpieza"}}): the question names it so.
        self.service_labels = dict(service_labels or {})
        self._keyword_replies = keyword_replies
        self._context = dict(context or {})
        self.matcher = matcher or default_matcher()
        self.ledger = ledger
        self.hasher = hasher or AddressHasher()
        self.appointments = appointments
        self.tz = tz
        # The hand-off's staff path (the runtime passes the Brain's).
        self.notify_staff = notify_staff
        self.clock = clock
        #: Called on every opt-out with (conversation, event id, time, has an upcoming appointment):
        #: staff email and the day's digest, and removing the number as someone's reminder contact.
        self.opt_out_observers = tuple(opt_out_observers)

    async def handle(
        self, msg: InboundMessage, *, state: ConversationState, opted_out: bool, now: datetime
    ) -> ComplianceOutcome | None:
        """Classify ``msg`` and apply it; None means "not a compliance message".

        Mutates ``state`` (an opt-out or opt-in clears the flow and offered
        choices), appends to the ledger and tells staff before the turn
        commits; both are idempotent per MessageSid, so a retried turn
        records once.
        """
        question = state.data.pop(QUESTION, None)
        if question is not None and not opted_out:
            picked = self._question_answer(msg, question)
            if picked == CANCEL_APPOINTMENT.payload:
                return self._forward(msg)
            if picked == STOP_MESSAGES.payload:
                stop = _Found("opt_out", "bot_keyword", "cancel", twilio_keyword=False)
                return await self._apply(msg, stop, state=state, opted_out=opted_out, now=now)
        found = self._classify(msg, opted_out=opted_out)
        if found is None:
            return None
        if (
            found.words.upper() == "CANCEL"
            and found.twilio_keyword
            # Where Twilio filters keywords (SMS), a lone CANCEL is its opt-out, always.
            and not profile_of(msg.channel).carrier_answers_keywords
            and not opted_out
            and question is None
        ):
            upcoming = await self._upcoming(state.key, now)
            if upcoming:
                return self._ask(msg, state, upcoming[0])
        return await self._apply(msg, found, state=state, opted_out=opted_out, now=now)

    async def platform_opt_out(self, key: ConversationKey, message_sid: str) -> None:
        """Record an opt-out Twilio reported (21610) and tell staff as for any opt-out."""
        now = datetime.now(UTC) if self.clock is None else self.clock.now()
        msg = InboundMessage(message_sid=message_sid, channel=key.channel, user=key.user, bot=key.bot)
        found = _Found("opt_out", "platform_21610", "21610", twilio_keyword=False)
        await self._record(msg, found, now)
        # A send-time 21610 has no MessageSid: name the notice by number and time instead.
        await self._tell_staff(msg, now, event=message_sid or f"21610:{key.tag}:{int(now.timestamp())}")

    def classify(self, msg: InboundMessage, *, opted_out: bool) -> Action | None:
        """What ``msg`` asks for, without applying it (no state, ledger or staff).

        Example::

            compliance.classify(InboundMessage("SM1", Channel.SMS, "+14155550123", "+15005550006",
                                               "stop pls"), opted_out=False)   # 'opt_out'
        """
        found = self._classify(msg, opted_out=opted_out)
        return None if found is None else found.action

    # -- recognising -------------------------------------------------------
    def _classify(self, msg: InboundMessage, *, opted_out: bool) -> _Found | None:
        carrier = profile_of(msg.channel).carrier_answers_keywords
        if msg.opt_out_type is not None:
            return _Found(_ACTIONS[msg.opt_out_type], "twilio_keyword", msg.body.strip()[:40], twilio_keyword=True)
        if msg.button_payload is not None:
            # A pressed button ("Cancel") is an answer the user chose, not a typed keyword.
            return None
        keyword = keyword_type(msg.body, opted_out=opted_out)
        if keyword is not None:
            source: Source = "twilio_keyword" if carrier else "bot_keyword"
            return _Found(_ACTIONS[keyword], source, keyword_of(msg.body) or "", twilio_keyword=True)
        if not msg.body.strip():
            return None
        help_language = self.matcher.is_help(msg.body)
        if help_language is not None:
            return _Found("help", "bot_keyword", msg.body.strip().lower(), twilio_keyword=False, language=help_language)
        revocation = self.matcher.match(msg.body)
        if revocation is None:
            return None
        source = "bot_keyword" if revocation.rule == "keyword" else "natural_language"
        return _Found("opt_out", source, revocation.words, twilio_keyword=False, language=revocation.language)

    @staticmethod
    def _question_answer(msg: InboundMessage, question: Mapping[str, Any]) -> str | None:
        choices = [Choice(p, t) for p, t in question.get("choices", ())]
        if msg.button_payload is not None:
            return msg.button_payload if any(c.payload == msg.button_payload for c in choices) else None
        picked = pick_choice(msg.body, choices)
        return picked.payload if picked is not None else None

    # -- applying ----------------------------------------------------------
    async def _apply(
        self, msg: InboundMessage, found: _Found, *, state: ConversationState, opted_out: bool, now: datetime
    ) -> ComplianceOutcome | None:
        action = found.action
        if action == "opt_out" and opted_out and not found.twilio_keyword:
            # Already opted out: a second revocation in words changes nothing and gets no answer.
            return ComplianceOutcome(action, "opt_out", (), None, found.source, found.words)
        new_status = {"opt_out": True, "opt_in": False}.get(action)
        changed = new_status is not None and new_status != opted_out
        replies: tuple[Reply, ...] = ()
        if not await self._twilio_answers(msg, found, opted_out=opted_out):
            speaking = self._language(msg, state, found.language)
            text = self._say(speaking, f"compliance_{action}", msg, **self._context)
            replies = (Reply(text=text, compliance=True),)
        if new_status is not None:
            _end_what_was_going_on(state)
        if changed and new_status is not None:
            await self._record(msg, found, now)
            if new_status:
                await self._tell_staff(msg, now)
        return ComplianceOutcome(action, action, replies, new_status, found.source, found.words)

    async def _twilio_answers(self, msg: InboundMessage, found: _Found, *, opted_out: bool) -> bool:
        """Whether Twilio's own keyword filter confirms this message (so the bot must not)."""
        carrier = profile_of(msg.channel).carrier_answers_keywords
        if not carrier or self._keyword_replies != "twilio" or not found.twilio_keyword:
            return False
        if msg.opt_out_type is not None or keyword_of(msg.body) != YES_WORD:
            return True
        # YES re-subscribes at Twilio only if Twilio holds the number as opted
        # out; after a revocation in words it never did, so the bot confirms.
        if self.ledger is None or not opted_out:
            return True
        last = latest(await self.ledger.history(self.hasher.hash(msg.user)), msg.channel, msg.bot)
        return last is None or last.action != "opt_out" or last.source in _TWILIO_KNOWS

    async def _record(self, msg: InboundMessage, found: _Found, now: datetime) -> None:
        if self.ledger is None:
            return
        event = ConsentEvent.create(
            action="opt_out" if found.action == "opt_out" else "opt_in", channel=msg.channel, bot=msg.bot,
            user=msg.user, source=found.source, at=now, hasher=self.hasher, message_sid=msg.event_id,
            words=found.words,
        )
        await self.ledger.append(event)
        log.info(
            "consent change",
            extra={"fields": {"action": event.action, "source": event.source, "user": mask_phone(msg.user)}},
        )

    async def _tell_staff(self, msg: InboundMessage, now: datetime, *, event: str | None = None) -> None:
        """One notice to staff when someone with an upcoming appointment opts out; the observers hear of all."""
        key = ConversationKey(msg.channel, msg.bot, msg.user)
        upcoming = await self._upcoming(key, now)
        for observe in self.opt_out_observers:
            await observe(key, event or msg.event_id, now, bool(upcoming))
        if self.notify_staff is None or not upcoming:
            return
        appt = upcoming[0]
        notice = self._renderer.render(
            "optout_staff", "sms", user=msg.user, channel=msg.channel.value,
            day=self._day(appt.start), service=appt.service, more=len(upcoming) - 1, **self._context,
        )
        await self.notify_staff(key, notice, f"optout:{event or msg.event_id}")

    async def _upcoming(self, key: ConversationKey, now: datetime) -> list[UpcomingAppointment]:
        if self.appointments is None:
            return []
        found: list[UpcomingAppointment] = []
        # "On any channel": an appointment booked on WhatsApp counts for an SMS opt-out too.
        channels = dict.fromkeys([profile_of(key.channel).records_channel,
                                  *(profile_of(c).records_channel for c in Channel)])
        for channel in channels:
            found.extend(await self.appointments.upcoming_for(ConversationKey(channel, key.bot, key.user), now=now))
        return sorted(found, key=lambda a: a.start)

    def _language(self, msg: InboundMessage, state: ConversationState, words: str | None) -> LanguageProfile:
        """The language to answer in: the words' own (a Spanish revocation), else the conversation's."""
        if self.languages is None:
            return profile_for(DEFAULT_LANGUAGE)
        code = self.languages.keep(msg, state, words)
        return profile_for(code)

    def _say(self, speaking: LanguageProfile, template: str, msg: InboundMessage, **values: Any) -> str:
        text = self._renderer.in_language(speaking.code).render(template, msg.channel.value, **values)
        # On SMS without the accents GSM-7 lacks, as every reply in that language (bot/languages).
        return speaking.for_sms(text) if profile_of(msg.channel).counts_segments else text

    def _ask(self, msg: InboundMessage, state: ConversationState, appt: UpcomingAppointment) -> ComplianceOutcome:
        speaking = self._language(msg, state, None)
        choices = tuple(replace(c, title=speaking.titles.get(c.payload, c.title))
                        for c in (CANCEL_APPOINTMENT, STOP_MESSAGES))
        state.data[QUESTION] = {"choices": [[c.payload, c.title] for c in choices]}
        service = self.service_labels.get(speaking.code, {}).get(appt.service, appt.service)
        text = self._say(
            speaking, "consent_cancel_question", msg, day=self._day(appt.start, speaking), service=service,
            **self._context,
        )
        return ComplianceOutcome("ask", "cancel_or_stop", (Reply(text=text, choices=choices),), None)

    @staticmethod
    def _forward(msg: InboundMessage) -> ComplianceOutcome:
        pressed = replace(msg, button_payload=CANCEL_APPOINTMENT.payload, button_text=CANCEL_APPOINTMENT.title)
        return ComplianceOutcome("ask", "cancel", (), None, forward=pressed)

    def _day(self, start: datetime, speaking: LanguageProfile | None = None) -> str:
        local = start.astimezone(self.tz) if self.tz is not None else start
        return (speaking or profile_for(DEFAULT_LANGUAGE)).fmt_date(local.date())


def _end_what_was_going_on(state: ConversationState) -> None:
    """An opt-out or opt-in ends any flow, pending booking, offered choice or question."""
    state.flow = None
    state.step = None
    state.slots.clear()
    for name in [n for n in state.data if n not in DURABLE_DATA]:
        del state.data[name]
