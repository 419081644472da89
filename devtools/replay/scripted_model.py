"""A scripted LangChain chat model: the ``llm:`` list of a transcript, in order.

Replay never calls a real model. When a transcript has ``llm:``, the runner
hands the app a :class:`ScriptedChatModel` (through ``create_app(chat_model=)``)
that answers each call with the next scripted output and records every call,
so a report can show what the bot asked. Asking for more outputs than were
scripted raises :class:`ModelScriptExhausted` ("model script ran out after N
responses") and marks the script as overrun, so the runner reports it even
when the bot catches the error and falls back.

Structured output works too: ``with_structured_output(Schema)`` binds the
schema as a forced tool call (LangChain's default implementation), and the
model answers that call with the scripted entry parsed as a JSON object. In a
transcript, write such an entry as a JSON string::

    llm:
      - "We open at 8am on weekdays."           # plain answer: the content
      - '{"intent": "hours", "confidence": 0.9}' # parsed by with_structured_output

From Python, an entry may also be a mapping; it is used as JSON (content is
``json.dumps(entry)``, tool-call arguments are the mapping itself).

Example::

    model = ScriptedChatModel.from_outputs(["Hello!", {"intent": "greet"}])
    (await model.ainvoke("hi")).content                               # 'Hello!'
    await model.with_structured_output(Intent).ainvoke("hi")          # Intent(intent='greet')
    await model.ainvoke("more?")   # ModelScriptExhausted: model script ran out after 2 responses
    [call.messages[-1].content for call in model.script.calls]        # ['hi', 'hi', 'more?']
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import PrivateAttr

from bot.errors import BotError

__all__ = ["ModelCall", "ModelScript", "ModelScriptError", "ModelScriptExhausted", "ScriptEntry", "ScriptedChatModel"]

ScriptEntry: TypeAlias = str | Mapping[str, Any]


class ModelScriptError(BotError):
    """The bot's use of the scripted model does not fit the script."""


class ModelScriptExhausted(ModelScriptError):
    """The bot asked the model for more outputs than the transcript scripted.

    >>> str(ModelScriptExhausted(2))
    'model script ran out after 2 responses'
    """

    def __init__(self, given: int) -> None:
        noun = "response" if given == 1 else "responses"
        super().__init__(f"model script ran out after {given} {noun}")
        self.given = given


@dataclass(frozen=True, slots=True)
class ModelCall:
    """One call the bot made to the model: what it sent and what it got.

    ``response`` is the scripted entry's text (None when the script had run
    out or the entry did not fit); ``tools`` names the tools bound to the call
    (a structured-output schema shows up as one tool); ``error`` is the
    script error raised, if any.

    Example::

        call = model.script.calls[0]
        call.messages[-1].content, call.response   # ('when do you open?', 'We open at 8am.')
    """

    index: int
    messages: tuple[BaseMessage, ...]
    response: str | None
    tools: tuple[str, ...] = ()
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: messages as ``{"role", "content"}`` pairs."""
        return {
            "index": self.index,
            "messages": [{"role": m.type, "content": m.content} for m in self.messages],
            "response": self.response,
            "tools": list(self.tools),
            "error": self.error,
        }


@dataclass(slots=True)
class ModelScript:
    """The outputs to give, in order, and every call made so far.

    Kept apart from the model object so the runner can swap scripts (one per
    conversation) and read the calls a step made (``calls[start:]``).

    Example::

        script = ModelScript.of(["We open at 8."])
        script.next([HumanMessage("hours?")], tools=())   # ('We open at 8.', None)
        script.overrun                                    # 0
    """

    outputs: tuple[ScriptEntry, ...] = ()
    calls: list[ModelCall] = field(default_factory=list)
    # Calls beyond the script; > 0 means the transcript needs more llm: entries.
    overrun: int = 0
    errors: list[str] = field(default_factory=list)
    _position: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def of(cls, outputs: Sequence[ScriptEntry]) -> ModelScript:
        """A fresh script over ``outputs``."""
        return cls(outputs=tuple(outputs))

    @property
    def used(self) -> int:
        """How many outputs were given out."""
        return self._position

    def next(self, messages: Sequence[BaseMessage], tools: Sequence[str]) -> ScriptEntry:
        """The next output for a call with ``messages``; records the call.

        Raises :class:`ModelScriptExhausted` once every output was given.
        """
        with self._lock:  # sync invocations may run in executor threads
            index = len(self.calls)
            if self._position >= len(self.outputs):
                self.overrun += 1
                error = ModelScriptExhausted(len(self.outputs))
                self.errors.append(str(error))
                self.calls.append(ModelCall(index, tuple(messages), None, tuple(tools), str(error)))
                raise error
            entry = self.outputs[self._position]
            self._position += 1
            self.calls.append(ModelCall(index, tuple(messages), _text(entry), tuple(tools)))
            return entry

    def fail_last(self, error: ModelScriptError) -> None:
        """Mark the last call as unanswerable (the entry did not fit the call)."""
        with self._lock:
            self.errors.append(str(error))
            if self.calls:
                last = self.calls[-1]
                self.calls[-1] = ModelCall(last.index, last.messages, None, last.tools, str(error))


class ScriptedChatModel(BaseChatModel):
    """A chat model that answers from a :class:`ModelScript` and records each call.

    Subclasses may override :meth:`active_script` to pick the script per call
    (the replay runner does, to share one bot between conversations).

    Example::

        model = ScriptedChatModel.from_outputs(["We open at 8am on weekdays."])
        reply = await model.ainvoke("when do you open?")
        reply.content         # 'We open at 8am on weekdays.'
        model.script.calls[0].messages[-1].content   # 'when do you open?'
    """

    _script: ModelScript = PrivateAttr(default_factory=ModelScript)

    @classmethod
    def from_outputs(cls, outputs: Sequence[ScriptEntry]) -> ScriptedChatModel:
        """A model over a fresh script of ``outputs``."""
        return cls.from_script(ModelScript.of(outputs))

    @classmethod
    def from_script(cls, script: ModelScript) -> ScriptedChatModel:
        """A model answering from ``script`` (shared with whoever reads its calls)."""
        model = cls()
        model._script = script
        return model

    @property
    def script(self) -> ModelScript:
        """The script this model answers from (see :meth:`active_script`)."""
        return self.active_script()

    def active_script(self) -> ModelScript:
        """The script for the current call; by default the model's own."""
        return self._script

    @property
    def _llm_type(self) -> str:
        return "scripted-replay"

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools like a real provider (OpenAI format); enables ``with_structured_output``."""
        formatted = [convert_to_openai_tool(tool) for tool in tools]
        return self.bind(tools=formatted, tool_choice=tool_choice, **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._answer(messages, kwargs)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        # Natively async: no executor thread, so context variables stay put.
        return self._answer(messages, kwargs)

    def _answer(self, messages: list[BaseMessage], kwargs: Mapping[str, Any]) -> ChatResult:
        tools: list[dict[str, Any]] = list(kwargs.get("tools") or [])
        names = [str(tool.get("function", {}).get("name", "")) for tool in tools]
        script = self.active_script()
        entry = script.next(messages, names)
        try:
            message = _message(
                entry, tools, names, kwargs.get("tool_choice"), call=len(script.calls), number=script.used
            )
        except ModelScriptError as exc:
            script.fail_last(exc)
            raise
        return ChatResult(generations=[ChatGeneration(message=message)])


def _text(entry: ScriptEntry) -> str:
    return entry if isinstance(entry, str) else json.dumps(dict(entry), ensure_ascii=False)


def _message(
    entry: ScriptEntry, tools: list[dict[str, Any]], names: list[str], tool_choice: Any, *, call: int, number: int
) -> AIMessage:
    """The AI message for one scripted entry: content, or a tool call when tools are forced."""
    text = _text(entry)
    forced = bool(tools) and tool_choice not in (None, "auto", "none")
    obj = _json_object(entry)
    if not tools or (obj is None and not forced):
        return AIMessage(content=text)
    if obj is None:
        raise ModelScriptError(
            f"model call {call} asked for structured output ({', '.join(names)}), but script entry "
            f"{number} is not a JSON object: {json.dumps(text, ensure_ascii=False)}; "
            """write it as a JSON string, e.g. '{"intent": "hours"}'"""
        )
    name, args = names[0], obj
    if len(names) > 1:
        # Several tools: the entry says which, as {"name": ..., "args": {...}}.
        chosen = obj.get("name")
        if chosen not in names or not isinstance(obj.get("args"), dict):
            raise ModelScriptError(
                f"model call {call} offered several tools ({', '.join(names)}); script entry "
                f'{number} must name one, e.g. {{"name": "{names[0]}", "args": {{...}}}}'
            )
        name, args = str(chosen), obj["args"]
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": f"call_{call}"}])


def _json_object(entry: ScriptEntry) -> dict[str, Any] | None:
    if not isinstance(entry, str):
        return dict(entry)
    stripped = entry.strip()
    if not stripped.startswith("{"):
        return None
    try:
        value = json.loads(stripped)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
