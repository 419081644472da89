"""Which language a short text is in, or "not sure".

py3langid (a maintained fork of langid.py: naive Bayes over byte n-grams,
4.5 MB with its model, about 25 microseconds a message) restricted to the
business's languages. It was chosen by measurement on our own utterances
(the English and Spanish held-out sets, docs/languages.md): accuracy 95.6%
for py3langid, 97.4% lingua (but 0.8 ms a message and 96 MB), 93.3%
fastText lite, 92.2% langid, 75.6% langdetect. With the floor below
(confidence 0.9 and two words of letters) it was never wrong on those 386
lines and abstained on 18% of them (mostly one-word answers), which keep
the conversation's language.

The floor is what keeps "ok", "gracias", "si" or a name ("Carlos
Rodriguez") from flipping a conversation: a single word never counts, and
two words count only when the model is sure.

Example::

    detector = LanguageDetector(("en", "es"))
    detector.detect("hola, quiero una cita")   # 'es'
    detector.detect("gracias")                 # None: one word decides nothing
    detector.detect("can i book a cleaning")   # 'en'
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Final

from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

from bot.languages.profile import fold_accents
from bot.memo import memo

#: Below this (normalised) probability the detector says nothing.
CONFIDENCE_FLOOR: Final = 0.9
#: Fewer words of letters than this decide nothing ("ok", "gracias", "Ana").
MIN_WORDS: Final = 2
_WORD = re.compile(r"[^\W\d_]{2,}")


def distinct_words(theirs: Iterable[str], ours: Iterable[str]) -> frozenset[str]:
    """Words (lower case, no accents) of ``theirs`` that ``ours`` never uses: another language's markers.

    Built from the business's own data (another language's intent examples,
    FAQ questions and service names, minus the English ones), so it grows
    with the data, never by hand.

    >>> sorted(distinct_words(["quiero una cita"], ["i want a cita"]))
    ['quiero', 'una']
    """
    mine = {w for text in ours for w in _WORD.findall(fold_accents(text))}
    return frozenset(w for text in theirs for w in _WORD.findall(fold_accents(text)) if w not in mine)


class LanguageDetector:
    """py3langid over ``languages`` with a confidence floor; None when not sure.

    ``markers``: words only the other languages use (:func:`distinct_words`).
    With them, a message in the default language is only run through the
    model when it holds one (:meth:`may_be_other`): 220 of the 221 English
    held-out lines skip it, and all Spanish lines of two words or more pass.
    """

    def __init__(
        self,
        languages: Sequence[str],
        *,
        floor: float = CONFIDENCE_FLOOR,
        min_words: int = MIN_WORDS,
        markers: frozenset[str] | None = None,
    ) -> None:
        self.languages = tuple(languages)
        self.floor = floor
        self.min_words = min_words
        self.markers = markers
        # Loading the model takes ~0.2 s: once per process and language set.
        self._identifier: LanguageIdentifier = memo(("langid", self.languages), self._load)

    def _load(self) -> LanguageIdentifier:
        identifier = LanguageIdentifier.from_modelpath(MODEL_DIR / MODEL_FILE, norm_probs=True)
        identifier.set_languages(list(self.languages))
        return identifier

    def may_be_other(self, text: str) -> bool:
        """Whether ``text`` could be in another language than the default: cheap, before :meth:`detect`.

        >>> LanguageDetector(("en", "es"), markers=frozenset({"cita"})).may_be_other("can i book")
        False
        """
        if self.markers is None:
            return True
        return any(word in self.markers for word in _WORD.findall(fold_accents(text)))

    def detect(self, text: str, *, floor: float | None = None) -> str | None:
        """The language of ``text`` when sure enough (``floor``, default :attr:`floor`), else None.

        >>> LanguageDetector(("en", "es")).detect("ok gracias") is None
        True
        """
        if len(self.languages) < 2 or len(_WORD.findall(text)) < self.min_words:
            return None
        language, confidence = self._identifier.classify(text)
        return str(language) if float(confidence) >= (self.floor if floor is None else floor) else None
