"""Reading a message as an answer to an appointment reminder: confirm, reschedule or cancel.

The ways people answer are data (``intents/reminder_replies.yaml``): "C",
"yes", "👍", "I'll be there", "ill b there" confirm; "R", "can we move it"
reschedule; "can't make it", "cancel it" cancel. The Brain reads a message
against them only when the texter has an upcoming appointment that was
reminded (:mod:`bot.confirmations.answers`), so "C" is never a goodbye there,
and a reminder answer is never an opt-out (compliance runs first and knows
only its own words).

Another language answers in its own words, in the same shape beside the
English file (``intents/es/reminder_replies.yaml``: "si", "confirmo", "ahí
estaré", "no puedo ir", "cancélala", "mejor el jueves"): a conversation in
that language reads its words first, then the English ones ("C", "ok", "👍"),
lower case and without accents like all Spanish data. A language without
its own file reads the English words.

Example::

    replies = load_reminder_replies(Path("intents/reminder_replies.yaml"))
    replies.read("ill b there!!")     # "confirm"
    replies.read("cant make it sorry")  # "cancel"
    replies.read("what time is it")   # None
    replies.speaking("es").read("Sí, ahí estaré!!")   # "confirm"
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.languages.profile import DEFAULT_LANGUAGE, PROFILES, LanguageProfile, fold_accents
from bot.nlu.patterns import check_patterns, load_pattern_file

ReminderAnswer = Literal["confirm", "reschedule", "cancel"]
#: The order answers are tried in.
ANSWERS: Final[tuple[ReminderAnswer, ...]] = ("confirm", "reschedule", "cancel")
#: Bare one-letter codes the reminder names ("Reply C to confirm, R to reschedule").
CODES: Final = frozenset({"c", "r"})

_TRAILING = re.compile(r"[\s.!?,:;~]+$")
_SPACES = re.compile(r"\s+")
# A message's parts: "sorry just saw this. I'll be there 👍" is two.
_PARTS = re.compile(r"(?<=[.!?,;\n])\s*")
_EMOJI_END = re.compile(r"(?<=\w)\s*[\U0001F300-\U0001FAFF\u2600-\u27BF]+$")
_QUESTION = re.compile(
    r"^(also |and |but |oh |btw )?(what|whats|when|where|how|do|does|are|is|can|could|will|which|who)\b")
#: A part that is no answer may stand beside one ("sorry just saw this") when it is this short and asks nothing.
FILLER_WORDS: Final = 6
#: When parts say different things, the one that changes the visit wins: "ok but can't make it" cancels.
_PRIORITY: Final[tuple[ReminderAnswer, ...]] = ("cancel", "reschedule", "confirm")


def normalise(text: str) -> str:
    """Lower case, straight quotes, single spaces, no trailing punctuation.

    >>> normalise("  I’ll  be there!! ")
    "i'll be there"
    """
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\ufe0f", "").lower()
    return _TRAILING.sub("", _SPACES.sub(" ", text.strip()))


class _RepliesFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1] = 1
    confirm: list[str] = Field(min_length=1)
    reschedule: list[str] = Field(min_length=1)
    cancel: list[str] = Field(min_length=1)

    _check = field_validator("confirm", "reschedule", "cancel")(classmethod(lambda cls, v: check_patterns(v)))


class ReminderReplies:
    """The compiled answers; :meth:`read` says which one a message is, :meth:`speaking` in which language.

    ``profile`` is the language of ``data`` (one other than English: read
    without accents, its own question words too); ``then`` the answers
    read after its own (the English ones).
    """

    def __init__(self, data: _RepliesFile, *, profile: LanguageProfile | None = None,
                 then: ReminderReplies | None = None) -> None:
        own = {name: [re.compile(p) for p in getattr(data, name)] for name in ANSWERS}
        after: dict[ReminderAnswer, list[re.Pattern[str]]] = dict(then._answers) if then is not None else {}
        self._answers: list[tuple[ReminderAnswer, list[re.Pattern[str]]]] = [
            (name, [*own[name], *after.get(name, ())]) for name in ANSWERS]
        self._profile = profile
        self._languages: dict[str, ReminderReplies] = {}

    def speaking(self, code: str) -> ReminderReplies:
        """The answers read in a conversation in language ``code`` (these, when it has no file of its own)."""
        return self._languages.get(code, self)

    def _said(self, text: str) -> str:
        said = normalise(text)
        # "¿La puedo cambiar?", "Sí, ahí estaré": the language's patterns are written without accents.
        return said if self._profile is None else fold_accents(said).lstrip("¿¡ ")

    def _asks(self, part: str) -> bool:
        said = self._said(part)
        return _QUESTION.match(said) is not None or (self._profile is not None and self._profile.is_question(said))

    def read(self, text: str) -> ReminderAnswer | None:
        """``confirm``, ``reschedule`` or ``cancel`` when the message is that answer, else None.

        The whole message, or its parts (split at . ! ? , ;): each part is
        an answer or a short filler that asks nothing ("sorry just saw
        this"); parts that say different things: cancel, then reschedule win.
        """
        found = self._read_part(text)
        if found is not None:
            return found
        kinds: set[ReminderAnswer] = set()
        for part in filter(None, (p.strip() for p in _PARTS.split(text))):
            kind = self._read_part(part)
            if kind is not None:
                kinds.add(kind)
            elif "?" in part or len(part.split()) > FILLER_WORDS or self._asks(part):
                return None
        return next((k for k in _PRIORITY if k in kinds), None)

    def _read_part(self, text: str) -> ReminderAnswer | None:
        said = self._said(text)
        said = _EMOJI_END.sub("", said) or said
        if not said:
            return None
        for name, patterns in self._answers:
            if any(p.search(said) for p in patterns):
                return name
        return None

    @staticmethod
    def is_code(text: str) -> bool:
        """Whether the message is a bare code of the reminder ("C", "r.")."""
        return normalise(text) in CODES


def load_reminder_replies(path: Path) -> ReminderReplies:
    """Load ``intents/reminder_replies.yaml`` and each language's twin (``intents/es/reminder_replies.yaml``).

    A bad file is a ConfigError naming the file and the field; a language without a twin reads the English words.
    """
    english = ReminderReplies(load_pattern_file(path, _RepliesFile))
    for code, profile in PROFILES.items():
        twin = path.parent / code / path.name  # where every language's data lives: intents/<code>/
        if code != DEFAULT_LANGUAGE and twin.is_file():
            english._languages[code] = ReminderReplies(load_pattern_file(twin, _RepliesFile), profile=profile,
                                                       then=english)
    return english
