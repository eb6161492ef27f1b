"""Twilio: X-Twilio-Signature against the docs' vector and the twilio SDK's
RequestValidator (test-only oracle), Messages API via the simulator, store flow."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select

from channels.base import BadSignature, ChannelContext, RawRequest
from channels.sms.twilio.adapter import TwilioSmsAdapter
from channels.sms.twilio.errors import SEND_ERRORS
from channels.sms.twilio.signing import compute_signature
from channels.sms.twilio.simulator import TwilioSimulator, simulated_account
from conversations import consent
from conversations.db import Database
from conversations.models import OutboxItem
from conversations.types import MessageKind, Outbound, Purpose, SendOutcome
from tests.channels.sms.harness import (
    CallbackHarness,
    create_account,
    dispatch,
    messages_of,
    queue_text,
)

validator = pytest.importorskip("twilio.request_validator")
PHONE = "+14155552671"
DOC_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
DOC_PARAMS = {"CallSid": "CA1234567890ABCDE", "Caller": "+12349013030", "Digits": "1234",
              "From": "+12349013030", "To": "+18005551212"}  # fmt: skip


def test_signature_matches_the_documented_example() -> None:
    assert compute_signature("12345", DOC_URL, DOC_PARAMS.items()) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


@pytest.mark.parametrize("algorithm", ["HMAC_SHA1", "HMAC_SHA256"])
def test_signature_agrees_with_the_sdk(algorithm: str) -> None:
    params = {**DOC_PARAMS, "Body": "退订 ＴＤ", "NumMedia": "0"}
    ours = compute_signature("tok", "https://crm.example.com/cb?x=1", params.items(), algorithm)
    sdk = validator.RequestValidator("tok").compute_signature(
        "https://crm.example.com/cb?x=1", params, algorithm
    )
    assert ours == sdk


def _signed(
    adapter_token: str, url: str, params: dict[str, str], signed_url: str | None = None
) -> RawRequest:
    sig = validator.RequestValidator(adapter_token).compute_signature(signed_url or url, params)
    return RawRequest(
        "POST", url, "/cb", {}, {"X-Twilio-Signature": sig}, urlencode(params).encode(), "127.0.0.1"
    )


@pytest.fixture
async def sim() -> AsyncIterator[TwilioSimulator]:
    async with TwilioSimulator() as s:
        yield s


async def test_verify_accepts_the_sdk_signature_and_the_port_variant(
    sim: TwilioSimulator, ctx: ChannelContext
) -> None:
    adapter = TwilioSmsAdapter(simulated_account(sim), ctx)
    url = "https://crm.example.com/callbacks/sms.twilio/t"
    await adapter.verify(_signed(sim.auth_token, url, DOC_PARAMS))
    await adapter.verify(
        _signed(
            sim.auth_token, url, DOC_PARAMS, "https://crm.example.com:443/callbacks/sms.twilio/t"
        )
    )


async def test_verify_rejects_a_tampered_parameter_and_a_changed_url(
    sim: TwilioSimulator, ctx: ChannelContext
) -> None:
    adapter = TwilioSmsAdapter(simulated_account(sim), ctx)
    good = _signed(sim.auth_token, "https://crm.example.com/cb", DOC_PARAMS)
    with pytest.raises(BadSignature):
        await adapter.verify(replace(good, body=good.body.replace(b"1234", b"9999")))
    with pytest.raises(BadSignature):
        await adapter.verify(replace(good, url="https://crm.example.com/cb2"))
    with pytest.raises(BadSignature):
        await adapter.verify(replace(good, headers={}))


async def test_sha256_shared_key_webhooks_are_verified(ctx: ChannelContext) -> None:
    async with TwilioSimulator(shared_key="shared-secret") as sim:
        adapter = TwilioSmsAdapter(simulated_account(sim), ctx)
        sig = validator.RequestValidator("shared-secret").compute_signature(
            "https://c.example/cb", DOC_PARAMS, "HMAC_SHA256"
        )
        headers = {
            "X-Twilio-Signature": sig,
            "X-Twilio-Webhooks-Signature-Settings": "key=webhooks_sharedkey_x,algorithm=HMAC_SHA256",
        }
        raw = RawRequest(
            "POST", "https://c.example/cb", "/cb", {}, headers, urlencode(DOC_PARAMS).encode()
        )
        await adapter.verify(raw)
        with pytest.raises(BadSignature):
            await adapter.verify(
                replace(
                    raw,
                    headers={
                        **headers,
                        "X-Twilio-Signature": compute_signature(
                            sim.auth_token, "https://c.example/cb", DOC_PARAMS.items()
                        ),
                    },
                )
            )


def _message(
    adapter: TwilioSmsAdapter, key: str = "k1", purpose: Purpose = Purpose.REPLY
) -> Outbound:
    return Outbound(key=key, account=adapter.account, recipient="(415) 555-2671", kind=MessageKind.TEXT,
                    text="Your samples shipped", purpose=purpose)  # fmt: skip


async def test_free_text_marketing_gets_the_stop_wording_once(
    sim: TwilioSimulator, ctx: ChannelContext
) -> None:
    adapter = TwilioSmsAdapter(simulated_account(sim), ctx)
    assert (
        await adapter.send(_message(adapter, purpose=Purpose.MARKETING))
    ).outcome == SendOutcome.SENT
    assert (
        await adapter.send(_message(adapter, purpose=Purpose.MARKETING))
    ).outcome == SendOutcome.SENT
    assert sim.sent[0].text == "Your samples shipped Reply STOP to opt out"
    assert sim.count_for(PHONE) == 1


@pytest.mark.parametrize("code", sorted(SEND_ERRORS))
async def test_every_gateway_error_maps_to_its_outcome(
    code: str, sim: TwilioSimulator, ctx: ChannelContext
) -> None:
    adapter = TwilioSmsAdapter(simulated_account(sim), ctx)
    sim.fail_next(code, "simulated")
    result = await adapter.send(_message(adapter))
    assert (result.outcome, result.error_code) == (SEND_ERRORS[code].outcome, code)


async def test_timeout_is_reconciled_from_the_message_list(
    sim: TwilioSimulator, ctx: ChannelContext
) -> None:
    adapter = TwilioSmsAdapter(simulated_account(sim, timeout_seconds=0.3), ctx)
    sim.hold_responses()
    assert (await adapter.send(_message(adapter))).outcome == SendOutcome.UNKNOWN
    sim.release()
    again = await adapter.send(_message(adapter))
    assert again.outcome == SendOutcome.SENT and again.provider_message_id == sim.sent[0].message_id
    assert sim.count_for(PHONE) == 1


async def test_send_receipt_reply_and_stop(
    db: Database, harness: CallbackHarness, sim: TwilioSimulator, ctx: ChannelContext
) -> None:
    ref = simulated_account(sim)
    row = await create_account(db, ref, token="tok-twilio")
    adapter_ref = replace(ref, id=row.id)
    sim.callback_url = harness.add(
        "sms.twilio", "tok-twilio", row.id, TwilioSmsAdapter(adapter_ref, ctx)
    )
    adapter = TwilioSmsAdapter(
        replace(
            adapter_ref, config={**adapter_ref.config, "status_callback_url": sim.callback_url}
        ),
        ctx,
    )
    await queue_text(db, row, PHONE, "out-1", {}, text="Hello from crmbot")
    assert (await dispatch(db, adapter, adapter.account, "out-1")).outcome == SendOutcome.SENT
    assert (await sim.push_receipt(sim.sent[0].message_id))[0] == 200
    await sim.push_reply(PHONE, "When?")
    await sim.push_reply(PHONE, " stop ")
    messages = await messages_of(db, row.id)
    assert messages[0].status == "delivered"
    assert [m.text for m in messages if m.direction == "in"] == ["When?", " stop "]
    async with db.reading() as s:
        assert await consent.is_suppressed(s, channel="sms", address=PHONE, scope=sim.from_number)
        # Twilio answers STOP itself and blocks us: no confirmation of our own
        assert await s.scalar(select(func.count()).select_from(OutboxItem)) == 1
