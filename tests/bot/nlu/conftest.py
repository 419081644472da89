"""Fixtures for the NLU tests: the shipped data, trained once per session."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.business import Business, load_business
from bot.clock import FrozenClock
from bot.nlu.intents import IntentCatalog, load_intents
from bot.nlu.understand import NLU

ROOT = Path(__file__).resolve().parents[3]
INTENTS_DIR = ROOT / "intents"
NY = ZoneInfo("America/New_York")
# Monday 2 March 2026, 09:00 in New York: the frozen "now" of these tests.
MONDAY_9AM = datetime(2026, 3, 2, 9, 0, tzinfo=NY)


@pytest.fixture(scope="session")
def business() -> Business:
    return load_business(INTENTS_DIR / "business.yaml")


@pytest.fixture(scope="session")
def catalog() -> IntentCatalog:
    return load_intents(INTENTS_DIR / "intents.yaml")


@pytest.fixture(scope="session")
def nlu(catalog: IntentCatalog, business: Business) -> NLU:
    # Training takes about a second: once per test session.
    return NLU(catalog, business, clock=FrozenClock(MONDAY_9AM))
