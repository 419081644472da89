"""Step 5 of the pipeline: a LangChain chat model, only for what the rules
and the classifier could not resolve.

The model gets the business data, the intent list and only the last few
history lines, and must answer one JSON object::

    {"intent": "hours", "service": null, "date": null, "time": null, "answer": null}

``answer`` is set only for ``fallback`` and must come from the business data.
A hard timeout, an error or malformed output yields ``None`` (the caller then
answers its offline fallback). A reply that is plain text, not JSON, is taken
as a ``fallback`` answer: small local models often ignore the JSON request.

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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage

from bot.business import Business
from bot.errors import ConfigError
from bot.settings import Settings
from bot.storage.base import HistoryEntry
from bot.templates import ReplyTemplates

log = logging.getLogger("bot.nlu.model")

# The model never sees more than this much of the conversation.
HISTORY_LINES = 6
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ModelDecision:
    intent: str
    service: str | None = None
    date: str | None = None
    time: str | None = None
    answer: str | None = None


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

    async def decide(
        self, text: str, *, history: Sequence[HistoryEntry], intents: Sequence[str]
    ) -> ModelDecision | None:
        """The model's verdict, or None on timeout, error or malformed output."""
        self.calls += 1
        system = self.templates.render_prompt(
            "decide", business=self.business, intents=list(intents),
            services=list(self.business.services.values()),
            hours=self.business.opening_hours_text(),
        )
        recent = "\n".join(f"{h.role}: {h.text}" for h in list(history)[-HISTORY_LINES:])
        human = f"Recent conversation:\n{recent or '(none)'}\n\nNew message: {text}"
        try:
            result = await asyncio.wait_for(
                self.model.ainvoke([SystemMessage(system), HumanMessage(human)]), self.timeout
            )
        except TimeoutError:
            log.warning("model timed out", extra={"fields": {"timeout": self.timeout}})
            return None
        except Exception as exc:  # any provider error: fall back, never crash the turn
            log.warning("model failed", extra={"fields": {"error": type(exc).__name__}})
            return None
        content = result.content if isinstance(result.content, str) else json.dumps(result.content)
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
    if not isinstance(data, dict) or data.get("intent") not in intents:
        log.warning("model output has no known intent")
        return None

    def field(name: str) -> str | None:
        value = data.get(name)
        return value.strip() if isinstance(value, str) and value.strip() else None

    return ModelDecision(
        intent=str(data["intent"]), service=field("service"), date=field("date"),
        time=field("time"), answer=field("answer"),
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
