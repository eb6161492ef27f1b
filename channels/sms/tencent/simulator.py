"""A local Tencent Cloud SMS API: checks TC3-HMAC-SHA256 like the real one, answers
SendSms / PullSmsSendStatusByPhoneNumber / DescribeSmsSignList in Tencent's shapes, and
pushes status arrays and reply objects to crmbot's callback URL."""

from __future__ import annotations

import hmac
import json
import re
import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from channels.sms.phone import InvalidPhone, national_digits, normalise_phone
from channels.sms.simulation import GatewaySimulator, SimulatedSms
from conversations.types import AccountRef

from .signing import tc3_signature, tc3_string_to_sign

CHINA = ZoneInfo("Asia/Shanghai")
_AUTH = re.compile(r"Credential=([^/]+)/[^,]+, SignedHeaders=([^,]+), Signature=([0-9a-f]+)")

DEFAULT_TEMPLATES: list[dict[str, Any]] = [
    {"code": "1100001", "kind": "notification", "text": "您的订单{1}已发货，请注意查收"},
    {"code": "1100002", "kind": "notification", "text": "{1}"},
    {"code": "1100003", "kind": "marketing", "text": "双十一全场五折，拒收请回复R"},
]


class TencentSimulator(GatewaySimulator):
    def __init__(
        self,
        *,
        secret_id: str = "AKIDsimulator",  # noqa: S107  # the simulator's own id
        secret_key: str = "simulator-key",  # noqa: S107  # the simulator's own key
        sdk_app_id: str = "1400006666",
        sign_name: str = "测试签名",
        templates: list[dict[str, Any]] | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self.secret_id = secret_id
        self.secret_key = secret_key
        self.sdk_app_id = sdk_app_id
        self.sign_name = sign_name
        self.templates = {t["code"]: t for t in (templates or DEFAULT_TEMPLATES)}

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/", self._handle)
        return app

    def _answer(self, response: dict[str, Any]) -> web.Response:
        return web.json_response({"Response": {**response, "RequestId": str(uuid.uuid4())}})

    def _error(self, code: str, message: str) -> web.Response:
        return self._answer({"Error": {"Code": code, "Message": message}})

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        body = await request.read()
        match = _AUTH.search(request.headers.get("Authorization", ""))
        if match is None:
            return self._error(
                "AuthFailure.SignatureFailure", "The provided credentials could not be validated."
            )
        if match.group(1) != self.secret_id:
            return self._error("AuthFailure.SecretIdNotFound", "The SecretId is not found.")
        timestamp = int(request.headers.get("X-TC-Timestamp", "0"))
        to_sign = tc3_string_to_sign(
            request.headers.get("Host", ""),
            body,
            timestamp,
            "sms",
            request.headers.get("Content-Type", ""),
        )
        if not hmac.compare_digest(
            tc3_signature(self.secret_key, timestamp, "sms", to_sign), match.group(3)
        ):
            return self._error(
                "AuthFailure.SignatureFailure", "The provided credentials could not be validated."
            )
        action = request.headers.get("X-TC-Action", "")
        data = json.loads(body or b"{}")
        if data.get("SmsSdkAppId", self.sdk_app_id) != self.sdk_app_id:
            return self._error("InvalidParameterValue.SdkAppIdNotExist", "SdkAppId not exist.")
        if action == "SendSms":
            return await self._send(data)
        if action == "PullSmsSendStatusByPhoneNumber":
            return self._pull(data)
        if action == "DescribeSmsSignList":
            return self._answer({"DescribeSignListStatusSet": []})
        return self._error("InvalidAction", f"unknown action {action}")

    async def _send(self, data: dict[str, Any]) -> web.Response:
        if self.rate_limited():
            return self._error("RequestLimitExceeded", "Your current request times exceeds limit.")
        phones = data.get("PhoneNumberSet") or []
        injected = self.take_error()

        def status(code: str, message: str, phone: str = "", **extra: Any) -> dict[str, Any]:
            return {
                "SerialNo": "",
                "PhoneNumber": phone,
                "Fee": 0,
                "SessionContext": data.get("SessionContext", ""),
                "Code": code,
                "Message": message,
                "IsoCode": "CN",
                **extra,
            }

        if injected is not None:
            if injected.code.startswith(
                (
                    "AuthFailure",
                    "RequestLimitExceeded",
                    "InternalError",
                    "InvalidParameterValue.Sdk",
                )
            ):
                return self._error(injected.code, injected.message)
            return self._answer(
                {"SendStatusSet": [status(injected.code, injected.message, str(phones[:1]))]}
            )
        if data.get("SignName") != self.sign_name:
            return self._answer(
                {
                    "SendStatusSet": [
                        status("FailedOperation.SignatureIncorrectOrUnapproved", "签名未审批")
                    ]
                }
            )
        template = self.templates.get(str(data.get("TemplateId")))
        if template is None:
            return self._answer(
                {
                    "SendStatusSet": [
                        status("FailedOperation.TemplateIncorrectOrUnapproved", "模板未审批")
                    ]
                }
            )
        values = [str(v) for v in data.get("TemplateParamSet") or []]
        text = str(template["text"])
        wanted = sorted(set(re.findall(r"\{(\d+)\}", text)), key=int)
        if len(values) != len(wanted):
            return self._answer(
                {
                    "SendStatusSet": [
                        status(
                            "FailedOperation.TemplateParamSetNotMatchApprovedTemplate",
                            "参数个数不匹配",
                        )
                    ]
                }
            )
        for name, value in zip(wanted, values, strict=True):
            text = text.replace("{" + name + "}", value)
        results = []
        for raw in phones:
            try:
                phone = normalise_phone(str(raw))
            except InvalidPhone:
                results.append(
                    status("InvalidParameterValue.IncorrectPhoneNumber", "手机号格式错误", str(raw))
                )
                continue
            sms = self.accept(
                SimulatedSms(
                    self.next_id("2433:"),
                    phone,
                    f"【{self.sign_name}】{text}",
                    data.get("SessionContext"),
                    self.clock(),
                    template["code"],
                    dict(zip(wanted, values, strict=True)),
                )
            )
            results.append(status("Ok", "send success", phone, SerialNo=sms.message_id, Fee=1))
        await self.maybe_hold()
        return self._answer({"SendStatusSet": results})

    def _pull(self, data: dict[str, Any]) -> web.Response:
        phone = normalise_phone(str(data.get("PhoneNumber", "")))
        begin, end = int(data.get("BeginTime", 0)), int(data.get("EndTime", 2**31))
        found = []
        for sms in self.sent:
            if sms.phone != phone or not begin <= sms.sent_at <= end or sms.status == "pending":
                continue  # like the real API: only sends whose report is in
            country, national = national_digits(phone)
            found.append(
                {
                    "UserReceiveTime": datetime.fromtimestamp(sms.sent_at, CHINA).strftime(
                        "%Y-%m-%d %H:%M:%S"
                    ),
                    "CountryCode": country,
                    "SubscriberNumber": national,
                    "PhoneNumber": phone,
                    "SerialNo": sms.message_id,
                    "ReportStatus": "SUCCESS" if sms.status == "delivered" else "FAIL",
                    "Description": "用户短信送达成功" if sms.status == "delivered" else "失败",
                    "SessionContext": sms.key or "",
                }
            )
        return self._answer({"PullSmsSendStatusSet": found})

    # ------------------------------------------------------------------ pushes

    def status_item(
        self,
        message_id: str,
        *,
        success: bool = True,
        errmsg: str = "DELIVRD",
        description: str = "用户短信送达成功",
    ) -> dict[str, Any]:
        sms = self.find(message_id)
        sms.status = "delivered" if success else "failed"
        country, national = national_digits(sms.phone)
        return {
            "user_receive_time": datetime.fromtimestamp(self.clock(), CHINA).strftime(
                "%Y-%m-%d %H:%M:%S"
            ),
            "nationcode": country,
            "mobile": national,
            "report_status": "SUCCESS" if success else "FAIL",
            "errmsg": errmsg,
            "description": description,
            "sid": sms.message_id,
        }

    async def push_receipt(
        self,
        message_id: str,
        *,
        success: bool = True,
        errmsg: str = "DELIVRD",
        description: str = "用户短信送达成功",
    ) -> tuple[int, str]:
        item = self.status_item(message_id, success=success, errmsg=errmsg, description=description)
        return await self.post_callback(
            json.dumps([item], ensure_ascii=False).encode(), "application/json"
        )

    def reply_item(self, phone: str, text: str) -> dict[str, Any]:
        country, national = national_digits(normalise_phone(phone))
        return {
            "extend": "",
            "mobile": national,
            "nationcode": country,
            "sign": self.sign_name,
            "text": text,
            "time": int(self.clock()),
        }

    async def push_reply(self, phone: str, text: str) -> tuple[int, str]:
        return await self.push_object(self.reply_item(phone, text))

    async def push_object(self, item: dict[str, Any]) -> tuple[int, str]:
        return await self.post_callback(
            json.dumps(item, ensure_ascii=False).encode(), "application/json"
        )


def simulated_account(
    sim: TencentSimulator, *, account_id: int = 1, name: str = "腾讯云短信（模拟）", **config: Any
) -> AccountRef:
    """An `sms.tencent` AccountRef whose API base is the simulator."""
    return AccountRef(
        id=account_id,
        kind="sms.tencent",
        name=name,
        config={
            "secret_id": sim.secret_id,
            "sdk_app_id": sim.sdk_app_id,
            "sign_name": sim.sign_name,
            "templates": list(sim.templates.values()),
            "free_text_template": "1100002",
            "api_base": sim.url,
            "timeout_seconds": 2,
            **config,
        },
        secrets={"secret_key": sim.secret_key},
    )
