"""The local intent classifier, trained at start-up from the intent examples.

Model: TF-IDF over character n-grams (``char_wb`` 2-5, robust to typos and
SMS spelling) joined with word uni/bi-grams (word order: "cancel my booking"
vs "book"), fed to a multinomial logistic regression. Logistic regression
was chosen over a calibrated LinearSVC because its probabilities come
straight from the model (no calibration folds on ~25 examples per intent),
it scored at least as well in cross-validation on the training examples
(``python -m bench.classifier --cv``), and its prediction is a dot product
we can run without scikit-learn's per-call overhead.

Why a hand-written predict: ``pipeline.predict_proba([text])`` costs about a
millisecond of input checks and sparse-matrix plumbing for one short string.
:meth:`IntentClassifier.predict` instead looks each n-gram up in the fitted
vocabularies, builds the same TF-IDF weights and multiplies by the fitted
coefficients: the same numbers (a test checks this against scikit-learn)
in a few tens of microseconds.

Training is deterministic (fixed ``random_state``, sorted inputs) and needs
no network.

Example::

    clf = IntentClassifier.train(load_intents(Path("intents/intents.yaml")))
    clf.predict("wat time do u close on sat")   # Prediction(intent="hours", confidence=0.8...)
    clf.predict("who won the game last night")  # Prediction(intent="fallback", ...)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

from bot.nlu.intents import FALLBACK, IntentCatalog
from bot.nlu.text import prepare

#: Confidence below which an answer becomes ``fallback`` when none is given.
DEFAULT_THRESHOLD = 0.4


@dataclass(frozen=True, slots=True)
class Prediction:
    """The classifier's answer.

    ``intent`` is ``fallback`` when the best guess scored below the threshold;
    ``best`` is that best guess anyway (for logs, and for a model step that
    wants a hint), and ``ranked`` the top three ``(intent, probability)``.
    """

    intent: str
    confidence: float
    best: str = ""
    ranked: tuple[tuple[str, float], ...] = field(default=())

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


def build_pipeline(*, c: float = 10.0, random_state: int = 0) -> Pipeline:
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
                    token_pattern=r"(?u)[\w']+",
                ),
            ),
        ]
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

    def __init__(self, pipeline: Pipeline, *, threshold: float, fallback: str = FALLBACK) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError("threshold must be within [0, 1]")
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
        for _, vectorizer in features.transformer_list:
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
                )
            )
            offset += size
        self._blocks = tuple(blocks)

    @classmethod
    def train(
        cls,
        catalog: IntentCatalog,
        *,
        threshold: float | None = None,
        c: float = 10.0,
        random_state: int = 0,
    ) -> IntentClassifier:
        """Fit on every example in ``catalog``; ``threshold`` defaults to the file's.

        Example::

            clf = IntentClassifier.train(load_intents(Path("intents/intents.yaml")))
        """
        texts, labels = training_data(catalog)
        pipeline = build_pipeline(c=c, random_state=random_state)
        pipeline.fit(texts, labels)
        return cls(pipeline, threshold=catalog.threshold if threshold is None else threshold)

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
            weights /= np.sqrt(weights @ weights)
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
        probs = self.probabilities(prepared)
        order = np.argsort(probs)[::-1][:3]
        ranked = tuple((self.labels[i], float(probs[i])) for i in order)
        best, confidence = ranked[0]
        intent = best if confidence >= self.threshold else self.fallback
        return Prediction(intent=intent, confidence=confidence, best=best, ranked=ranked)

    def predict_many(self, texts: Sequence[str]) -> list[Prediction]:
        """:meth:`predict` for each text (a convenience for tools and tests)."""
        return [self.predict(text) for text in texts]
