"""Fixtures for the conversation parts (safety, FAQ, opening hours): the shipped data."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.business import Business, load_business
from bot.faq import FaqBook
from bot.nlu.intents import load_intents
from bot.safety import SafetyRules, load_safety
from bot.templates import ReplyTemplates

ROOT = Path(__file__).resolve().parents[3]
NY = ZoneInfo("America/New_York")
MONDAY_9AM = datetime(2026, 3, 2, 9, 0, tzinfo=NY)


@pytest.fixture(scope="session")
def business() -> Business:
    return load_business(ROOT / "intents" / "business.yaml")


@pytest.fixture(scope="session")
def templates() -> ReplyTemplates:
    return ReplyTemplates(ROOT / "prompts")


@pytest.fixture(scope="session")
def faq(business: Business, templates: ReplyTemplates) -> FaqBook:
    return FaqBook.build(business, load_intents(ROOT / "intents" / "intents.yaml"), templates)


@pytest.fixture(scope="session")
def safety() -> SafetyRules:
    return load_safety(ROOT / "intents" / "safety.yaml")
