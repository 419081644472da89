"""Frequently asked questions from ``intents/business.yaml`` (``faq:``), answered offline.

Retrieval, not another classifier: the FAQ questions and the in-scope intent
examples of ``intents/intents.yaml`` share one TF-IDF space (character
n-grams, robust to typos, plus words). A message is an FAQ when its closest
FAQ question is similar enough (:data:`MIN_SCORE`) *and* closer than any
intent example: "can i book a checkup" stays ``book`` while "how long does a
checkup take" is the ``duration`` FAQ. Out-of-scope messages rarely reach the
minimum score (tests/bot/test_faq.py holds the held-out out-of-scope lines to it).

Each answer is a Jinja2 template from the business file, compiled once at
start-up, rendered with the business facts (see :class:`FaqBook.answer`).
The same rendered answers ground the model's prompt when one is configured.

Example::

    faq = FaqBook.build(business, catalog, templates)
    hit = faq.match("how long does a checkup take?")
    hit.key, round(hit.score, 2)          # ('duration', 0.8)
    faq.answer(hit, service=business.service("checkup"), now=now, reminder_lead_hours=24)
    # 'A checkup takes about 30 minutes. Want to book?'
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from scipy.sparse import hstack
from sklearn.feature_extraction.text import TfidfVectorizer

from bot.business import Business, Service
from bot.nlu.classifier import DomainVocabulary
from bot.nlu.intents import FALLBACK, IntentCatalog
from bot.nlu.text import prepare
from bot.opening import opening_status
from bot.templates import DataTemplate, ReplyTemplates

#: The least cosine similarity to an FAQ question that counts as asking it.
MIN_SCORE = 0.5
#: The least similarity for a message with words the domain does not know
#: ("how long does a root canal take to heal"): it must be nearly a listed question.
UNKNOWN_MIN_SCORE = 0.85
#: How many unknown words make a message "about something else" (as the classifier's check).
UNKNOWN_WORDS = 2
#: Texts whose scores are remembered per book (a few hundred bytes each).
MEMO_SIZE = 4096
#: How much closer than every intent example an FAQ question must be when the
#: classifier is sure the message is a request (a flow's intent).
REQUEST_MARGIN = 0.1
#: How much word n-grams count next to character n-grams: words carry the
#: difference between "how long" and "how much".
WORD_WEIGHT = 1.0


@dataclass(frozen=True, slots=True)
class FaqMatch:
    """The FAQ a message asks: its key, the closest question and the similarity (0..1)."""

    key: str
    question: str
    score: float
    rival: float  # the closest intent example's similarity


class FaqBook:
    """The business's FAQ: :meth:`match` finds the question asked, :meth:`answer` renders it."""

    def __init__(
        self,
        business: Business,
        answers: dict[str, DataTemplate],
        questions: list[tuple[str, str]],
        examples: list[str],
    ) -> None:
        self.business = business
        self._answers = answers
        self._questions = questions
        texts = [prepare(q) for _, q in questions] + [prepare(e) for e in examples]
        self._chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True)
        self._words = TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True)
        self._n_questions = len(questions)
        self._matrix = self._vectors(texts, fit=True) if texts else None
        self._vocabulary = DomainVocabulary([]).with_words([*texts, *_business_words(business)])
        self._memo: dict[str, tuple[int, float, float, int]] = {}

    @classmethod
    def build(cls, business: Business, catalog: IntentCatalog, templates: ReplyTemplates) -> FaqBook:
        """Compile every answer and index every question (start-up; a bad template fails here).

        Example::

            faq = FaqBook.build(business, load_intents(Path("intents/intents.yaml")), templates)
        """
        answers = {
            key: templates.compile_data(f"intents/business.yaml: faq.{key}.answer", entry.answer)
            for key, entry in business.faq.items()
        }
        questions = [(key, q) for key, entry in business.faq.items() for q in entry.questions]
        examples = [e for d in catalog if d.name != FALLBACK for e in d.examples]
        return cls(business, answers, questions, examples)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self._answers)

    def _vectors(self, texts: list[str], *, fit: bool = False) -> Any:
        if fit:
            chars = self._chars.fit_transform(texts)
            words = self._words.fit_transform(texts)
        else:
            chars = self._chars.transform(texts)
            words = self._words.transform(texts)
        joined = hstack([chars, words * WORD_WEIGHT]).tocsr()
        norms = np.sqrt(joined.multiply(joined).sum(axis=1)).A1
        norms[norms == 0] = 1.0
        return joined.multiply(1 / norms[:, None]).tocsr()

    def _scores(self, prepared: str) -> tuple[int, float, float, int]:
        """(best question, its similarity, the best intent example's, unknown words) for a prepared text.

        Memoised per book: vectorising costs milliseconds and the same short
        texts ("hi", "yes", "what are your hours") come again and again.
        """
        found = self._memo.get(prepared)
        if found is None:
            sims = (self._matrix @ self._vectors([prepared]).T).toarray().ravel()
            faq_sims, example_sims = sims[: self._n_questions], sims[self._n_questions :]
            best = int(np.argmax(faq_sims))
            rival = float(example_sims.max()) if example_sims.size else 0.0
            found = (best, float(faq_sims[best]), rival, len(self._vocabulary.unknown_words(prepared)))
            if len(self._memo) >= MEMO_SIZE:
                self._memo.pop(next(iter(self._memo)))  # the oldest first
            self._memo[prepared] = found
        return found

    def match(self, text: str, *, margin: float = 0.0) -> FaqMatch | None:
        """The FAQ ``text`` asks, or None (too far from every question, or closer to an intent).

        ``margin``: how much closer than every intent example the FAQ question
        must be (the brain asks for :data:`REQUEST_MARGIN` when the classifier
        is sure the message is a request: "book a whitening on saturday at 12"
        is not "are you open on saturday").

        >>> faq.match("r u open rn").key  # doctest: +SKIP
        'open_now'
        """
        prepared = prepare(text)
        if self._matrix is None or not self._n_questions or not prepared:
            return None
        best, score, rival, unknown = self._scores(prepared)
        floor = UNKNOWN_MIN_SCORE if unknown >= UNKNOWN_WORDS else MIN_SCORE
        # A tie goes to the FAQ: "are you open today" is both an hours example and an FAQ.
        if score < floor or score < rival + margin - 1e-9:
            return None
        key, question = self._questions[best]
        return FaqMatch(key, question, score, rival)

    def answer(
        self,
        match: FaqMatch | str,
        *,
        service: Service | None,
        now: datetime,
        reminder_lead_hours: float,
        in_flow: bool = False,
    ) -> str:
        """The answer of ``match`` (or an FAQ key), rendered with the business facts at ``now``.

        ``in_flow``: asked in the middle of a flow, so the answer need not
        offer to book (the flow's own question follows).
        """
        key = match if isinstance(match, str) else match.key
        facts = self.facts(now, reminder_lead_hours=reminder_lead_hours)
        return self._answers[key].render(**facts, service=service, in_flow=in_flow)

    def facts(self, now: datetime, *, reminder_lead_hours: float) -> dict[str, Any]:
        """The values FAQ answers are rendered with (also the model's grounding)."""
        business = self.business
        lead = int(reminder_lead_hours) if float(reminder_lead_hours).is_integer() else reminder_lead_hours
        return {
            "business": business,
            "services": list(business.services.values()),
            "hours": business.opening_hours_text(),
            "opening": opening_status(business, now),
            "reminder_lead_hours": lead,
        }

    def grounding(self, now: datetime, *, reminder_lead_hours: float) -> list[tuple[str, str]]:
        """Every FAQ as (first question, answer with no service named): facts for the model prompt."""
        return [
            (self.business.faq[key].questions[0], self.answer(key, service=None, now=now,
                                                              reminder_lead_hours=reminder_lead_hours))
            for key in self._answers
        ]


def _business_words(business: Business) -> list[str]:
    names = [name for service in business.services.values() for name in service.names]
    return [business.name, business.address, *names]
