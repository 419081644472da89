"""A signed fuzz run against a running ``bot serve``: thousands of odd requests, no 5xx, still serving.

hypothesis builds Twilio-shaped forms (inbound messages and status
callbacks) and bends them: fields dropped, set to arbitrary Unicode,
control characters, non-ASCII digits, bare ``whatsapp:``, huge numbers,
unknown fields; raw bodies that are not valid forms at all. Every request is
signed as Twilio signs, so it gets past the signature check to the field
validation and the engine. The answer must never be a 5xx.
"""

from __future__ import annotations

from collections import Counter
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.messages import Channel
from devtools.webhook_client import WebhookClient, inbound_form, new_sid, parse_twiml
from tests.chaos.harness import QUESTION, Cluster, new_user
from tests.conftest import AUTH_TOKEN, BOT_NUMBER, PUBLIC_URL

pytestmark = pytest.mark.chaos

#: Requests per route; three routes make the run at least 2,000 requests.
PER_ROUTE = 700

INBOUND_FIELDS = [
    "From", "To", "MessageSid", "SmsSid", "AccountSid", "MessagingServiceSid", "Body", "NumMedia", "NumSegments",
    "ProfileName", "WaId", "MessageType", "ButtonPayload", "ButtonText", "Latitude", "Longitude", "Address",
    "Label", "OptOutType", "MediaUrl0", "MediaContentType0", "OriginalRepliedMessageSid", "SmsStatus",
]
STATUS_FIELDS = ["MessageSid", "SmsSid", "MessageStatus", "SmsStatus", "ErrorCode", "To", "From", "AccountSid",
                 "ChannelPrefix", "EventType", "RawDlrDoneDate"]
ODD = [
    "", " ", "²", "١٢", "-1", "1e3", "007", "9" * 40, "nan", "inf", "whatsapp:", "whatsapp:+", "whatsapp:abc",
    "+", "+0", "+14155550123", "whatsapp:+14155550123", "SM" + "a" * 32, "SM" + "g" * 32, "MM1", "AC" + "0" * 31,
    "\x00", "\x0b", "\x1b[31m", "\ud7ff", "\ufffe", "STOP", "HELP", "start", "a" * 2000, "<Response/>", "&amp;",
]
TEXT = st.text(st.characters(codec="utf-8"), max_size=80)
VALUES = st.one_of(TEXT, st.sampled_from(ODD), st.integers().map(str), st.floats().map(str))
FIELD_NAMES = st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=16)


@st.composite
def bent(draw: st.DrawFn, base: dict[str, str], names: list[str]) -> list[tuple[str, str]]:
    form = dict(base)
    for name in draw(st.lists(st.sampled_from(names), max_size=4)):
        if draw(st.booleans()):
            form.pop(name, None)
        else:
            form[name] = draw(VALUES)
    form.update(draw(st.dictionaries(FIELD_NAMES, VALUES, max_size=2)))
    items = list(form.items())
    if draw(st.booleans()) and items:  # a repeated key, as Twilio's validator allows
        items.append((items[0][0], draw(VALUES)))
    return items


@st.composite
def inbound(draw: st.DrawFn) -> list[tuple[str, str]]:
    channel = draw(st.sampled_from([Channel.SMS, Channel.WHATSAPP]))
    base = inbound_form(channel, new_user(), BOT_NUMBER, draw(st.one_of(TEXT, st.just(QUESTION))))
    return draw(bent(base, INBOUND_FIELDS))


@st.composite
def status(draw: st.DrawFn) -> list[tuple[str, str]]:
    base = {"MessageSid": new_sid(), "MessageStatus": draw(st.sampled_from(["sent", "delivered", "failed", "read"])),
            "To": new_user(), "From": BOT_NUMBER, "AccountSid": "AC" + "a1" * 16}
    return draw(bent(base, STATUS_FIELDS))


class Fuzzer:
    def __init__(self, cluster: Cluster) -> None:
        self.url = cluster.b.url
        self.http = httpx.Client(timeout=30)
        self.signer = WebhookClient(httpx.AsyncClient(), auth_token=AUTH_TOKEN, public_base_url=PUBLIC_URL)
        self.statuses: Counter[int] = Counter()
        self.server_errors: list[tuple[str, object, str]] = []

    def post(self, path: str, fields: list[tuple[str, str]]) -> None:
        try:
            body, headers = self.signer.signed(path, fields)
        except UnicodeEncodeError:  # a lone surrogate cannot even be sent
            return
        self.send(path, body, headers)

    def send(self, path: str, body: bytes, headers: dict[str, str]) -> None:
        resp = self.http.post(self.url + path, content=body, headers=headers)
        self.statuses[resp.status_code] += 1
        if resp.status_code >= 500:
            self.server_errors.append((path, body[:300], resp.text[:300]))


def test_signed_fuzz_of_the_webhooks_gets_no_5xx(cluster: Cluster) -> None:
    fuzzer = Fuzzer(cluster)
    run = settings(max_examples=PER_ROUTE, deadline=None, database=None, derandomize=False,
                   suppress_health_check=list(HealthCheck))

    @run
    @given(fields=inbound(), path=st.sampled_from(["/twilio/messages", "/twilio/inbound"]))
    def messages(fields: list[tuple[str, str]], path: str) -> None:
        fuzzer.post(path, fields)

    @run
    @given(fields=status())
    def callbacks(fields: list[tuple[str, str]]) -> None:
        fuzzer.post("/twilio/status", fields)

    @run
    @given(raw=st.binary(max_size=300), path=st.sampled_from(["/twilio/messages", "/twilio/status"]),
           content_type=st.sampled_from(["application/x-www-form-urlencoded", "text/plain", "",
                                         "application/x-www-form-urlencoded; charset=latin-1"]))
    def garbage(raw: bytes, path: str, content_type: str) -> None:
        # Signed over whatever the body parses to (or nothing): past the signature where possible.
        headers = {"Content-Type": content_type,
                   "X-Twilio-Signature": fuzzer.signer.signed(path, [])[1]["X-Twilio-Signature"]}
        fuzzer.send(path, raw, headers)

    messages()
    callbacks()
    garbage()
    # Percent-encoded bytes that are not UTF-8, and a declared length longer than the body.
    for encoded in ("Body=%FF%FE", "From=%ED%A0%80", "Body=" + quote("ok") + "&%"):
        fuzzer.send("/twilio/messages", encoded.encode(),
                    {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": "x"})

    total = sum(fuzzer.statuses.values())
    print(f"chaos signed fuzz: requests={total} by status={dict(sorted(fuzzer.statuses.items()))} "
          f"5xx={len(fuzzer.server_errors)}")
    assert total >= 2000
    assert fuzzer.server_errors == []
    # Still serving, and still right.
    assert fuzzer.http.get(cluster.b.url + "/healthz").status_code == 200
    form = inbound_form(Channel.SMS, new_user(), BOT_NUMBER, QUESTION)
    body, headers = fuzzer.signer.signed("/twilio/messages", form)
    answer = fuzzer.http.post(cluster.b.url + "/twilio/messages", content=body, headers=headers)
    assert answer.status_code == 200 and "hours" in parse_twiml(answer.text)[0][0]
    assert all(count > 0 for count in (fuzzer.statuses[200], fuzzer.statuses[204], fuzzer.statuses[400]))
