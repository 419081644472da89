"""The model step with structured output: LangChain fake chat models and the scripted model.

Tool calling (``with_structured_output``) where the model has it (the scripted
model binds tools like a provider); the same JSON in text, or a message
carrying tool calls, where it does not (LangChain's fake chat models).
Answers are grounded in the business file; opt-outs are never the model's.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import (
    FakeMessagesListChatModel,
    GenericFakeChatModel,
)
from langchain_core.messages import AIMessage, BaseMessage

from bot.business import Business
from bot.faq import FaqBook
from bot.nlu.model import ModelStep
from bot.templates import ReplyTemplates
from devtools.replay.scripted_model import ScriptedChatModel

from .conftest import MONDAY_9AM

INTENTS = ("greet", "hours", "pricing", "book", "reschedule", "cancel", "opt_out", "opt_in", "fallback")


def step(model: Any, templates: ReplyTemplates, business: Business) -> ModelStep:
    return ModelStep(model, templates, business, timeout=5)


async def test_scripted_model_fills_slots_through_a_forced_tool_call(
    templates: ReplyTemplates, business: Business
) -> None:
    model = ScriptedChatModel.from_outputs(
        ['{"intent": "reschedule", "service": "cleaning", "date": "next friday", "time": "2pm",'
         ' "appointment": "the cleaning one"}']
    )
    decision = await step(model, templates, business).decide("mv my clning 2 nxt fri 2", history=[], intents=INTENTS)
    assert decision is not None
    assert (decision.intent, decision.service, decision.date, decision.time, decision.appointment) == (
        "reschedule", "cleaning", "next friday", "2pm", "the cleaning one"
    )
    [call] = model.script.calls
    assert call.tools == ("MessageReading",)  # structured output, not free text


async def test_a_message_with_tool_calls_is_read_from_its_arguments(
    templates: ReplyTemplates, business: Business
) -> None:
    # FakeMessagesListChatModel has no bind_tools: asked in text, it answers with a tool call.
    message = AIMessage(
        content="",
        tool_calls=[{"name": "MessageReading", "args": {"intent": "book", "service": "whitening", "date": "sat"},
                     "id": "call_1"}],
    )
    model = FakeMessagesListChatModel(responses=[message])
    decision = await step(model, templates, business).decide("pearly whites sat", history=[], intents=INTENTS)
    assert decision is not None and (decision.intent, decision.service, decision.date) == ("book", "whitening", "sat")


async def test_json_in_text_without_tool_calling(templates: ReplyTemplates, business: Business) -> None:
    model = GenericFakeChatModel(messages=iter([AIMessage(content='{"intent": "hours"}')]))
    decision = await step(model, templates, business).decide("zzqx opening thingy", history=[], intents=INTENTS)
    assert decision is not None and decision.intent == "hours"


async def test_a_grounded_answer_is_kept(templates: ReplyTemplates, business: Business, faq: FaqBook) -> None:
    model = ScriptedChatModel.from_outputs(
        ['{"intent": "fallback", "answer": "Yes, whitening is $350 and takes 90 minutes; we open at 8am."}']
    )
    facts = faq.grounding(MONDAY_9AM, reminder_lead_hours=24)
    decision = await step(model, templates, business).decide(
        "can teens get whitening", history=[], intents=INTENTS, facts=facts
    )
    assert decision is not None and decision.answer is not None and "$350" in decision.answer
    # The FAQ answers are the model's grounding: they are in its prompt.
    [call] = model.script.calls
    assert "Delta Dental" in str(call.messages[0].content)


@pytest.mark.parametrize(
    "answer",
    [
        "Braces start at $3,000.",  # a service not offered, and a price not in the file
        "A cleaning is $99 this week.",  # a price not in the file
        "We open at 7am on Sundays.",  # a time not in the file
        "A checkup takes 45 minutes.",  # a duration not in the file
        "Sure, we do root canal treatment.",  # a service not offered
    ],
)
async def test_an_ungrounded_answer_is_discarded(
    templates: ReplyTemplates, business: Business, faq: FaqBook, answer: str
) -> None:
    model = ScriptedChatModel.from_outputs([{"intent": "fallback", "answer": answer}])
    facts = faq.grounding(MONDAY_9AM, reminder_lead_hours=24)
    decision = await step(model, templates, business).decide("question", history=[], intents=INTENTS, facts=facts)
    assert decision is not None and decision.intent == "fallback" and decision.answer is None


@pytest.mark.parametrize("intent", ["opt_out", "opt_in"])
async def test_the_model_never_decides_consent(templates: ReplyTemplates, business: Business, intent: str) -> None:
    model = ScriptedChatModel.from_outputs([{"intent": intent}])
    decision = await step(model, templates, business).decide("ugh enough", history=[], intents=INTENTS)
    assert decision is None
    # ...and is not even offered those intents.
    prompt = str(model.script.calls[0].messages[0].content)
    assert "opt_out" not in prompt and "opt_in" not in prompt


async def test_a_plain_text_entry_for_structured_output_is_a_script_error(
    templates: ReplyTemplates, business: Business
) -> None:
    # The scripted model answers a forced tool call only with a JSON object: the bot falls back.
    model = ScriptedChatModel.from_outputs(["We open at 8am."])
    assert await step(model, templates, business).decide("hours?", history=[], intents=INTENTS) is None
    assert model.script.errors and "not a JSON object" in model.script.errors[0]


async def test_the_conversation_language_reaches_the_prompt(templates: ReplyTemplates, business: Business) -> None:
    class Prompts(BaseCallbackHandler):
        def __init__(self) -> None:
            self.seen: list[str] = []

        def on_chat_model_start(self, serialized: dict[str, Any], messages: list[list[BaseMessage]],
                                **kwargs: Any) -> None:
            self.seen.extend(str(m.content) for batch in messages for m in batch)

    prompts = Prompts()
    answer = '{"intent": "fallback", "answer": "Lo siento, no hacemos frenos."}'
    model = GenericFakeChatModel(messages=iter([AIMessage(content=answer)]), callbacks=[prompts])
    decision = await step(model, templates, business).decide(
        "hacen frenillos?", history=[], intents=["fallback", "book"], language="Español"
    )
    assert decision is not None and decision.answer == "Lo siento, no hacemos frenos."
    assert any('write "answer" in Español' in text for text in prompts.seen)
