"""devtools.replay.asgi: a direct call sees what httpx's ASGITransport would send."""

from __future__ import annotations

import json
from typing import Any

import httpx

from devtools.replay.asgi import AppClient, call_app
from devtools.replay.transport import SimulatorHttpClient


async def echo(scope: Any, receive: Any, send: Any) -> None:
    message = await receive()
    seen = {
        "method": scope["method"], "path": scope["path"], "raw_path": scope["raw_path"].decode(),
        "query": scope["query_string"].decode(), "scheme": scope["scheme"], "server": list(scope["server"]),
        "headers": {k.decode(): v.decode() for k, v in scope["headers"]}, "body": message["body"].decode(),
    }
    await send({"type": "http.response.start", "status": 201,
                "headers": [(b"content-type", b"application/json"), (b"x-seen", b"1")]})
    await send({"type": "http.response.body", "body": json.dumps(seen).encode()})


async def test_call_app_sends_the_request_httpx_would() -> None:
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": "abc="}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=echo), base_url="http://replay.internal") as http:
        expected = await http.post("/twilio/messages%20x?a=1", content=b"Body=hi", headers=headers)
    got = await call_app(echo, "POST", "http://replay.internal/twilio/messages%20x?a=1", headers=headers,
                         body=b"Body=hi")
    assert (got.status_code, got.headers["x-seen"]) == (201, "1")
    want = expected.json()
    seen = got.json()
    want["headers"].pop("accept-encoding"), seen["headers"].pop("accept-encoding")  # which decoders are installed
    assert seen == want


async def test_app_client_posts_directly_and_otherwise_through_httpx() -> None:
    async with AppClient(echo, base_url="http://replay.internal") as http:
        direct = await http.post("/twilio/status", content=b"MessageStatus=sent", headers={"A": "b"})
        other = await http.post("/twilio/status", data={"MessageStatus": "sent"})
    assert direct.json()["body"] == other.json()["body"] == "MessageStatus=sent"
    assert direct.json()["headers"]["a"] == "b"


async def test_the_sdk_client_encodes_forms_params_and_auth_as_httpx_did() -> None:
    client = SimulatorHttpClient(echo)
    response = await client.request("post", "https://api.twilio.replay.test/2010-04-01/Messages.json",
                                    params={"PageSize": 2, "To": "+1 415"}, data={"Body": "hi there",
                                    "MediaUrl": ["https://a", "https://b"], "Flag": True}, auth=("AC1", "tok"))
    seen = json.loads(response.text)
    assert response.status_code == 201
    assert seen["query"] == "PageSize=2&To=%2B1%20415"
    assert seen["body"] == "Body=hi+there&MediaUrl=https%3A%2F%2Fa&MediaUrl=https%3A%2F%2Fb&Flag=true"
    assert seen["headers"]["authorization"] == httpx.BasicAuth("AC1", "tok")._auth_header
    assert seen["headers"]["content-type"] == "application/x-www-form-urlencoded"
