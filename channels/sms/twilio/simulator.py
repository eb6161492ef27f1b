"""A local Twilio Messages API: Basic auth, form posts, Twilio's JSON shapes and error
codes, and signed webhooks (X-Twilio-Signature, SHA-1 or the SHA-256 SharedKey variant)
to crmbot's callback URL."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from channels.sms.phone import InvalidPhone, normalise_phone
from channels.sms.simulation import GatewaySimulator, SimulatedSms
from conversations.types import AccountRef

from .signing import compute_signature


class TwilioSimulator(GatewaySimulator):
    def __init__(
        self,
        *,
        account_sid: str = "AC00000000000000000000000000000001",
        auth_token: str = "simulator-token",  # noqa: S107  # the simulator's own token
        from_number: str = "+14155550100",
        shared_key: str | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.from_number = from_number
        self.shared_key = shared_key
        self.status_callbacks: dict[str, str] = {}

    def build_app(self) -> web.Application:
        app = web.Application()
        path = f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        app.router.add_post(path, self._send)
        app.router.add_get(path, self._list)
        app.router.add_get(f"/2010-04-01/Accounts/{self.account_sid}.json", self._account)
        return app

    def _authorised(self, request: web.Request) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return request.headers.get("Authorization", "") == f"Basic {expected}"

    @staticmethod
    def _error(code: int, message: str, status: int = 400) -> web.Response:
        return web.json_response(
            {
                "code": code,
                "message": message,
                "status": status,
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
            },
            status=status,
        )

    async def _account(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return self._error(20003, "Authenticate", 401)
        return web.json_response({"sid": self.account_sid, "status": "active"})

    def _resource(self, sms: SimulatedSms) -> dict[str, Any]:
        return {
            "sid": sms.message_id,
            "to": sms.phone,
            "from": self.from_number,
            "body": sms.text,
            "status": {"pending": "sent", "delivered": "delivered", "failed": "undelivered"}[
                sms.status
            ],
            "num_segments": "1",
            "account_sid": self.account_sid,
            "date_created": format_datetime(datetime.fromtimestamp(sms.sent_at, UTC), usegmt=True),
        }

    async def _send(self, request: web.Request) -> web.Response:
        self.requests += 1
        if not self._authorised(request):
            return self._error(20003, "Authenticate", 401)
        if self.rate_limited():
            return self._error(20429, "Too Many Requests", 429)
        form = await request.post()
        injected = self.take_error()
        if injected is not None:
            return self._error(
                int(injected.code),
                injected.message,
                injected.http_status if injected.http_status != 200 else 400,
            )
        to = str(form.get("To", ""))
        try:
            phone = normalise_phone(to, "US")
        except InvalidPhone:
            return self._error(21211, f"The 'To' number {to} is not a valid phone number.")
        callback = str(form.get("StatusCallback", "")) or None
        sms = self.accept(
            SimulatedSms(
                self.next_id("SM"), phone, str(form.get("Body", "")), callback, self.clock()
            )
        )
        if callback:
            self.status_callbacks[sms.message_id] = callback
        await self.maybe_hold()
        return web.json_response(self._resource(sms), status=201)

    async def _list(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return self._error(20003, "Authenticate", 401)
        to = request.query.get("To")
        items = [self._resource(s) for s in self.sent if to is None or s.phone == to]
        return web.json_response({"messages": items, "page": 0, "page_size": 50})

    # ------------------------------------------------------------------ webhooks

    def _signed_headers(self, url: str, params: dict[str, str]) -> dict[str, str]:
        headers = {"Date": format_datetime(datetime.fromtimestamp(self.clock(), UTC), usegmt=True)}
        if self.shared_key:
            headers["X-Twilio-Webhooks-Signature-Settings"] = (
                "key=webhooks_sharedkey_sim,algorithm=HMAC_SHA256"
            )
            headers["X-Twilio-Signature"] = compute_signature(
                self.shared_key, url, params.items(), "HMAC_SHA256"
            )
        else:
            headers["X-Twilio-Signature"] = compute_signature(self.auth_token, url, params.items())
        return headers

    async def push_form(self, params: dict[str, str], url: str | None = None) -> tuple[int, str]:
        target = url or self.callback_url
        assert target is not None
        return await self.post_callback(
            urlencode(params).encode(),
            "application/x-www-form-urlencoded",
            self._signed_headers(target, params),
            target,
        )

    async def push_reply(self, phone: str, text: str) -> tuple[int, str]:
        sid = self.next_id("SM")
        return await self.push_form({
            "MessageSid": sid, "SmsSid": sid, "SmsMessageSid": sid, "AccountSid": self.account_sid,
            "From": normalise_phone(phone), "To": self.from_number, "Body": text, "NumMedia": "0",
            "NumSegments": "1", "SmsStatus": "received", "ApiVersion": "2010-04-01",
        })  # fmt: skip

    async def push_receipt(
        self, message_id: str, *, status: str = "delivered", error_code: str | None = None
    ) -> tuple[int, str]:
        sms = self.find(message_id)
        sms.status = "delivered" if status == "delivered" else "failed"
        params = {
            "MessageSid": sms.message_id,
            "SmsSid": sms.message_id,
            "AccountSid": self.account_sid,
            "From": self.from_number,
            "To": sms.phone,
            "MessageStatus": status,
            "SmsStatus": status,
            "ApiVersion": "2010-04-01",
        }
        if error_code:
            params["ErrorCode"] = error_code
        return await self.push_form(params, self.status_callbacks.get(message_id))


def simulated_account(
    sim: TwilioSimulator, *, account_id: int = 1, name: str = "Twilio (simulated)", **config: Any
) -> AccountRef:
    secrets = {"auth_token": sim.auth_token}
    if sim.shared_key:
        secrets["webhook_shared_key"] = sim.shared_key
    return AccountRef(
        id=account_id, kind="sms.twilio", name=name,
        config={"account_sid": sim.account_sid, "from_number": sim.from_number, "api_base": sim.url,
                "timeout_seconds": 2, "default_region": "US", **config},
        secrets=secrets,
    )  # fmt: skip
