"""Contract: the simulator's answers validate against Twilio's official OpenAPI spec.

The schemas come from the spec's own paths (the operations we serve), with
every ``$ref`` resolved. The spec marks nothing ``required``, so the test makes
each listed property required and forbids extras: a missing property, a wrong
type, a bad enum value or a malformed RFC 2822 date fails. The spec's own
examples must pass the same strict schema, which proves the strictness is
Twilio's and not ours. The spec has no error schema; Twilio's documented error
body is spelled out below.
"""

from __future__ import annotations

import copy
import json
import re
from email.utils import parsedate_to_datetime
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from openapi_schema_validator import OAS30Validator

from devtools.simulator import Simulator
from tests.devtools.simulator.conftest import ACCOUNT_SID, BOT, REMINDER, SERVICE, USER, basic_auth, messages_path

# A copy of Twilio's official spec (twilio-oai 2.6.7, Apache-2.0), kept with the tests.
SPEC_PATH = Path(__file__).resolve().parents[2] / "data" / "twilio" / "twilio_api_v2010.json"
LIST_PATH = "/2010-04-01/Accounts/{AccountSid}/Messages.json"
ITEM_PATH = "/2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json"

TWILIO_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["code", "message", "more_info", "status"],
    "additionalProperties": False,
    "properties": {
        "code": {"type": "integer"},
        "message": {"type": "string", "minLength": 1},
        "more_info": {"type": "string", "pattern": r"^https://www\.twilio\.com/docs/errors/\d+$"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
    },
}

_PHONE = re.compile(r"^(?:[a-z]+:)?\+[1-9]\d{1,14}$")
FORMATS = jsonschema.FormatChecker(formats=())


def _rfc2822(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parsed = parsedate_to_datetime(value)
    return parsed.tzinfo is not None and value.endswith("+0000")


def _phone(value: object) -> bool:
    return not isinstance(value, str) or bool(_PHONE.match(value))


def _relative_uri(value: object) -> bool:
    # Twilio's list URIs are relative to https://api.twilio.com.
    return not isinstance(value, str) or value.startswith("/2010-04-01/")


def _uri_map(value: object) -> bool:
    return not isinstance(value, dict) or all(isinstance(v, str) and v.startswith("/") for v in value.values())


def _currency(value: object) -> bool:
    return not isinstance(value, str) or bool(re.fullmatch(r"[A-Za-z]{3}", value))


# Twilio's own formats (plus "uri", which Twilio uses for relative URIs).
FORMATS.checkers.update(
    {
        "date-time-rfc-2822": (_rfc2822, (TypeError, ValueError)),
        "phone-number": (_phone, ()),
        "uri": (_relative_uri, ()),
        "uri-map": (_uri_map, ()),
        "currency": (_currency, ()),
    }
)


@cache
def spec() -> dict[str, Any]:
    if not SPEC_PATH.exists():
        pytest.fail(f"the official spec is missing: {SPEC_PATH}")
    loaded: dict[str, Any] = json.loads(SPEC_PATH.read_text())
    return loaded


def resolve(node: Any) -> Any:
    """Inline every local ``$ref`` (the Message schemas have no cycles)."""
    if isinstance(node, dict):
        if "$ref" in node:
            target: Any = spec()
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            return resolve(target)
        return {key: resolve(value) for key, value in node.items()}
    if isinstance(node, list):
        return [resolve(item) for item in node]
    return node


def strict(schema: dict[str, Any]) -> dict[str, Any]:
    """Every listed property required, nothing else allowed (top level)."""
    out = copy.deepcopy(schema)
    out["required"] = sorted(out["properties"])
    out["additionalProperties"] = False
    return out


def response_schema(path: str, method: str, status: str) -> dict[str, Any]:
    operation = spec()["paths"][path][method]
    schema: dict[str, Any] = resolve(operation["responses"][status]["content"]["application/json"]["schema"])
    for listed in ("messages", "calls"):
        if listed in schema.get("properties", {}):
            schema = strict(schema)
            schema["properties"][listed]["items"] = strict(schema["properties"][listed]["items"])
            return schema
    return strict(schema)


def validate(instance: Any, schema: dict[str, Any]) -> None:
    OAS30Validator(schema, format_checker=FORMATS).validate(instance)


def spec_examples(path: str, method: str, status: str) -> list[Any]:
    content = spec()["paths"][path][method]["responses"][status]["content"]["application/json"]
    return [example["value"] for example in content.get("examples", {}).values()]


# -- the schemas are Twilio's ------------------------------------------------


@pytest.mark.parametrize(
    ("path", "method", "status"),
    [(LIST_PATH, "post", "201"), (LIST_PATH, "get", "200"), (ITEM_PATH, "get", "200")],
)
def test_spec_examples_pass_the_strict_schema(path: str, method: str, status: str) -> None:
    examples = spec_examples(path, method, status)
    assert examples, "the spec should carry examples for this operation"
    for example in examples:
        validate(example, response_schema(path, method, status))


def test_message_schema_lists_the_properties_we_serve() -> None:
    schema = response_schema(LIST_PATH, "post", "201")
    assert set(schema["required"]) >= {"sid", "status", "num_segments", "date_created", "subresource_uris", "uri"}


# -- our answers ---------------------------------------------------------------


async def test_create_response_matches_spec(api: httpx.AsyncClient, sim: Simulator) -> None:
    resp = await api.post(messages_path(), data={"To": USER, "From": BOT, "Body": "Hello! 👍"})
    assert resp.status_code == 201
    body = resp.json()
    validate(body, response_schema(LIST_PATH, "post", "201"))
    assert body["direction"] == "outbound-api"
    assert body["status"] == "queued"
    assert re.fullmatch(r"SM[0-9a-f]{32}", body["sid"])
    assert body["num_segments"] == "1"
    assert body["price"] is None
    assert body["uri"] == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{body['sid']}.json"
    await sim.drain()


@pytest.mark.parametrize(
    "form",
    [
        {"To": USER, "From": BOT, "MediaUrl": "https://example.com/a.jpg"},
        {"To": USER, "MessagingServiceSid": SERVICE, "Body": "via service"},
        {
            "To": f"whatsapp:{USER}",
            "From": f"whatsapp:{BOT}",
            "ContentSid": REMINDER.sid,
            "ContentVariables": json.dumps({"1": "Ana", "2": "Tue 3pm"}),
        },
    ],
    ids=["mms", "messaging-service", "whatsapp-template"],
)
async def test_create_variants_match_spec(api: httpx.AsyncClient, sim: Simulator, form: dict[str, str]) -> None:
    resp = await api.post(messages_path(), data=form)
    assert resp.status_code == 201, resp.text
    validate(resp.json(), response_schema(LIST_PATH, "post", "201"))
    await sim.drain()
    fetched = await api.get(resp.json()["uri"])
    validate(fetched.json(), response_schema(ITEM_PATH, "get", "200"))


async def test_fetch_after_delivery_matches_spec(api: httpx.AsyncClient, sim: Simulator) -> None:
    created = (await api.post(messages_path(), data={"To": USER, "From": BOT, "Body": "hi"})).json()
    await sim.drain()
    resp = await api.get(created["uri"])
    assert resp.status_code == 200
    validate(resp.json(), response_schema(ITEM_PATH, "get", "200"))
    assert resp.json()["status"] == "delivered"
    assert resp.json()["date_sent"] is not None


async def test_failed_message_matches_spec(api: httpx.AsyncClient, sim: Simulator) -> None:
    from devtools.simulator import FailureRule

    sim.inject_failure(FailureRule(to=USER, error_code=30003))
    created = (await api.post(messages_path(), data={"To": USER, "From": BOT, "Body": "hi"})).json()
    await sim.drain()
    body = (await api.get(created["uri"])).json()
    validate(body, response_schema(ITEM_PATH, "get", "200"))
    assert (body["status"], body["error_code"]) == ("undelivered", 30003)
    assert isinstance(body["error_message"], str)


async def test_list_response_matches_spec(api: httpx.AsyncClient, sim: Simulator) -> None:
    for i in range(3):
        await api.post(messages_path(), data={"To": USER, "From": BOT, "Body": f"n{i}"})
    await sim.drain()
    resp = await api.get(messages_path(), params={"PageSize": 2})
    assert resp.status_code == 200
    page = resp.json()
    validate(page, response_schema(LIST_PATH, "get", "200"))
    assert [m["body"] for m in page["messages"]] == ["n2", "n1"]  # newest first
    assert (page["page"], page["page_size"], page["start"], page["end"]) == (0, 2, 0, 1)
    assert page["next_page_uri"] and page["previous_page_uri"] is None
    following = (await api.get(page["next_page_uri"])).json()
    validate(following, response_schema(LIST_PATH, "get", "200"))
    assert [m["body"] for m in following["messages"]] == ["n0"]
    assert following["next_page_uri"] is None and following["previous_page_uri"]


async def test_empty_list_matches_spec(api: httpx.AsyncClient) -> None:
    resp = await api.get(messages_path(), params={"To": "+14155550999"})
    validate(resp.json(), response_schema(LIST_PATH, "get", "200"))
    assert resp.json()["messages"] == []


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        ("POST", messages_path(), {"data": {"To": "+15005550001", "From": BOT, "Body": "x"}}, 400, 21211),
        ("POST", messages_path(), {"data": {"To": USER, "From": BOT}}, 400, 21619),
        ("GET", messages_path().replace(".json", "/SM" + "0" * 32 + ".json"), {}, 404, 20404),
        ("GET", messages_path(), {"headers": basic_auth(token="wrong")}, 401, 20003),
        ("GET", "/2010-04-01/Accounts/" + ACCOUNT_SID + "/Nope.json", {}, 404, 20404),
        ("PUT", messages_path(), {}, 405, 20004),
    ],
    ids=["invalid-to", "no-body", "unknown-sid", "bad-auth", "unknown-path", "bad-method"],
)
async def test_error_bodies_match_twilio(
    api: httpx.AsyncClient, method: str, path: str, kwargs: dict[str, Any], status: int, code: int
) -> None:
    resp = await api.request(method, path, **kwargs)
    assert resp.status_code == status
    jsonschema.validate(resp.json(), TWILIO_ERROR_SCHEMA)
    assert resp.json()["code"] == code
    assert resp.json()["status"] == status


# -- the contract test has teeth -----------------------------------------------


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b.pop("num_segments"),
        lambda b: b.update(num_segments=1),
        lambda b: b.update(error_code="30003"),
        lambda b: b.update(status="sending-ish"),
        lambda b: b.update(direction="outbound"),
        lambda b: b.update(date_created="2026-03-02T09:00:00Z"),
        lambda b: b.update(sid="SM123"),
        lambda b: b.update(extra_field=True),
        lambda b: b.update(subresource_uris=None) or b.pop("price"),
    ],
    ids=[
        "missing",
        "int-segments",
        "str-error-code",
        "bad-status",
        "bad-direction",
        "iso-date",
        "short-sid",
        "extra",
        "missing-price",
    ],
)
async def test_contract_rejects_broken_bodies(api: httpx.AsyncClient, sim: Simulator, mutate: Any) -> None:
    body = (await api.post(messages_path(), data={"To": USER, "From": BOT, "Body": "hi"})).json()
    await sim.drain()
    mutate(body)
    with pytest.raises(jsonschema.ValidationError):
        validate(body, response_schema(LIST_PATH, "post", "201"))


# -- the Calls resource ----------------------------------------------------------

CALLS_PATH = "/2010-04-01/Accounts/{AccountSid}/Calls.json"
CALL_PATH = "/2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json"


async def test_calls_match_spec(api: httpx.AsyncClient, sim: Simulator) -> None:
    base = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls"
    created = await api.post(f"{base}.json", data={"To": USER, "From": BOT,
                                                   "Twiml": "<Response><Say>Hi there</Say></Response>"})
    assert created.status_code == 201
    validate(created.json(), response_schema(CALLS_PATH, "post", "201"))
    fetched = await api.get(f"{base}/{created.json()['sid']}.json")
    validate(fetched.json(), response_schema(CALL_PATH, "get", "200"))
    listed = await api.get(f"{base}.json", params={"Status": "completed"})
    validate(listed.json(), response_schema(CALLS_PATH, "get", "200"))
    assert [c["sid"] for c in listed.json()["calls"]] == [created.json()["sid"]]
    missing = await api.post(f"{base}.json", data={"To": USER, "From": BOT})
    assert missing.status_code == 400 and missing.json()["code"] == 21205
