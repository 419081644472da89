"""The conversation's language: chosen from what the texter writes, kept in its state.

Per message, in this order:

1. asked for: "english please", "en español" (:meth:`LanguageProfile.asked_for`);
2. an opener: a NEW conversation that starts with "hola" or "buenas" alone
   (:mod:`bot.languages.openers`; one word never switches a conversation);
3. detected, when the detector is sure (:mod:`bot.languages.detect`): a
   conversation with no language yet needs confidence 0.8, switching an
   established one 0.9; one word never decides;
4. kept: the language the conversation already has (``state.data["language"]``);
5. the number's default (``language_numbers`` in ``business.yaml``: a
   WhatsApp or voice number for Spanish speakers starts in Spanish);
6. the business's first language.

Only a business with more than one language pays for detection; the kept
language is written to the state only when it is not the default, so an
English conversation's state is unchanged.

Example::

    languages = Languages(("en", "es"), detector=LanguageDetector(("en", "es")))
    choice = languages.choose(msg, state)     # "hola, quiero una cita"
    choice.code, choice.asked                 # ('es', False)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from bot.languages.detect import LanguageDetector
from bot.languages.openers import Openers
from bot.languages.profile import LanguageProfile, profile_for
from bot.messages import InboundMessage
from bot.storage.base import ConversationState

#: Where the conversation's language lives (it survives an opt-out: bot/compliance).
STATE_KEY: Final = "language"
#: How sure the detector must be to set the language of a conversation that has none.
FIRST_FLOOR: Final = 0.8


@dataclass(frozen=True, slots=True)
class LanguageChoice:
    """The language of this turn; ``asked`` when the message asked for it ("en español")."""

    code: str
    asked: bool = False
    changed: bool = False


def _no_numbers() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True)
class Languages:
    """The business's languages (first = default) and how a conversation's is chosen."""

    codes: tuple[str, ...]
    detector: LanguageDetector | None = None
    # Bot number (E.164, no channel prefix) -> the language its conversations start in.
    by_number: Mapping[str, str] = field(default_factory=_no_numbers)
    # "hola", "buenas": short first messages that can only be one language (intents/<code>/openers.yaml).
    openers: Openers = field(default_factory=Openers)

    @property
    def default(self) -> str:
        return self.codes[0]

    @property
    def profiles(self) -> tuple[LanguageProfile, ...]:
        return tuple(profile_for(code) for code in self.codes)

    def kept(self, msg: InboundMessage, state: ConversationState) -> str:
        """The conversation's language before this message: kept, the number's, or the default."""
        return self.between_turns(msg.bot, state)

    def between_turns(self, bot: str, state: ConversationState | None) -> str:
        """The language of the conversation with bot number ``bot`` (its ``state``, None when it has none)
        when no message is being answered: what a reminder speaks (:mod:`bot.languages.recipients`)."""
        kept = state.data.get(STATE_KEY) if state is not None else None
        if isinstance(kept, str) and kept in self.codes:
            return kept
        return self.by_number.get(bot, self.default)

    def keep(self, msg: InboundMessage, state: ConversationState, language: str | None) -> str:
        """The conversation's language; on its first message, ``language`` (of words just recognised).

        Compliance answers in the conversation's language; a conversation that
        starts with a Spanish revocation ("ya no me manden mensajes") is a
        Spanish one, and keeps it.
        """
        code = language if _fresh(state) and language in self.codes else self.kept(msg, state)
        if code != self.default or STATE_KEY in state.data:
            state.data[STATE_KEY] = code
        return code

    def choose(self, msg: InboundMessage, state: ConversationState) -> LanguageChoice:
        """Choose this turn's language and keep it in ``state`` (see the module docstring)."""
        before = self.kept(msg, state)
        if len(self.codes) < 2:
            return LanguageChoice(before)
        text = "" if msg.button_payload else msg.body
        code, asked = before, False
        for profile in self.profiles:
            if text and profile.asked_for(text):  # a substring check first: cheap for every other message
                code, asked = profile.code, True
                break
        else:
            fresh = _fresh(state)
            opener = self.openers.language_of(text) if fresh else None
            if opener is not None and opener in self.codes:
                code = opener
            # In the default language, only a message with another language's words is worth detecting.
            elif text and self.detector is not None and (before != self.default or self.detector.may_be_other(text)):
                # The first message of a conversation has no language to flip.
                floor = min(FIRST_FLOOR, self.detector.floor) if fresh else self.detector.floor
                code = self.detector.detect(text, floor=floor) or before
        if code == self.default and STATE_KEY not in state.data and code == before:
            return LanguageChoice(code, asked)
        state.data[STATE_KEY] = code
        return LanguageChoice(code, asked, changed=code != before)



def _fresh(state: ConversationState) -> bool:
    """Whether this is the conversation's first message and it has no language yet."""
    return STATE_KEY not in state.data and state.turns <= 1
