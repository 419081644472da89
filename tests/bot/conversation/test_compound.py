"""Splitting a message with several requests."""

from __future__ import annotations

import pytest

from bot.compound import split_requests


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("what are your hours and can I book a checkup?", ["what are your hours", "can I book a checkup"]),
        ("how much is a cleaning? also r u open sat", ["how much is a cleaning", "r u open sat"]),
        ("where r u located & how much is whitening", ["where r u located", "how much is whitening"]),
        ("book a cleaning tomorrow at 3pm", ["book a cleaning tomorrow at 3pm"]),
        ("book me in at 3.30 tmrw", ["book me in at 3.30 tmrw"]),
        ("yes and thanks", ["yes and thanks"]),
        ("hi. book a cleaning", ["hi. book a cleaning"]),
    ],
)
def test_split(text: str, parts: list[str]) -> None:
    assert split_requests(text) == parts
