from __future__ import annotations

import pytest

from bot.nlu.text import expand_sms, normalize, prepare


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Cn I bk 4 TMRW pls?", "can i book for tomorrow please?"),
        ("wen r u opn 2moro", "when are you open tomorrow"),
        ("need an appt asap", "need an appointment asap"),
        ("thx!!!!", "thanks!!"),
        ("  lots   of\tspace ", "lots of space"),
    ],
)
def test_prepare(raw: str, expected: str) -> None:
    assert prepare(raw) == expected


@pytest.mark.parametrize("raw", ["at 4", "4pm", "4 pm", "4:30", "3/4", "@4"])
def test_four_stays_a_number_when_it_is_a_time_or_date(raw: str) -> None:
    assert prepare(raw) == raw


def test_numbers_can_be_kept_for_slot_extraction() -> None:
    assert expand_sms("bk 4 tmrw", numbers=False) == "book 4 tomorrow"


def test_normalize_handles_look_alikes_and_emoji_modifiers() -> None:
    # Curly apostrophe, non-breaking space, a skin-toned thumbs up.
    assert normalize("It\u2019s\u00a0OK \U0001f44d\U0001f3fd") == "it's ok \U0001f44d"


def test_yes_no_single_letters_are_not_expanded() -> None:
    assert prepare("y") == "y"
    assert prepare("n") == "n"
    assert prepare("2") == "2"


def test_business_spellings_are_data_not_code() -> None:
    from pathlib import Path

    from bot.nlu.intents import load_intents
    from bot.nlu.text import respeller

    # Dental words are not built into the SMS spellings...
    assert expand_sms("is the dentst in") == "is the dentst in"
    # ...they come from intents/intents.yaml.
    catalog = load_intents(Path(__file__).resolve().parents[3] / "intents" / "intents.yaml")
    fix = respeller(catalog.spellings)
    assert fix("Is the Dentst in?") == "Is the dentist in?"
    assert fix("dentistry") == "dentistry"


def test_a_bad_spelling_entry_names_the_key() -> None:
    from pathlib import Path

    import pytest

    from bot.errors import ConfigError
    from bot.nlu.intents import parse_intents

    intents = {"greet": {"examples": ["hi"]}, "fallback": {"examples": ["x"]}}
    data = {"spellings": {"Two Words": "x"}, "intents": intents}
    with pytest.raises(ConfigError, match="spellings"):
        parse_intents(data, source=Path("intents.yaml"))
