"""The local intent classifier, trained at start-up from the intent examples.

Model: TF-IDF over character n-grams (``char_wb`` 2-5, robust to typos and
SMS spelling) joined with word uni/bi-grams (word order: "cancel my booking"
vs "book"), fed to a multinomial logistic regression. Logistic regression was kept over
a calibrated LinearSVC: in cross-validation on the training examples both
scored within a point or two of each other, and logistic regression's
probabilities come straight from the model (no calibration folds carved out
of ~35 examples an intent) and its prediction is one dot product we can run
without scikit-learn's per-call overhead. Word n-grams count 0.3 next to the
character n-grams (:data:`WORD_WEIGHT`), and messages full of words the
domain does not know become ``fallback`` (:class:`DomainVocabulary`); both
were chosen by 5-fold cross-validation on the training examples, never on
the held-out set. ``python -m bench.classifier --cv`` re-runs the sweep of
the threshold and the unknown-words settings.

Why a hand-written predict: ``pipeline.predict_proba([text])`` costs about a
millisecond of input checks and sparse-matrix plumbing for one short string.
:meth:`IntentClassifier.predict` instead looks each n-gram up in the fitted
vocabularies, builds the same TF-IDF weights and multiplies by the fitted
coefficients: the same numbers (a test checks this against scikit-learn)
in about a tenth of a millisecond.

Training is deterministic (fixed ``random_state``, sorted inputs) and needs
no network.

Example::

    clf = IntentClassifier.train(load_intents(Path("intents/intents.yaml")))
    clf.predict("wat time do u close on sat")   # Prediction(intent="hours", confidence=0.8...)
    clf.predict("who won the game last night")  # Prediction(intent="fallback", ...)
"""

from __future__ import annotations

import copy
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

import numpy as np
from numpy.typing import NDArray
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

from bot.nlu.intents import FALLBACK, IntentCatalog
from bot.nlu.text import prepare

#: Defaults for the unknown-words check (see :class:`DomainVocabulary`).
UNKNOWN_WORDS = 2
UNKNOWN_WORDS_MAX_CONFIDENCE = 0.8

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
# Words of dates and times are in-domain even when no example uses them.
_CALENDAR = frozenset(
    {
        "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
        "mon", "tue", "tues", "wed", "weds", "thu", "thur", "thurs", "fri", "sat", "sun",
        "january", "february", "march", "april", "may", "june", "july", "august",
        "september", "october", "november", "december", "jan", "feb", "mar", "apr", "jun",
        "jul", "aug", "sep", "sept", "oct", "nov", "dec", "today", "tonight", "tomorrow",
        "yesterday", "morning", "afternoon", "evening", "noon", "midnight", "week", "weekend",
        "month", "day", "days", "am", "pm",
    }
)

#: How much the word n-grams count next to the character n-grams. Below 1
#: because with ~30 examples an intent a single word ("book", "cancel") would
#: otherwise outvote the rest of the message. In 5-fold cross-validation on
#: the training examples 0.3 scored best of 0.3, 0.5, 0.7 and 1.0 (1 to 10
#: points of accuracy at an out-of-scope recall of at least 85%).
WORD_WEIGHT = 0.3


#: Verdicts cached per classifier (oldest evicted first), for texts up to
#: CACHE_MAX_CHARS: short texts repeat, long ones rarely do.
CACHE_SIZE: Final = 4096
CACHE_MAX_CHARS: Final = 80


@dataclass(frozen=True, slots=True)
class Prediction:
    """The classifier's answer.

    ``intent`` is ``fallback`` when the best guess scored below the threshold;
    ``best`` is that best guess anyway (for logs, and for a model step that
    wants a hint), and ``ranked`` the top three ``(intent, probability)``.
    ``intent`` is also ``fallback`` when the text has several words the
    domain does not know and the confidence is not high (``unknown``).
    """

    intent: str
    confidence: float
    best: str = ""
    ranked: tuple[tuple[str, float], ...] = field(default=())
    # Words outside the domain vocabulary (only computed when they matter).
    unknown: tuple[str, ...] = ()

    @property
    def below_threshold(self) -> bool:
        """True when the classifier was not sure (the answer is a fallback)."""
        return self.intent == FALLBACK and self.best != FALLBACK


@dataclass(frozen=True, slots=True)
class _Block:
    """One fitted vectorizer, flattened for fast lookup."""

    analyzer: Callable[[str], list[str]]
    vocabulary: dict[str, int]
    idf: NDArray[np.float64]
    # coefficients for this block's features, shape (n_features, n_classes)
    coef: NDArray[np.float64]
    sublinear_tf: bool
    # FeatureUnion's transformer weight, applied after normalisation.
    weight: float


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


class DomainVocabulary:
    """The words the bot's domain uses, to spot messages about something else.

    Why: the classifier must pick *some* intent and is often confident about
    "what time does the post office close" (it looks like ``hours``). Such
    messages name things no example, service or calendar word does. In
    5-fold cross-validation on the training examples, 57% of out-of-scope
    messages had two or more such words and 1% of in-scope ones did, so two
    unknown words make a not-very-confident prediction ``fallback``.

    Stop words, words shorter than 3 letters and words one typo away
    (insert, delete, substitute or swap a letter; words of 4+ letters) from a
    known word count as known, so "apointment" or "clening" are not unknown.

    Example::

        vocab = DomainVocabulary(["cleaning", "appointment", "open"])
        vocab.unknown_words("is the post office open")   # ("post",)
    """

    def __init__(self, words: Iterable[str]) -> None:
        self._domain = frozenset(w for w in words if w)
        self._known = self._domain | ENGLISH_STOP_WORDS
        # Symmetric-delete index: two words are within one edit when they,
        # or their one-letter deletions, meet. Domain words only: "post" is
        # not a typo of the stop word "most".
        self._deletions = frozenset(
            d for word in self._domain if len(word) >= 4 for d in _deletions(word)
        )

    def with_words(self, words: Iterable[str]) -> DomainVocabulary:
        """A vocabulary knowing these words too (each text is split into words)."""
        extra = {w.replace("'", "") for text in words for w in _WORD.findall(prepare(text))}
        if extra <= self._domain:
            return self
        return DomainVocabulary(self._domain | extra)

    def knows(self, word: str) -> bool:
        """Whether ``word`` is a domain word, a stop word, short, or a near typo."""
        if len(word) < 3 or word in self._known:
            return True
        if len(word) < 4:
            return False
        if word in self._deletions:
            return True
        return any(d in self._domain or d in self._deletions for d in _deletions(word))

    def unknown_words(self, prepared: str) -> tuple[str, ...]:
        """The words of ``prepared`` text the domain does not know."""
        return tuple(w for w in _WORD.findall(prepared) if not self.knows(w.replace("'", "")))


def build_pipeline(
    *, c: float = 10.0, word_weight: float = WORD_WEIGHT, random_state: int = 0
) -> Pipeline:
    """The scikit-learn pipeline the classifier fits (exposed for benchmarks).

    Example::

        pipe = build_pipeline()
        pipe.fit([prepare(t) for t in texts], labels)
    """
    features = FeatureUnion(
        [
            (
                "char",
                TfidfVectorizer(
                    analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, lowercase=False
                ),
            ),
            (
                "word",
                TfidfVectorizer(
                    analyzer="word",
                    ngram_range=(1, 2),
                    sublinear_tf=True,
                    lowercase=False,
                    # Keep one-letter words ("i", "y", "n") and apostrophes.
                    token_pattern=r"(?u)[\w']+",  # noqa: S106 - a regex, not a secret
                ),
            ),
        ],
        transformer_weights={"char": 1.0, "word": word_weight},
    )
    model = LogisticRegression(C=c, max_iter=5000, random_state=random_state)
    return Pipeline([("features", features), ("model", model)])


def training_data(catalog: IntentCatalog) -> tuple[list[str], list[str]]:
    """Prepared example texts and their labels, in a stable order."""
    pairs = sorted((prepare(text), d.name) for d in catalog for text in d.examples)
    return [text for text, _ in pairs], [label for _, label in pairs]


class IntentClassifier:
    """A trained classifier; build it with :meth:`train`.

    Example::

        clf = IntentClassifier.train(catalog, threshold=0.45)
        pred = clf.predict("hw much 4 whitening")
        pred.intent, round(pred.confidence, 2)   # ("pricing", 0.7)
    """

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        threshold: float,
        fallback: str = FALLBACK,
        vocabulary: DomainVocabulary | None = None,
        unknown_words: int = UNKNOWN_WORDS,
        unknown_words_max_confidence: float = UNKNOWN_WORDS_MAX_CONFIDENCE,
    ) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError("threshold must be within [0, 1]")
        # Without a vocabulary the unknown-words check is off.
        self.vocabulary = vocabulary
        self.unknown_words = unknown_words
        self.unknown_words_max_confidence = unknown_words_max_confidence
        model: LogisticRegression = pipeline.named_steps["model"]
        features: FeatureUnion = pipeline.named_steps["features"]
        self.pipeline = pipeline
        self.threshold = threshold
        self.fallback = fallback
        self.labels: tuple[str, ...] = tuple(str(c) for c in model.classes_)
        if fallback not in self.labels:
            raise ValueError(f"the training data has no {fallback!r} examples")
        coef = np.asarray(model.coef_, dtype=np.float64)
        self._intercept = np.asarray(model.intercept_, dtype=np.float64)
        blocks = []
        offset = 0
        block_weights = features.transformer_weights or {}
        for name, vectorizer in features.transformer_list:
            size = len(vectorizer.vocabulary_)
            blocks.append(
                _Block(
                    analyzer=vectorizer.build_analyzer(),
                    vocabulary={str(k): int(v) for k, v in vectorizer.vocabulary_.items()},
                    idf=np.asarray(vectorizer.idf_, dtype=np.float64),
                    # Transposed and contiguous: rows of the n-grams present
                    # are gathered per message.
                    coef=np.ascontiguousarray(coef[:, offset : offset + size].T),
                    sublinear_tf=bool(vectorizer.sublinear_tf),
                    weight=float(block_weights.get(name, 1.0)),
                )
            )
            offset += size
        self._blocks = tuple(blocks)
        # People text the same few things ("yes", "hi", "what are your hours"):
        # a bounded cache of verdicts by prepared text skips the vector math.
        self._cache: dict[str, Prediction] = {}

    def extended(self, words: Iterable[str]) -> IntentClassifier:
        """A copy whose domain vocabulary also knows ``words`` (same fitted model).

        :class:`~bot.nlu.understand.NLU` uses this to add the business's own
        words to a classifier that was trained (and cached) without them.

        Example::

            clf = IntentClassifier.train(catalog).extended(["Springfield", "whitening"])
        """
        if self.vocabulary is None:
            return self
        clone = copy.copy(self)
        clone.vocabulary = self.vocabulary.with_words(words)
        clone._cache = {}  # verdicts depend on the vocabulary
        return clone

    @classmethod
    def train(
        cls,
        catalog: IntentCatalog,
        *,
        threshold: float | None = None,
        extra_words: Iterable[str] = (),
        c: float = 10.0,
        random_state: int = 0,
    ) -> IntentClassifier:
        """Fit on every example in ``catalog``.

        ``threshold`` and the unknown-words settings default to the file's.
        The domain vocabulary is every word of the in-scope examples, date and
        time words, and ``extra_words`` (the business's own: service names,
        street, town).

        Example::

            clf = IntentClassifier.train(load_intents(Path("intents/intents.yaml")))
        """
        texts, labels = training_data(catalog)
        pipeline = build_pipeline(c=c, random_state=random_state)
        pipeline.fit(texts, labels)
        words = {w for text, label in zip(texts, labels, strict=True) if label != FALLBACK
                 for w in _WORD.findall(text)}
        words.update(_CALENDAR)
        words.update(w for extra in extra_words for w in _WORD.findall(prepare(extra)))
        return cls(
            pipeline,
            threshold=catalog.threshold if threshold is None else threshold,
            vocabulary=DomainVocabulary(w.replace("'", "") for w in words),
            unknown_words=catalog.unknown_words,
            unknown_words_max_confidence=catalog.unknown_words_max_confidence,
        )

    def probabilities(self, prepared: str) -> NDArray[np.float64]:
        """Class probabilities for already-prepared text, in :attr:`labels` order.

        Equal (to float precision) to ``pipeline.predict_proba([prepared])[0]``.
        """
        scores = self._intercept.copy()
        for block in self._blocks:
            counts = Counter(
                index
                for gram in block.analyzer(prepared)
                if (index := block.vocabulary.get(gram)) is not None
            )
            if not counts:
                continue
            indices = np.fromiter(counts.keys(), dtype=np.intp, count=len(counts))
            tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
            if block.sublinear_tf:
                tf = np.log(tf) + 1.0
            weights = tf * block.idf[indices]
            weights *= block.weight / np.sqrt(weights @ weights)
            scores += weights @ block.coef[indices]
        # Softmax, shifted for numerical safety: multinomial LR's probabilities.
        scores -= scores.max()
        exp = np.exp(scores)
        result: NDArray[np.float64] = exp / exp.sum()
        return result

    def predict(self, text: str) -> Prediction:
        """Classify raw ``text``; below the threshold the intent is ``fallback``.

        >>> clf.predict("what time do you open on saturday").intent  # doctest: +SKIP
        'hours'
        """
        return self.predict_prepared(prepare(text))

    def predict_prepared(self, prepared: str) -> Prediction:
        """Like :meth:`predict` for text already run through :func:`prepare`."""
        cached = self._cache.get(prepared)
        if cached is not None:
            return cached
        prediction = self._predict(prepared)
        if len(prepared) <= CACHE_MAX_CHARS:
            if len(self._cache) >= CACHE_SIZE:
                del self._cache[next(iter(self._cache))]  # the oldest entry
            self._cache[prepared] = prediction
        return prediction

    def cache_clear(self) -> None:
        """Forget cached verdicts (benchmarks time the first sight of a text)."""
        self._cache.clear()

    def _predict(self, prepared: str) -> Prediction:
        probs = self.probabilities(prepared)
        order = np.argsort(probs)[::-1][:3]
        ranked = tuple((self.labels[i], float(probs[i])) for i in order)
        best, confidence = ranked[0]
        intent = best if confidence >= self.threshold else self.fallback
        unknown: tuple[str, ...] = ()
        if intent != self.fallback and self.vocabulary is not None and self.unknown_words > 0:
            unknown = self.vocabulary.unknown_words(prepared)
            if len(unknown) >= self.unknown_words and confidence < self.unknown_words_max_confidence:
                intent = self.fallback
        return Prediction(intent=intent, confidence=confidence, best=best, ranked=ranked, unknown=unknown)
