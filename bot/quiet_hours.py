"""Quiet hours: messages the bot starts reach a phone only at reasonable local hours.

The rules (docs/outbound.md, *Quiet hours*):

- ``quiet_hours:`` in ``intents/business.yaml`` gives the allowed window
  (default 08:00-21:00, the federal rule) and per-channel overrides; a
  per-US-state table (``us_state_quiet_hours.yaml``, sources named there)
  narrows it for recipients in stricter states. Both must allow a send.
- The recipient's time zone: the conversation's when known (``timezone`` in
  its state; the business's for patients with an appointment there), else the
  number's (``phonenumbers``); a number spanning several zones uses the
  latest-waking one (the zone where 8 am comes last); an unknown one the
  business's.
- A held message is released at the next allowed minute; a reminder that
  would fall in quiet hours moves earlier, to the last allowed minute before it.

Example::

    policy = QuietHoursPolicy(business.quiet_hours, load_state_rules(), business.tz)
    hold = policy.hold(user="+13055550123", channel="sms", now=now)
    hold.release_at if hold else "send now"
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
import yaml
from phonenumbers import geocoder
from phonenumbers import timezone as number_zones
from pydantic import BaseModel, ConfigDict, Field, model_validator

STATE_RULES_FILE: Final = Path(__file__).with_name("us_state_quiet_hours.yaml")
WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_TIME = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*$")
HoldReason = Literal["quiet_hours", "state_law"]


def _time(value: Any) -> time:
    if isinstance(value, time):
        return value
    match = _TIME.match(str(value))
    if match is None:
        raise ValueError(f'expected a time "HH:MM", got {value!r}')
    return time(int(match.group(1)), int(match.group(2)))


@dataclass(frozen=True, slots=True)
class Window:
    """Allowed local hours of one day: ``[start, end)``; ``None`` for a day with none."""

    start: time
    end: time

    @classmethod
    def parse(cls, value: Any) -> Window | None:
        """``"08:00-21:00"``, ``{start: "08:00", end: "21:00"}`` or ``"closed"``."""
        if isinstance(value, Window):
            return value
        if isinstance(value, str) and value.strip().lower() == "closed":
            return None
        if isinstance(value, dict):
            start, end = _time(value.get("start", "08:00")), _time(value.get("end", "21:00"))
        else:
            match = _RANGE.match(str(value))
            if match is None:
                raise ValueError(f'expected "HH:MM-HH:MM" or "closed", got {value!r}')
            h1, m1, h2, m2 = (int(g) for g in match.groups())
            start, end = time(h1, m1), time(h2, m2)
        if end <= start:
            raise ValueError(f"the window must end after it starts: {value!r}")
        return cls(start, end)

    def narrowed(self, other: Window | None) -> Window | None:
        """Both windows at once (the later start, the earlier end)."""
        if other is None:
            return None
        start, end = max(self.start, other.start), min(self.end, other.end)
        return Window(start, end) if start < end else None

    def text(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


class QuietHours(BaseModel):
    """``quiet_hours:`` of ``business.yaml``: when messages the bot starts may go out.

    Example (YAML)::

        quiet_hours:
          start: "08:00"          # allowed from (recipient's local time)
          end: "21:00"            # ... until
          channels:
            whatsapp: "09:00-20:00"
          us_states: true         # apply the stricter state table too
          late_answer_minutes: 5  # an answer later than this counts as bot-started
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    start: time = time(8, 0)
    end: time = time(21, 0)
    channels: dict[str, Window] = Field(default_factory=dict)
    us_states: bool = True
    late_answer_minutes: float = Field(default=5, ge=0, le=24 * 60)

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        value = dict(value)
        if "allowed" in value:  # the one-string form: allowed: "08:00-21:00"
            window = Window.parse(value.pop("allowed"))
            if window is None:
                raise ValueError("allowed cannot be closed: leave the bot-started messages off instead")
            value.setdefault("start", window.start)
            value.setdefault("end", window.end)
        for name in ("start", "end"):
            if name in value:
                value[name] = _time(value[name])
        channels = value.get("channels") or {}
        if not isinstance(channels, dict):
            raise ValueError("channels: expected a mapping like {whatsapp: '09:00-20:00'}")
        parsed = {}
        for channel, spec in channels.items():
            window = Window.parse(spec)
            if window is None:
                raise ValueError(f"channels.{channel}: a channel cannot be closed all day")
            parsed[str(channel)] = window
        value["channels"] = parsed
        if value.get("start", time(8)) >= value.get("end", time(21)):
            raise ValueError("end must be after start")
        return value

    def window(self, channel: str) -> Window:
        """The allowed window of ``channel`` (``sms``, ``whatsapp``)."""
        return self.channels.get(channel) or Window(self.start, self.end)


@dataclass(frozen=True, slots=True)
class StateRule:
    """A US state's window, with per-weekday overrides."""

    code: str
    default: Window
    days: dict[str, Window | None]

    def on(self, day: date) -> Window | None:
        weekday = WEEKDAYS[day.weekday()]
        return self.days.get(weekday, self.default)


@dataclass(frozen=True, slots=True)
class StateRules:
    """The per-state table, looked up by USPS code or by the geocoder's state name."""

    rules: dict[str, StateRule]
    names: dict[str, str]

    def for_number(self, number: phonenumbers.PhoneNumber) -> StateRule | None:
        if number.country_code != 1:
            return None
        where = geocoder.description_for_number(number, "en").strip()
        if not where:
            return None
        code = where.rsplit(", ", 1)[1] if ", " in where else self.names.get(where.lower(), "")
        return self.rules.get(code.upper())


@cache
def load_state_rules(path: Path = STATE_RULES_FILE) -> StateRules:
    """The per-state table (cached: it is read-only data)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    rules: dict[str, StateRule] = {}
    names: dict[str, str] = {}
    for code, spec in (data.get("states") or {}).items():
        default = Window.parse({"start": spec["start"], "end": spec["end"]})
        assert default is not None
        days = {str(day): Window.parse(v) for day, v in (spec.get("days") or {}).items()}
        bad = set(days) - set(WEEKDAYS)
        if bad:
            raise ValueError(f"{path}: {code}: unknown weekdays {sorted(bad)}")
        rules[str(code).upper()] = StateRule(str(code).upper(), default, days)
        for name in spec.get("names") or ():
            names[str(name).lower()] = str(code).upper()
    return StateRules(rules, names)


@dataclass(frozen=True, slots=True)
class Hold:
    """Why and until when a message waits."""

    release_at: datetime  # aware, UTC
    reason: HoldReason
    zone: str
    state: str | None = None

    def local_release(self) -> datetime:
        return self.release_at.astimezone(ZoneInfo(self.zone))

    def text(self) -> str:
        """``until 08:00 America/New_York (Tue Mar 3)``: what people are shown."""
        return until_text(self.release_at, self.zone)


def until_text(release_at: datetime, zone: str) -> str:
    """When a held message goes, in the recipient's zone (the one wording logs, CLI and dev phone share).

    >>> from datetime import UTC
    >>> until_text(datetime(2026, 3, 3, 13, 0, tzinfo=UTC), "America/New_York")
    'until 08:00 America/New_York (Tue Mar 3)'
    """
    local = release_at.astimezone(ZoneInfo(zone))
    return f"until {local:%H:%M} {zone} ({local:%a %b} {local.day})"


class QuietHoursPolicy:
    """Decides whether a bot-started message may go now, and when it may if not."""

    def __init__(self, config: QuietHours, states: StateRules | None, business_tz: ZoneInfo) -> None:
        self.config = config
        self.states = states if config.us_states else None
        self.business_tz = business_tz

    # -- where the recipient is -------------------------------------------

    def zone_for(self, user: str, *, known: str | None = None, local_patient: bool = False) -> ZoneInfo:
        """The recipient's zone: ``known`` (the conversation's), the business's for a
        local patient, else the number's (latest-waking of several), else the business's."""
        if known:
            try:
                return ZoneInfo(known)
            except (ZoneInfoNotFoundError, ValueError):
                pass
        if local_patient:
            return self.business_tz
        number = _parse(user)
        if number is None:
            return self.business_tz
        zones = []
        for name in number_zones.time_zones_for_number(number):
            try:
                zones.append(ZoneInfo(name))
            except (ZoneInfoNotFoundError, ValueError):
                continue  # "Etc/Unknown"
        if not zones:
            return self.business_tz
        # Latest-waking: the smallest UTC offset now is where 8 am comes last.
        now = datetime.now(self.business_tz)
        return min(zones, key=lambda z: (now.astimezone(z).utcoffset() or timedelta(0), str(z)))

    def state_for(self, user: str) -> StateRule | None:
        number = _parse(user)
        return self.states.for_number(number) if self.states is not None and number is not None else None

    # -- when it may go ---------------------------------------------------

    def _window(self, channel: str, state: StateRule | None, day: date) -> Window | None:
        window: Window | None = self.config.window(channel)
        if state is not None and window is not None:
            window = window.narrowed(state.on(day))
        return window

    def hold(self, *, user: str, channel: str, now: datetime, zone: ZoneInfo | None = None) -> Hold | None:
        """None when a message to ``user`` may go at ``now``; else the :class:`Hold` until the next allowed minute."""
        zone = zone or self.zone_for(user)
        state = self.state_for(user)
        local = now.astimezone(zone)
        if _inside(self._window(channel, state, local.date()), local):
            return None
        reason: HoldReason = "state_law" if _inside(self._window(channel, None, local.date()), local) else \
            "quiet_hours"
        release = self.next_allowed(channel, state, local)
        return Hold(release_at=release.astimezone(ZoneInfo("UTC")), reason=reason, zone=str(zone),
                    state=state.code if state else None)

    def next_allowed(self, channel: str, state: StateRule | None, local: datetime) -> datetime:
        """The first allowed minute at or after ``local`` (aware, in its zone)."""
        start_minute = local.replace(second=0, microsecond=0)
        if start_minute < local:
            start_minute += timedelta(minutes=1)
        for offset in range(8):
            day = local.date() + timedelta(days=offset)
            window = self._window(channel, state, day)
            if window is None:
                continue
            opens = datetime.combine(day, window.start, tzinfo=local.tzinfo)
            closes = datetime.combine(day, window.end, tzinfo=local.tzinfo)
            candidate = max(opens, start_minute)
            if candidate < closes:
                return candidate
        raise ValueError("no allowed minute within a week: check quiet_hours")

    def latest_allowed_before(self, *, user: str, channel: str, moment: datetime,
                              zone: ZoneInfo | None = None) -> datetime:
        """``moment`` if allowed, else the last allowed minute before it (a reminder moved earlier)."""
        zone = zone or self.zone_for(user)
        state = self.state_for(user)
        local = moment.astimezone(zone)
        for offset in range(8):
            day = local.date() - timedelta(days=offset)
            window = self._window(channel, state, day)
            if window is None:
                continue
            opens = datetime.combine(day, window.start, tzinfo=zone)
            closes = datetime.combine(day, window.end, tzinfo=zone) - timedelta(minutes=1)
            if offset == 0 and local < opens:
                continue
            return min(local, closes).astimezone(ZoneInfo("UTC")) if offset else \
                (local if local <= closes else closes).astimezone(ZoneInfo("UTC"))
        raise ValueError("no allowed minute within a week: check quiet_hours")


def _inside(window: Window | None, local: datetime) -> bool:
    return window is not None and window.start <= local.time() < window.end


def _parse(user: str) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(user.removeprefix("whatsapp:"), None)
    except phonenumbers.NumberParseException:
        return None
