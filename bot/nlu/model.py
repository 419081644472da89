"""Step 5 of the pipeline: a LangChain chat model, only for what the rules
and the classifier could not resolve.

The model gets the business data and FAQ answers (its only facts), the intent
list and only the last few history lines, and answers with structured output:
a forced tool call of the :class:`MessageReading` schema
(``with_structured_output``), e.g.::

    {"intent": "book", "service": "whitening", "date": "friday", "time": "10am",
     "appointment": null, "answer": null}

Models without tool calling (``bind_tools`` not implemented) are asked for the
same JSON object in text; a reply that is plain text is taken as a
``fallback`` answer (small local models often ignore the JSON request), and a
message carrying tool calls is read from its first call's arguments.

``answer`` is set only for ``fallback`` and must be grounded in the business
file: an answer naming a price, time or service the file does not hold is
discarded (:mod:`bot.nlu.grounding`). The model never decides an opt-out:
``opt_out`` / ``opt_in`` are not offered to it, and are refused if returned.
A hard timeout, an error or malformed output yields ``None`` (the caller then
answers its offline fallback).

Example::

    step = ModelStep(init_chat_model("openai:gpt-4o-mini"), templates, business, timeout=8)
    decision = await step.decide("do you do braces?", history=[], intents=catalog.names)
    decision.intent, decision.answer   # ("fallback", "Sorry, we don't offer braces ...")
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import Runnable
from pydantic import BaseModel, Field

from bot.business import Business
from bot.errors import ConfigError
from bot.nlu.grounding import GroundedFacts, grounded_facts, ungrounded
from bot.nlu.slots import Slots, extract_slots
from bot.nlu.understand import Understanding
from bot.settings import Settings
from bot.storage.base import HistoryEntry
from bot.templates import ReplyTemplates

log = logging.getLogger("bot.nlu.model")

# The model never sees more than this much of the conversation.
HISTORY_LINES = 6
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.IGNORECASE)


#: Intents the model is never offered nor allowed to return: consent is decided by rules only.
NEVER_FROM_MODEL = frozenset({"opt_out", "opt_in"})


class MessageReading(BaseModel):
    """Read one customer message: its intent, the details it gives, and an answer when out of scope."""

    intent: str = Field(description="one of the intents listed in the instructions")
    service: str | None = Field(default=None, description="the service named, as written")
    date: str | None = Field(default=None, description="the day named, as written (e.g. 'next friday')")
    time: str | None = Field(default=None, description="the time named, as written (e.g. '3pm')")
    appointment: str | None = Field(
        default=None, description="which existing appointment the message means, as written ('the friday one')"
    )
    answer: str | None = Field(default=None, description="only for fallback: a short answer from the facts")


@dataclass(frozen=True, slots=True)
class ModelDecision:
    intent: str
    service: str | None = None
    date: str | None = None
    time: str | None = None
    answer: str | None = None
    appointment: str | None = None


class ModelStep:
    """Asks the chat model to classify (and, out of scope, answer) one message."""

    def __init__(
        self,
        model: BaseChatModel,
        templates: ReplyTemplates,
        business: Business,
        *,
        timeout: float,
        metrics: Any = None,
    ) -> None:
        self.model = model
        self.templates = templates
        self.business = business
        self.timeout = timeout
        self.calls = 0
        self.structured = _structured(model)

    async def decide(
        self,
        text: str,
        *,
        history: Sequence[HistoryEntry],
        intents: Sequence[str],
        facts: Sequence[tuple[str, str]] = (),
        language: str = "English",
    ) -> ModelDecision | None:
        """The model's verdict, or None on timeout, error or malformed output.

        ``facts`` are (question, answer) pairs from the business's FAQ: the
        model's grounding, and the only prices and times beyond the business
        data an answer may name. ``language``: the conversation's (its name, "English",
        "Español"); the model's answer is written in it.
        """
        self.calls += 1
        offered = [name for name in intents if name not in NEVER_FROM_MODEL]
        system = self.templates.render_prompt(
            "decide", business=self.business, intents=offered,
            services=list(self.business.services.values()),
            hours=self.business.opening_hours_text(),
            faq=list(facts), language=language,
        )
        recent = "\n".join(f"{h.role}: {h.text}" for h in list(history)[-HISTORY_LINES:])
        human = f"Recent conversation:\n{recent or '(none)'}\n\nNew message: {text}"
        messages = [SystemMessage(system), HumanMessage(human)]
        try:
            if self.structured is not None:
                out = await asyncio.wait_for(self.structured.ainvoke(messages), self.timeout)
                decision = _from_structured(out, offered)
            else:
                result = await asyncio.wait_for(self.model.ainvoke(messages), self.timeout)
                decision = _from_message(result, offered)
        except TimeoutError:
            log.warning("model timed out", extra={"fields": {"timeout": self.timeout}})
            return None
        except Exception as exc:  # any provider error: fall back, never crash the turn
            log.warning("model failed", extra={"fields": {"error": type(exc).__name__}})
            return None
        return self._grounded(decision, facts)

    def _grounded(self, decision: ModelDecision | None, facts: Sequence[tuple[str, str]]) -> ModelDecision | None:
        """``decision`` without an answer that names a price, time or service not in the business file."""
        if decision is None or not decision.answer:
            return decision
        known: GroundedFacts = grounded_facts(self.business, [answer for _, answer in facts])
        claims = ungrounded(decision.answer, known)
        if claims:
            log.warning("model answer discarded: not in the business data", extra={"fields": {"claims": claims}})
            return replace(decision, answer=None)
        return decision


def _structured(model: BaseChatModel) -> Runnable[Any, Any] | None:
    """``model`` bound to :class:`MessageReading` as a forced tool call, or None without tool calling."""
    bind = getattr(model, "with_structured_output", None)
    if bind is None:
        return None
    try:
        structured: Runnable[Any, Any] = bind(MessageReading, include_raw=True)
    except NotImplementedError:  # no tool calling (LangChain's fake models, some local ones)
        return None
    return structured


def _from_structured(out: Any, intents: Sequence[str]) -> ModelDecision | None:
    """The decision from ``with_structured_output(..., include_raw=True)``'s result."""
    parsed = out.get("parsed") if isinstance(out, Mapping) else out
    if isinstance(parsed, MessageReading):
        return _decision(parsed.model_dump(), intents)
    raw = out.get("raw") if isinstance(out, Mapping) else None
    return _from_message(raw, intents) if isinstance(raw, BaseMessage) else None


def _from_message(message: BaseMessage, intents: Sequence[str]) -> ModelDecision | None:
    """A plain chat answer: its first tool call's arguments, else its text (JSON or a plain answer)."""
    calls = message.tool_calls if isinstance(message, AIMessage) else []
    if calls:
        return _decision(dict(calls[0].get("args") or {}), intents)
    content = message.content if isinstance(message.content, str) else json.dumps(message.content)
    return parse_decision(content, intents)


def parse_decision(content: str, intents: Sequence[str]) -> ModelDecision | None:
    """Parse the model's answer; None when it is malformed.

    >>> parse_decision('{"intent": "hours"}', ["hours", "fallback"]).intent
    'hours'
    >>> parse_decision("We open at 8am.", ["fallback"]).answer
    'We open at 8am.'
    >>> parse_decision('{"intent": ', ["fallback"]) is None
    True
    """
    text = _FENCE.sub("", content.strip()).strip()
    if not text:
        return None
    if not text.startswith("{"):
        return ModelDecision(intent="fallback", answer=text)
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        log.warning("model output is not valid JSON")
        return None
    if not isinstance(data, dict):
        log.warning("model output has no known intent")
        return None
    return _decision(data, intents)


def _decision(data: Mapping[str, Any], intents: Sequence[str]) -> ModelDecision | None:
    """A decision from the model's fields; None when the intent is unknown or not the model's to decide."""
    intent = data.get("intent")
    if intent not in intents or intent in NEVER_FROM_MODEL:
        log.warning("model output has no known intent")
        return None

    def field(name: str) -> str | None:
        value = data.get(name)
        return value.strip() if isinstance(value, str) and value.strip() else None

    return ModelDecision(
        intent=str(intent), service=field("service"), date=field("date"),
        time=field("time"), answer=field("answer"), appointment=field("appointment"),
    )


def build_chat_model(settings: Settings) -> BaseChatModel | None:
    """The model named by ``LLM_MODEL`` (``provider:model``), or None when unset."""
    if not settings.llm_model:
        return None
    from langchain.chat_models import init_chat_model

    kwargs: dict[str, Any] = {"timeout": settings.llm_timeout_seconds, "max_retries": 0}
    if settings.llm_base_url:
        kwargs["base_url"] = settings.llm_base_url
    if settings.llm_api_key:
        kwargs["api_key"] = settings.llm_api_key.get_secret_value()
    try:
        model: BaseChatModel = init_chat_model(settings.llm_model, **kwargs)
    except (ImportError, ValueError) as exc:
        raise ConfigError(
            f"LLM_MODEL={settings.llm_model!r} cannot be loaded: {exc} "
            "(install the provider package, e.g. pip install langchain-openai)"
        ) from exc
    return model


def with_model_slots(
    understanding: Understanding, decision: ModelDecision, *, now: datetime, business: Business
) -> Understanding:
    """``understanding`` with the slots the model read filled in where the rules found none.

    The model copies what the customer wrote ("tomorrow", "3pm"); those
    words go through the same slot extraction as any message, so the flow
    still checks and confirms them. Which appointment it names ("the cleaning
    one") is kept as the ``appointment`` entity.
    """
    said = " ".join(
        part for part in (decision.service, decision.date, f"at {decision.time}" if decision.time else None) if part
    )
    if decision.appointment:
        entities = {**understanding.entities, "appointment": decision.appointment}
        understanding = replace(understanding, entities=MappingProxyType(entities))
    if not said:
        return understanding
    found = extract_slots(said, now=now, business=business)
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
    entities = {**merged.as_entities(), **({"appointment": decision.appointment} if decision.appointment else {})}
    return replace(understanding, slots=merged, entities=MappingProxyType(entities))
