"""A local Aliyun SMS gateway: checks ACS3 / RPC signatures like the real one, answers
SendSms and QuerySendDetails in Aliyun's shapes and codes, and pushes SmsReport/SmsUp
JSON arrays to crmbot's callback URL.

    async with AliyunSimulator(callback_url=...) as sim:
        account = simulated_account(sim)        # AccountRef config pointing at sim.url
        ...
        await sim.push_receipt(biz_id)          # or push_reply("+8613800138000", "退订")
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from channels.sms.phone import InvalidPhone, normalise_phone
from channels.sms.simulation import GatewaySimulator, SimulatedSms
from conversations.types import AccountRef

from .signing import acs3_string_to_sign, parse_authorization, rpc_signature

CHINA = ZoneInfo("Asia/Shanghai")

DEFAULT_TEMPLATES: list[dict[str, Any]] = [
    {"code": "SMS_100001", "kind": "notification", "text": "您的订单${order}已发货，请注意查收"},
    {"code": "SMS_100002", "kind": "notification", "text": "${content}"},
    {"code": "SMS_100003", "kind": "marketing", "text": "尊敬的会员，双十一全场五折"},
    {"code": "SMS_100004", "kind": "notification", "text": "您已退订本签名的营销短信"},
]


class AliyunSimulator(GatewaySimulator):
    def __init__(
        self,
        *,
        access_key_id: str = "LTAI5tSimulatorKey",
        access_key_secret: str = "simulator-secret",  # noqa: S107  # a simulator's own key
        sign_name: str = "测试签名",
        templates: list[dict[str, Any]] | None = None,
        per_number_daily_limit: int | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.sign_name = sign_name
        self.templates = {t["code"]: t for t in (templates or DEFAULT_TEMPLATES)}
        self.per_number_daily_limit = per_number_daily_limit

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/", self._handle)
        return app

    # ------------------------------------------------------------------ signature

    def _check_signature(self, request: web.Request, body: bytes) -> dict[str, Any] | None:
        """None if the signature is right, else the gateway's error body."""
        query = {k: v for k, v in request.query.items()}
        auth = request.headers.get("Authorization", "")
        if auth.startswith("ACS3-"):
            parts = parse_authorization(auth)
            if parts.get("Credential") != self.access_key_id:
                return {
                    "Code": "InvalidAccessKeyId.NotFound",
                    "Message": "Specified access key is not found.",
                }
            if request.headers.get("x-acs-content-sha256") != hashlib.sha256(body).hexdigest():
                return {"Code": "IncompleteSignature", "Message": "content sha256 mismatch"}
            names = parts.get("SignedHeaders", "").split(";")
            headers = {n: request.headers.get(n, "") for n in names}
            to_sign, _ = acs3_string_to_sign(request.method, request.path, query, headers, body)
            expected = hmac.new(
                self.access_key_secret.encode(), to_sign.encode(), hashlib.sha256
            ).hexdigest()
            if not hmac.compare_digest(expected, parts.get("Signature", "")):
                return {
                    "Code": "SignatureDoesNotMatch",
                    "Message": "Specified signature is not matched with our calculation.",
                }
            return None
        if "Signature" in query:
            if query.get("AccessKeyId") != self.access_key_id:
                return {
                    "Code": "InvalidAccessKeyId.NotFound",
                    "Message": "Specified access key is not found.",
                }
            expected = rpc_signature(request.method, query, self.access_key_secret)
            if not hmac.compare_digest(expected, query["Signature"]):
                return {
                    "Code": "SignatureDoesNotMatch",
                    "Message": "Specified signature is not matched with our calculation.",
                }
            return None
        return {"Code": "MissingSignature", "Message": "Signature is mandatory for this action."}

    # ------------------------------------------------------------------ API

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        body = await request.read()
        request_id = str(uuid.uuid4()).upper()
        problem = self._check_signature(request, body)
        if problem is not None:
            status = 404 if problem["Code"].startswith("InvalidAccessKeyId") else 400
            return web.json_response({**problem, "RequestId": request_id}, status=status)
        action = request.headers.get("x-acs-action") or request.query.get("Action", "")
        params = dict(request.query)
        if action == "SendSms":
            return await self._send(params, request_id)
        if action == "QuerySendDetails":
            return web.json_response(self._query(params, request_id))
        return web.json_response(
            {"Code": "InvalidAction.NotFound", "Message": action, "RequestId": request_id},
            status=404,
        )

    def _error(self, code: str, message: str, request_id: str, status: int = 200) -> web.Response:
        return web.json_response(
            {"Code": code, "Message": message, "RequestId": request_id}, status=status
        )

    async def _send(self, params: Mapping[str, str], request_id: str) -> web.Response:
        if self.rate_limited():
            return self._error(
                "Throttling.User", "Request was denied due to user flow control.", request_id, 400
            )
        injected = self.take_error()
        if injected is not None:
            return self._error(injected.code, injected.message, request_id, injected.http_status)
        if params.get("SignName") != self.sign_name:
            return self._error(
                "isv.SMS_SIGNATURE_ILLEGAL", "签名不合法(不存在或被拉黑)", request_id
            )
        template = self.templates.get(params.get("TemplateCode", ""))
        if template is None:
            return self._error("isv.SMS_TEMPLATE_ILLEGAL", "模板不合法(不存在或被拉黑)", request_id)
        try:
            values = json.loads(params.get("TemplateParam") or "{}")
        except json.JSONDecodeError:
            return self._error(
                "isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值", request_id
            )
        if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
            return self._error(
                "isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值", request_id
            )
        text = str(template["text"])
        for name, value in values.items():
            text = text.replace("${" + name + "}", value)
        if "${" in text:
            return self._error("isv.TEMPLATE_MISSING_PARAMETERS", "模板缺少变量", request_id)
        try:
            phone = normalise_phone(params.get("PhoneNumbers", ""))
        except InvalidPhone:
            return self._error("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号", request_id)
        if (
            self.per_number_daily_limit is not None
            and self.deliveries[phone] >= self.per_number_daily_limit
        ):
            return self._error(
                "isv.BUSINESS_LIMIT_CONTROL",
                f"触发天级流控Permits:{self.per_number_daily_limit}",
                request_id,
            )
        sms = self.accept(
            SimulatedSms(
                message_id=self.next_id("90000"),
                phone=phone,
                text=f"【{self.sign_name}】{text}",
                key=params.get("OutId"),
                sent_at=self.clock(),
                template=template["code"],
                params=values,
            )
        )
        await self.maybe_hold()
        return web.json_response(
            {"Code": "OK", "Message": "OK", "BizId": sms.message_id, "RequestId": request_id}
        )

    def _query(self, params: Mapping[str, str], request_id: str) -> dict[str, Any]:
        try:
            phone = normalise_phone(params.get("PhoneNumber", ""))
        except InvalidPhone:
            return {
                "Code": "isv.MOBILE_NUMBER_ILLEGAL",
                "Message": "非法手机号",
                "RequestId": request_id,
            }
        day = params.get("SendDate", "")
        details = []
        for sms in self.sent:
            sent = datetime.fromtimestamp(sms.sent_at, CHINA)
            if sms.phone != phone or sent.strftime("%Y%m%d") != day:
                continue
            details.append(
                {
                    "PhoneNum": phone[3:] if phone.startswith("+86") else phone.lstrip("+"),
                    "SendStatus": {"pending": 1, "failed": 2, "delivered": 3}[sms.status],
                    "ErrCode": "DELIVERED" if sms.status == "delivered" else "",
                    "TemplateCode": sms.template,
                    "Content": sms.text,
                    "SendDate": sent.strftime("%Y-%m-%d %H:%M:%S"),
                    "ReceiveDate": sent.strftime("%Y-%m-%d %H:%M:%S"),
                    "OutId": sms.key or "",
                }
            )
        return {
            "Code": "OK",
            "Message": "OK",
            "RequestId": request_id,
            "TotalCount": len(details),
            "SmsSendDetailDTOs": {"SmsSendDetailDTO": details},
        }

    # ------------------------------------------------------------------ pushes

    def receipt_item(
        self,
        message_id: str,
        *,
        success: bool = True,
        err_code: str = "DELIVERED",
        err_msg: str = "用户接收成功",
    ) -> dict[str, Any]:
        sms = self.find(message_id)
        sms.status = "delivered" if success else "failed"
        now = datetime.fromtimestamp(self.clock(), CHINA).strftime("%Y-%m-%d %H:%M:%S")
        sent = datetime.fromtimestamp(sms.sent_at, CHINA).strftime("%Y-%m-%d %H:%M:%S")
        return {
            "phone_number": sms.phone[3:] if sms.phone.startswith("+86") else sms.phone.lstrip("+"),
            "send_time": sent,
            "report_time": now,
            "success": success,
            "err_code": err_code,
            "err_msg": err_msg,
            "sms_size": "1",
            "biz_id": sms.message_id,
            "out_id": sms.key or "",
        }

    async def push_receipt(
        self,
        message_id: str,
        *,
        success: bool = True,
        err_code: str = "DELIVERED",
        err_msg: str = "用户接收成功",
    ) -> tuple[int, str]:
        item = self.receipt_item(message_id, success=success, err_code=err_code, err_msg=err_msg)
        return await self.push_items([item])

    def reply_item(
        self, phone: str, text: str, *, sequence_id: int | None = None
    ) -> dict[str, Any]:
        e164 = normalise_phone(phone)
        return {
            "phone_number": e164[3:] if e164.startswith("+86") else e164.lstrip("+"),
            "send_time": datetime.fromtimestamp(self.clock(), CHINA).strftime("%Y-%m-%d %H:%M:%S"),
            "content": text,
            "sign_name": self.sign_name,
            "dest_code": "1234",
            "sequence_id": sequence_id if sequence_id is not None else int(self.next_id("")),
        }

    async def push_reply(
        self, phone: str, text: str, *, sequence_id: int | None = None
    ) -> tuple[int, str]:
        return await self.push_items([self.reply_item(phone, text, sequence_id=sequence_id)])

    async def push_items(self, items: list[dict[str, Any]]) -> tuple[int, str]:
        """POST a JSON array as Aliyun's HTTP batch push does (replays: call again)."""
        body = json.dumps(items, ensure_ascii=False).encode("utf-8")
        return await self.post_callback(body, "application/json")


def simulated_account(
    sim: AliyunSimulator,
    *,
    account_id: int = 1,
    name: str = "阿里云短信（模拟）",
    signature_version: str = "v3",
    **config: Any,
) -> AccountRef:
    """An `sms.aliyun` AccountRef whose API base is the simulator."""
    return AccountRef(
        id=account_id,
        kind="sms.aliyun",
        name=name,
        config={
            "access_key_id": sim.access_key_id,
            "sign_name": sim.sign_name,
            "templates": list(sim.templates.values()),
            "free_text_template": "SMS_100002",
            "signature_version": signature_version,
            "api_base": sim.url,
            "timeout_seconds": 2,
            **config,
        },
        secrets={"access_key_secret": sim.access_key_secret},
    )
