from __future__ import annotations

from datetime import UTC, datetime, time
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.business import Business, load_business
from bot.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "intents" / "business.yaml"
NY = ZoneInfo("America/New_York")


@pytest.fixture(scope="module")
def business() -> Business:
    return load_business(SHIPPED)


def test_shipped_business(business: Business) -> None:
    assert business.name == "Bright Smile Dental"
    assert business.tz == NY
    assert business.address == "500 Market St, Springfield"
    assert business.phone == "+1 555 010 0199"
    assert business.phone_e164 == "+15550100199"
    assert list(business.services) == ["cleaning", "checkup", "whitening", "filling"]
    prices = {s.key: (s.duration_minutes, s.price, s.price_text) for s in business.services.values()}
    assert prices == {
        "cleaning": (60, Decimal(120), "$120"),
        "checkup": (30, Decimal(80), "$80"),
        "whitening": (90, Decimal(350), "$350"),
        "filling": (60, Decimal(150), "from $150"),
    }


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("cleaning", "cleaning"),
        ("Clean", "cleaning"),
        ("teeth cleaning", "cleaning"),
        ("cleanings", "cleaning"),
        ("check-up", "checkup"),
        ("check up", "checkup"),
        ("Check-Ups", "checkup"),
        ("exam", "checkup"),
        ("whiten", "whitening"),
        ("cavity", "filling"),
        ("cavities", "filling"),
        ("fillings", "filling"),
    ],
)
def test_service_aliases(business: Business, name: str, key: str) -> None:
    found = business.service(name)
    assert found is not None and found.key == key


def test_unknown_service(business: Business) -> None:
    assert business.service("root canal") is None


def test_find_service_in_text(business: Business) -> None:
    assert business.find_service("can i get a teeth-cleaning?").key == "cleaning"  # type: ignore[union-attr]
    assert business.find_service("i think i have a cavity").key == "filling"  # type: ignore[union-attr]
    assert business.find_service("how much for 2 check ups").key == "checkup"  # type: ignore[union-attr]
    assert business.find_service("cleanliness matters") is None


@pytest.mark.parametrize(
    ("when", "minutes", "open_"),
    [
        (datetime(2026, 3, 2, 8, 0, tzinfo=NY), 60, True),  # Monday, at opening
        (datetime(2026, 3, 2, 7, 59, tzinfo=NY), 30, False),  # before opening
        (datetime(2026, 3, 2, 16, 0, tzinfo=NY), 60, True),  # ends exactly at closing
        (datetime(2026, 3, 2, 16, 30, tzinfo=NY), 60, False),  # would end 17:30
        (datetime(2026, 3, 2, 16, 30, tzinfo=NY), 30, True),
        (datetime(2026, 3, 7, 12, 0, tzinfo=NY), 60, True),  # Saturday, ends at 13:00 closing
        (datetime(2026, 3, 7, 12, 30, tzinfo=NY), 60, False),  # Saturday, would end 13:30
        (datetime(2026, 3, 7, 12, 0, tzinfo=NY), 90, False),
        (datetime(2026, 3, 7, 8, 30, tzinfo=NY), 30, False),  # Saturday opens at 9
        (datetime(2026, 3, 8, 10, 0, tzinfo=NY), 30, False),  # Sunday: closed
        (datetime(2026, 3, 2, 20, 0, tzinfo=UTC), 60, True),  # 15:00 EST
        (datetime(2026, 3, 2, 22, 0, tzinfo=UTC), 60, False),  # 17:00 EST
        (datetime(2026, 3, 9, 20, 30, tzinfo=UTC), 30, True),  # 16:30 EDT after DST
    ],
)
def test_is_open_at(business: Business, when: datetime, minutes: int, open_: bool) -> None:
    assert business.is_open_at(when, minutes) is open_


def test_is_open_at_needs_an_aware_datetime(business: Business) -> None:
    with pytest.raises(ValueError, match="aware"):
        business.is_open_at(datetime(2026, 3, 2, 10), 30)


def test_opening_hours_text(business: Business) -> None:
    lines = business.opening_hours_text()
    assert [(line.days, line.hours, line.closed) for line in lines] == [
        ("Mon-Fri", "8am-5pm", False),
        ("Sat", "9am-1pm", False),
        ("Sun", "closed", True),
    ]
    assert lines[1].ranges[0].start == time(9, 0)


def test_lunch_breaks_and_minutes(tmp_path: Path) -> None:
    text = SHIPPED.read_text().replace('mon: "08:00-17:00"', 'mon: ["08:30-12:00", "13:00-17:00"]')
    business = load_business(write(tmp_path, text))
    assert business.opening_hours_text()[0].hours == "8:30am-12pm, 1pm-5pm"
    assert not business.is_open_at(datetime(2026, 3, 2, 11, 30, tzinfo=NY), 60)
    assert business.is_open_at(datetime(2026, 3, 2, 13, 0, tzinfo=NY), 60)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "business.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        ("timezone: America/New_York", "timezone: Mars/Olympus", "timezone: unknown time zone"),
        ("    price: 120", "    price: -5", "services.cleaning.price"),
        ("    price: 120", "    prize: 120", "services.cleaning.prize: unknown key"),
        ("    duration_minutes: 30", "    duration_minutes: 0", "services.checkup.duration_minutes"),
        ('  sat: "09:00-13:00"', '  sat: "13:00-09:00"', "hours.sat: closing time must be after"),
        ('  sat: "09:00-13:00"', '  sat: "9am to 1pm"', 'hours.sat: expected "HH:MM-HH:MM"'),
        ("  sun: closed", "  sunday: closed", "hours.sunday: unknown key"),
        ('phone: "+1 555 010 0199"', "phone: call us", "phone: must be an international number"),
        ("name: Bright Smile Dental\n", "", "name: missing"),
        ("aliases: [cavity,", "aliases: [clean, cavity,", "'clean' names both 'cleaning' and 'filling'"),
    ],
)
def test_invalid_files_name_the_file_and_field(tmp_path: Path, old: str, new: str, where: str) -> None:
    text = SHIPPED.read_text()
    assert old in text
    path = write(tmp_path, text.replace(old, new, 1))
    with pytest.raises(ConfigError) as caught:
        load_business(path)
    assert str(path) in str(caught.value)
    assert where in str(caught.value)


def test_not_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_business(write(tmp_path, "- just\n- a list\n"))


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="line 2"):
        load_business(write(tmp_path, "name: x\n  bad: [\n"))


def test_business_is_frozen(business: Business) -> None:
    with pytest.raises(ValueError, match="frozen"):
        business.name = "Other"
