from __future__ import annotations

import numpy as np
import pytest

from bot.nlu.classifier import DomainVocabulary, IntentClassifier
from bot.nlu.intents import IntentCatalog
from bot.nlu.text import prepare
from bot.nlu.understand import NLU

# Clear cases per intent, none of them training examples or rule matches.
CLEAR = {
    "greet": ["hello there, bright smile dental 🙂 is this the clinic"],
    "help": ["what sorts of things can this texting service do for me"],
    "hours": ["what time do you open on saturday", "are u guys open on sunday"],
    "location": ["where is your clinic located", "is there parking near the office"],
    "pricing": ["what does a checkup cost", "how pricey is teeth whitening"],
    "book": ["i would like to book a cleaning", "cn i bk 4 tmrw", "can i come in fri morning for a checkup"],
    "reschedule": ["can i move my appointment to thursday", "push my cleaning to next week"],
    "cancel": ["please cancel my cleaning on friday", "i cant make it so cancel my appt"],
    "my_appointments": ["when is my next appointment", "do i have anything booked with you"],
    "human": ["can i talk to someone at the front desk", "please get a person to call me"],
    "fallback": ["who won the football game", "what's the weather in boston", "tell me a funny joke"],
}


@pytest.fixture(scope="module")
def clf(nlu: NLU) -> IntentClassifier:
    return nlu.classifier


@pytest.mark.parametrize(("intent", "text"), [(i, t) for i, texts in CLEAR.items() for t in texts])
def test_clear_utterances(clf: IntentClassifier, intent: str, text: str) -> None:
    prediction = clf.predict(text)
    assert prediction.intent == intent, prediction


def test_fast_path_equals_scikit_learn(clf: IntentClassifier) -> None:
    for text in ["book a cleaning", "wat time r u open", "who won the game", "👍", "x"]:
        prepared = prepare(text)
        expected = clf.pipeline.predict_proba([prepared])[0]
        np.testing.assert_allclose(clf.probabilities(prepared), expected, atol=1e-9)


def test_below_threshold_is_fallback(catalog: IntentCatalog, clf: IntentClassifier) -> None:
    strict = IntentClassifier(clf.pipeline, threshold=0.999, vocabulary=clf.vocabulary)
    prediction = strict.predict("can i change my appointment time")
    assert prediction.intent == "fallback"
    assert prediction.best == "reschedule"
    assert prediction.below_threshold
    lenient = IntentClassifier(clf.pipeline, threshold=0.0)
    assert lenient.predict("can i change my appointment time").intent == "reschedule"


def test_unknown_words_make_a_lukewarm_guess_fallback(clf: IntentClassifier) -> None:
    prediction = clf.predict("when does the hardware store open")
    assert prediction.best == "hours"
    assert prediction.intent == "fallback"
    assert prediction.unknown == ("hardware", "store")


def test_domain_vocabulary_forgives_typos() -> None:
    vocab = DomainVocabulary(["appointment", "cleaning", "whitening"])
    assert vocab.unknown_words("apointment for clenaing and whitning") == ()
    assert vocab.unknown_words("is the post office open") == ("post", "office", "open")
    # Typos are forgiven against domain words only: "post" is not "most".
    assert vocab.with_words(["Post Office"]).unknown_words("is the post office open") == ("open",)


def test_training_is_deterministic(catalog: IntentCatalog, clf: IntentClassifier) -> None:
    again = IntentClassifier.train(catalog)
    text = prepare("hw much 4 a cleaning")
    np.testing.assert_array_equal(again.probabilities(text), clf.probabilities(text))


def test_invalid_threshold(clf: IntentClassifier) -> None:
    with pytest.raises(ValueError, match="threshold"):
        IntentClassifier(clf.pipeline, threshold=1.5)


def test_cached_verdicts_match_fresh_ones_and_respect_the_vocabulary(clf: IntentClassifier) -> None:
    # (Speed lives in bench/classifier.py, not in a timed test.)
    text = "when does the hardware store open"
    first = clf.predict(text)
    assert clf.predict(text) == first
    clf.cache_clear()
    assert clf.predict(text) == first
    # A copy that knows more words judges again instead of reusing the verdict.
    assert first.intent == "fallback"
    assert clf.extended(["hardware", "store"]).predict(text).intent == "hours"
    assert clf.predict(text).intent == "fallback"

