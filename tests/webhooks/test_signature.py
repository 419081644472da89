"""X-Twilio-Signature: the official vectors, the shared captures, tampering, proxies."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from starlette.requests import Request
from twilio.request_validator import RequestValidator

from bot.errors import SignatureError
from webhooks.forms import parse_form
from webhooks.signature import SignatureChecker

PAYLOADS: dict[str, dict[str, Any]] = json.loads(
    (Path(__file__).parents[1] / "data/twilio/example-payloads.json").read_text()
)

VECTOR_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
    "Caller": "+14158675309",
}


def make_request(url: str, signature: str | None, body: bytes = b"") -> Request:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    headers = [(b"content-type", b"application/x-www-form-urlencoded")]
    host = parts.hostname or ""
    headers.append((b"host", (host if parts.port is None else f"{host}:{parts.port}").encode()))
    if signature is not None:
        headers.append((b"x-twilio-signature", signature.encode()))
    scope = {
        "type": "http", "method": "POST", "scheme": parts.scheme, "path": parts.path,
        "query_string": parts.query.encode(), "headers": headers,
        "server": (host, port), "root_path": "",
    }
    return Request(scope)


def form_of(params: dict[str, str]) -> Any:
    from urllib.parse import urlencode

    return parse_form(urlencode(params).encode())


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://mycompany.com/myapp.php?foo=1&bar=2", "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        ("http://mycompany.com:1234/myapp.php?foo=1&bar=2", "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="),
        ("https://mycompany.com:443/myapp.php?foo=1&bar=2", "kvajT1Ptam85bY51eRf/AJRuM3w="),
        ("http://mycompany.com:80/myapp.php?foo=1&bar=2", "0ZXoZLH/DfblKGATFgpif+LLRf4="),
    ],
)
def test_twilio_python_vectors(url: str, expected: str) -> None:
    checker = SignatureChecker("12345")
    checker.verify(make_request(url, expected), form_of(VECTOR_PARAMS))


def test_official_docs_example() -> None:
    params = {"Digits": "1234", "To": "+18005551212", "From": "+14158675310",
              "Caller": "+14158675310", "CallSid": "CA1234567890ABCDE"}
    url = "https://example.com/myapp.php?foo=1&bar=2"
    SignatureChecker("12345").verify(make_request(url, "L/OH5YylLD5NRKLltdqwSvS0BnU="), form_of(params))


def test_default_port_is_optional_both_ways() -> None:
    # Signed without the port, received with it (and the reverse): both valid.
    SignatureChecker("12345").verify(
        make_request("https://mycompany.com:443/myapp.php?foo=1&bar=2", "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        form_of(VECTOR_PARAMS),
    )


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_every_shared_capture_is_accepted(name: str) -> None:
    capture = PAYLOADS[name]
    form = parse_form(capture["raw_body"].encode())
    checker = SignatureChecker(capture["auth_token"])
    checker.verify(make_request(capture["url"], capture["x_twilio_signature"]), form)


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_captures_checked_behind_a_proxy(name: str) -> None:
    capture = PAYLOADS[name]
    form = parse_form(capture["raw_body"].encode())
    path = urlsplit(capture["url"]).path
    seen = make_request(f"http://internal:8000{path}", capture["x_twilio_signature"])
    SignatureChecker(capture["auth_token"], public_base_url="https://example.com").verify(seen, form)
    with pytest.raises(SignatureError):
        SignatureChecker(capture["auth_token"]).verify(seen, form)


def test_one_changed_character_is_rejected() -> None:
    capture = PAYLOADS["sms_plain"]
    checker = SignatureChecker("12345")
    good_sig = capture["x_twilio_signature"]
    body = capture["raw_body"]
    tampered_value = body.replace("opening+hours", "opening+hourz")
    tampered_url = capture["url"].replace("inbound", "inbounD")
    tampered_sig = ("B" if good_sig[0] != "B" else "C") + good_sig[1:]
    for url, raw, sig in [
        (capture["url"], tampered_value, good_sig),
        (tampered_url, body, good_sig),
        (capture["url"], body, tampered_sig),
    ]:
        with pytest.raises(SignatureError):
            checker.verify(make_request(url, sig), parse_form(raw.encode()))


def test_blank_values_count() -> None:
    capture = PAYLOADS["whatsapp_location"]  # carries Body=
    assert "Body=&" in capture["raw_body"]
    dropped = capture["raw_body"].replace("Body=&", "")
    with pytest.raises(SignatureError):
        SignatureChecker("12345").verify(
            make_request(capture["url"], capture["x_twilio_signature"]), parse_form(dropped.encode())
        )


def test_repeated_keys_are_signed_as_a_sorted_set() -> None:
    url = "https://example.com/twilio/messages"
    raw = b"To=%2B1&From=%2B2&MediaUrl=b&MediaUrl=a"
    form = parse_form(raw)
    # Twilio's algorithm by hand: keys sorted, each key's values sorted.
    signed = url + "From+2" + "MediaUrla" + "MediaUrlb" + "To+1"
    expected = base64.b64encode(hmac.new(b"12345", signed.encode(), hashlib.sha1).digest()).decode()
    SignatureChecker("12345").verify(make_request(url, expected), form)
    # The official validator, fed a multi-dict, agrees.
    assert RequestValidator("12345").compute_signature(url, form) == expected


def test_missing_signature_is_rejected() -> None:
    with pytest.raises(SignatureError, match="missing"):
        SignatureChecker("12345").verify(make_request("https://x.com/a", None), form_of({}))
