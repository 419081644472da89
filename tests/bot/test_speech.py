"""Speech rendering: what a caller hears."""

from __future__ import annotations

import pytest

from bot.messages import Choice
from bot.speech import speak_choice, spoken


@pytest.mark.parametrize(
    ("text", "heard"),
    [
        ("Booked: cleaning on Tue, Mar 3 at 10:30 AM.", "Booked: cleaning on Tuesday, March 3 at 10:30 AM."),
        ("Open Mon-Fri 8am-5pm", "Open Monday to Friday 8 AM to 5 PM."),
        ("Open now until 5 PM. Hours: daily", "Open now until 5 PM. Hours: daily."),
        ("We close at 5 p.m. See you", "We close at 5 PM. See you."),
        ("From 9 a.m. to noon", "From 9 AM to noon."),
        ("Cleaning: $120 (60 min).", "Cleaning: $120 (60 min)."),
        ("See you at 9:00 AM 😊🦷", "See you at 9 AM."),
        ("Details: https://example.com/a?b=1 and www.example.org", "Details: and."),
        ("*Bold* and _italic_ words", "Bold and italic words."),
        ("First line\nSecond line", "First line. Second line."),
        ("Visits:\n1. Cleaning Tue\n2. Checkup Wed",
         "Visits: Number 1: Cleaning Tuesday. Number 2: Checkup Wednesday."),
    ],
)
def test_text_is_rewritten_for_the_ear(text: str, heard: str) -> None:
    assert spoken(text) == heard


def test_short_choices_are_said_back_long_ones_pressed() -> None:
    assert speak_choice(1, Choice("service:cleaning", "Cleaning")) == "Say cleaning or press 1."
    assert speak_choice(3, Choice("slot", "Wed Mar 4 9:00 AM")) == "For Wednesday March 4 9 AM, press 3."
    assert spoken("", [Choice("yes", "Yes")]) == "Say yes or press 1."
