from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.nlu.intents import FALLBACK, IntentCatalog, load_intents

REQUIRED = [
    "greet", "help", "hours", "location", "pricing", "book", "reschedule", "cancel",
    "my_appointments", "human", "thanks", "goodbye", "affirm", "deny", "fallback",
    "opt_out", "opt_in",
]


def test_shipped_file_has_every_intent(catalog: IntentCatalog) -> None:
    assert sorted(catalog.names) == sorted(REQUIRED)


@pytest.mark.parametrize("name", REQUIRED)
def test_each_intent_has_15_to_40_examples(catalog: IntentCatalog, name: str) -> None:
    assert 15 <= len(catalog[name].examples) <= 40


def test_patterns_are_compiled(catalog: IntentCatalog) -> None:
    assert catalog["affirm"].patterns[0].search("yes")
    assert catalog[FALLBACK].patterns == ()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "intents.yaml"
    path.write_text(text, encoding="utf-8")
    return path


MINIMAL = """
intents:
  greet:
    examples: [hi, hello]
  fallback:
    examples: [tell me a joke]
"""


def test_minimal_file_loads(tmp_path: Path) -> None:
    catalog = load_intents(write(tmp_path, MINIMAL))
    assert catalog.names == ("greet", "fallback")
    assert catalog.threshold == 0.4


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (MINIMAL.replace("examples: [hi, hello]", "exampels: [hi]"), "intents.greet.exampels: unknown key"),
        (MINIMAL + "colour: blue\n", "colour: unknown key"),
        ("classifier: {treshold: 0.5}\n" + MINIMAL, "classifier.treshold: unknown key"),
        ("classifier: {threshold: 1.5}\n" + MINIMAL, "classifier.threshold"),
        (MINIMAL.replace("examples: [hi, hello]", "examples: [hi]\n    patterns: ['(unclosed']"),
         "intents.greet.patterns: invalid regex"),
        (MINIMAL.replace("fallback:", "other:"), "'fallback' intent"),
        (MINIMAL.replace("[tell me a joke]", "[Hi]"), "'Hi' is listed under both 'greet' and 'fallback'"),
        (MINIMAL.replace("greet:", "Greet-Me:"), "lower_snake_case"),
        (MINIMAL.replace("examples: [hi, hello]", "examples: []"), "intents.greet.examples"),
    ],
)
def test_invalid_files_name_the_file_and_key(tmp_path: Path, text: str, where: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_intents(path)
    assert str(path) in str(caught.value)
    assert where in str(caught.value)


def test_duplicate_yaml_keys_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "  greet:\n    examples: [hey]\n")
    with pytest.raises(ConfigError, match="duplicate key 'greet'"):
        load_intents(path)


def test_yes_and_no_must_be_quoted(tmp_path: Path) -> None:
    # YAML 1.1 reads a bare `yes` as true: refuse it rather than train on "True".
    path = write(tmp_path, MINIMAL.replace("[hi, hello]", "[hi, yes]"))
    with pytest.raises(ConfigError, match=r"intents\.greet\.examples\.1"):
        load_intents(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_intents(tmp_path / "nope.yaml")
