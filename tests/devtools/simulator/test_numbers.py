"""Contract: the simulator's IncomingPhoneNumbers answers validate against Twilio's official spec,
and the official SDK reads and updates them."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import jsonschema
from openapi_schema_validator import OAS30Validator

from devtools.simulator import Simulator
from tests.devtools.simulator.conftest import ACCOUNT_SID, BOT
from tests.devtools.simulator.test_contract import FORMATS, resolve, spec, strict

LIST_PATH = "/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers.json"
ITEM_PATH = "/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers/{Sid}.json"

# The spec uses format "uri" both for Twilio's relative URIs and for your absolute webhook URLs.
NUMBER_FORMATS = jsonschema.FormatChecker(formats=())
NUMBER_FORMATS.checkers.update(copy.copy(FORMATS.checkers))
NUMBER_FORMATS.checkers["uri"] = (
    lambda v: not isinstance(v, str) or v == "" or v.startswith(("/2010-04-01/", "https://", "http://")), ())
NUMBER_FORMATS.checkers["phone-number-capabilities"] = (
    lambda v: not isinstance(v, dict) or all(isinstance(x, bool) for x in v.values()), ())
NUMBER_FORMATS.checkers["http-method"] = (lambda v: v in {"GET", "POST", None}, ())


def _unset_sids(number_schema: dict[str, Any]) -> dict[str, Any]:
    # Twilio's own example sends "" for an unset SID (sms_application_sid): allow "" beside the pattern.
    for prop in number_schema["properties"].values():
        if "pattern" in prop and prop.get("nullable"):
            prop["pattern"] = f"^$|{prop['pattern']}"
            prop.pop("minLength", None)
    return number_schema


def schema(path: str, method: str, status: str) -> dict[str, Any]:
    operation = spec()["paths"][path][method]
    found: dict[str, Any] = resolve(operation["responses"][status]["content"]["application/json"]["schema"])
    if "incoming_phone_numbers" in found.get("properties", {}):
        found = strict(found)
        found["properties"]["incoming_phone_numbers"]["items"] = _unset_sids(strict(
            found["properties"]["incoming_phone_numbers"]["items"]))
        return found
    return _unset_sids(strict(found))


def validate(instance: Any, path: str, method: str, status: str) -> None:
    OAS30Validator(schema(path, method, status), format_checker=NUMBER_FORMATS).validate(instance)


async def test_list_fetch_and_update_match_the_spec(sim: Simulator, api: httpx.AsyncClient) -> None:
    number = sim.account.add_number(BOT)
    base = f"/2010-04-01/Accounts/{ACCOUNT_SID}/IncomingPhoneNumbers"
    listed = await api.get(f"{base}.json", params={"PhoneNumber": BOT})
    assert listed.status_code == 200
    validate(listed.json(), LIST_PATH, "get", "200")
    assert [n["sid"] for n in listed.json()["incoming_phone_numbers"]] == [number.sid]

    updated = await api.post(f"{base}/{number.sid}.json",
                             data={"SmsUrl": "https://bot.example.com/twilio/messages", "SmsMethod": "post"})
    assert updated.status_code == 200
    validate(updated.json(), ITEM_PATH, "post", "200")
    assert updated.json()["sms_url"] == "https://bot.example.com/twilio/messages"
    assert updated.json()["sms_method"] == "POST"

    fetched = await api.get(f"{base}/{number.sid}.json")
    validate(fetched.json(), ITEM_PATH, "get", "200")

    bad = await api.post(f"{base}/{number.sid}.json", data={"VoiceUrl": "ftp://nope"})
    assert bad.status_code == 400 and bad.json()["code"] == 21402
    missing = await api.get(f"{base}/PN{'0' * 32}.json")
    assert missing.status_code == 404 and missing.json()["code"] == 20404
    denied = await api.get(f"{base}.json", headers={"Authorization": "Basic eDp5"})
    assert denied.status_code == 401


def test_the_spec_examples_pass_the_same_strict_schema() -> None:
    content = spec()["paths"][ITEM_PATH]["get"]["responses"]["200"]["content"]["application/json"]
    examples = [e["value"] for e in content.get("examples", {}).values()]
    for example in examples:
        validate(example, ITEM_PATH, "get", "200")
    assert examples, "the spec should carry an example for this operation"
