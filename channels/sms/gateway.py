"""What the three SMS gateways share: callback checks, the send flow, reconciliation.

A gateway subclass supplies the provider's wire format (`_submit`, `_lookup`, `parse`,
`acknowledge`); this class makes every send safe to repeat:

1. the number is normalised (E.164) and the template and its parameters validated
   before anything leaves the process;
2. a per-key ledger in SharedState records "in flight" *before* the HTTP call and
   "sent" after it, under a per-key lock, so a repeated `send` of the same outbox key
   never reaches the gateway twice;
3. a timeout or a dropped connection after the request went out is UNKNOWN, and the
   next `send` (or the dispatcher's `reconcile`) asks the gateway before sending again
   (Aliyun SendSms is not idempotent: "请您做好幂等控制").
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar

import aiohttp

from channels.base import (
    MAX_CALLBACK_BYTES,
    ChannelContext,
    ConnectionCheck,
    Forbidden,
    PayloadTooLarge,
    RawRequest,
    RawResponse,
)
from conversations.types import (
    AccountRef,
    ChannelRules,
    Inbound,
    MessageStatus,
    Outbound,
    Purpose,
    SendOutcome,
    SendResult,
)

from .account import SmsSettings
from .optout_words import APPENDED_BY, opt_out_suffix, with_suffix
from .phone import InvalidPhone, normalise_phone
from .templates import SmsTemplate, TemplateError, TemplateProblem, check_params, check_template

log = logging.getLogger(__name__)

LEDGER_TTL = 7 * 24 * 3600.0  # longer than any outbox retry schedule


@dataclass(frozen=True)
class SmsRequest:
    """One validated send, in gateway-neutral terms."""

    key: str
    phone: str  # E.164
    text: str  # what the handset shows, without 【签名】
    purpose: Purpose
    template: SmsTemplate | None = None
    params: Mapping[str, str] = field(default_factory=dict)


class NotSent(Exception):
    """The request certainly never reached the gateway (connection refused)."""


@dataclass(frozen=True)
class ErrorRule:
    """How a gateway error code maps to a send outcome, with a readable reason."""

    outcome: SendOutcome
    reason: str
    retry_after: float | None = None

    def result(self, code: str, detail: str = "") -> SendResult:
        reason = f"{self.reason} ({detail})" if detail and detail != self.reason else self.reason
        return SendResult(
            self.outcome,
            error_code=code,
            reason=reason,
            retry_after=timedelta(seconds=self.retry_after) if self.retry_after else None,
        )


def map_error(
    rules: Mapping[str, ErrorRule], code: str, detail: str, *, default: ErrorRule
) -> SendResult:
    """Translate a provider error code (prefix rules end with '.')."""
    rule = rules.get(code)
    if rule is None:
        prefixes = [k for k in rules if k.endswith(".") and code.startswith(k)]
        rule = rules[max(prefixes, key=len)] if prefixes else default
    return rule.result(code, detail)


class SmsGatewayAdapter:
    """Base of `sms.aliyun`, `sms.tencent`, `sms.twilio` adapters (one per account)."""

    kind: ClassVar[str]
    rules: ClassVar[ChannelRules] = ChannelRules(auto_reply=True, marketing=True)
    free_text: ClassVar[bool] = False  # may send text that is not an approved template

    def __init__(
        self,
        account: AccountRef,
        ctx: ChannelContext,
        settings: SmsSettings,
        *,
        clock: Any = time.time,
    ) -> None:
        self.account = account
        self.ctx = ctx
        self.settings = settings
        self._clock = clock

    # ------------------------------------------------------------------ inbound

    async def verify(self, request: RawRequest) -> None:
        """Size, then the optional IP allowlist (Aliyun/Tencent pushes are unsigned)."""
        if len(request.body) > MAX_CALLBACK_BYTES:
            raise PayloadTooLarge("callback body too large")
        if self.settings.ip_allowlist:
            try:
                remote = ipaddress.ip_address(request.remote or "")
            except ValueError:
                raise Forbidden("callback from an unknown address") from None
            if not any(remote in net for net in self.settings.ip_allowlist):
                raise Forbidden(f"callback from {remote} is outside the account's ip_allowlist")
        await self._verify_signature(request)

    async def _verify_signature(self, request: RawRequest) -> None:
        """Gateways that sign their callbacks (Twilio) check it here."""

    def parse(self, request: RawRequest) -> Sequence[Inbound]:
        raise NotImplementedError  # abstract: each gateway implements it

    def acknowledge(self, request: RawRequest, stored: Sequence[Inbound]) -> RawResponse:
        raise NotImplementedError  # abstract: each gateway implements it

    # ------------------------------------------------------------------ outbound

    def prepare(self, message: Outbound) -> SmsRequest:
        """Validate and resolve an Outbound; raises InvalidPhone / TemplateError."""
        phone = normalise_phone(message.recipient, self.settings.default_region)
        code = message.payload.get("template")
        params_raw = message.payload.get("params") or {}
        if not isinstance(params_raw, Mapping):
            raise TemplateError([TemplateProblem("sms.template.params", "params must be a table")])
        params: dict[str, Any] = dict(params_raw)
        if code is None and not self.free_text:
            code = self.settings.free_text_template
            if code is None:
                raise TemplateError(
                    [
                        TemplateProblem(
                            "sms.template.required",
                            f"{self.kind} sends approved templates only: choose a template "
                            "(or set free_text_template on the account)",
                        )
                    ]
                )
            template = self.settings.templates[code]
            params = {template.variables[0]: message.text}
        if code is None:
            text = message.text
            if message.purpose == Purpose.MARKETING and APPENDED_BY.get(self.kind) == "crmbot":
                text = with_suffix(text, opt_out_suffix(self.kind, self.account.config))
            if not text.strip():
                raise TemplateError([TemplateProblem("sms.text.empty", "the message is empty")])
            return SmsRequest(message.key, phone, text, message.purpose)
        found = self.settings.templates.get(str(code))
        if found is None:
            raise TemplateError(
                [
                    TemplateProblem(
                        "sms.template.unknown",
                        f"template {code} is not configured on account {self.account.name}",
                    )
                ]
            )
        template = found
        problems = check_template(template, self.kind) + check_params(template, params, self.kind)
        if message.purpose == Purpose.MARKETING and template.kind != "marketing":
            problems.append(
                TemplateProblem(
                    "sms.template.not_marketing",
                    f"template {template.code} is a {template.kind} template; "
                    "marketing sends need a marketing (推广) template",
                )
            )
        if problems:
            raise TemplateError(problems)
        return SmsRequest(
            message.key, phone, template.render(params), message.purpose, template, params
        )

    def _ledger_key(self, key: str) -> str:
        return f"sms:ledger:{self.account.id}:{key}"

    async def send(self, message: Outbound) -> SendResult:
        """Send once per `message.key`; see the module docstring for the guarantees."""
        try:
            request = self.prepare(message)
        except InvalidPhone as exc:
            return SendResult(
                SendOutcome.FAILED,
                error_code="invalid_phone",
                reason=f"invalid number: {exc.reason}",
            )
        except TemplateError as exc:
            return SendResult(
                SendOutcome.FAILED,
                error_code=exc.problems[0].key,
                reason=str(exc),
            )
        ledger = self._ledger_key(message.key)
        async with self.ctx.state.lock(ledger + ":lock", ttl=self.settings.timeout + 30):
            entry = await self.ctx.state.get(ledger)
            if entry is not None and entry.startswith("sent:"):
                log.info("sms %s already sent, not sending again", message.key)
                return SendResult.sent(entry[5:] or None)
            if entry is not None:
                earlier = await self._reconcile(request, float(entry.split(":", 1)[1]))
                if earlier.outcome != SendOutcome.RETRY:
                    return earlier
            wait = await self.ctx.state.take(
                f"sms:rate:{self.account.id}",
                self.settings.rate.per_second,
                self.settings.rate.burst,
            )
            if wait > self.settings.rate.max_wait:
                return SendResult(
                    SendOutcome.RETRY,
                    error_code="rate_limited",
                    reason="account send rate reached (rate_limit in the account settings)",
                    retry_after=timedelta(seconds=wait),
                )
            if wait > 0:
                await asyncio.sleep(wait)  # a short wait for our own token bucket
            # written before the call: a crash or timeout from here on means "ask first"
            await self.ctx.state.set(ledger, f"inflight:{self._clock()}", ttl=LEDGER_TTL)
            result = await self._submit_guarded(request)
            if result.outcome == SendOutcome.SENT:
                await self.ctx.state.set(
                    ledger, f"sent:{result.provider_message_id or ''}", ttl=LEDGER_TTL
                )
            elif result.outcome != SendOutcome.UNKNOWN:
                await self.ctx.state.delete(ledger)  # the gateway said no: a retry is safe
            log.info(
                "sms send account=%s key=%s outcome=%s code=%s",
                self.account.id,
                message.key,
                result.outcome,
                result.error_code,
            )
            return result

    async def _submit_guarded(self, request: SmsRequest) -> SendResult:
        try:
            return await asyncio.wait_for(self._submit(request), self.settings.timeout)
        except NotSent as exc:
            return SendResult(
                SendOutcome.RETRY,
                error_code="connect_failed",
                reason=f"could not reach the gateway: {exc}",
                retry_after=timedelta(seconds=30),
            )
        except (TimeoutError, aiohttp.ClientError) as exc:
            return SendResult(
                SendOutcome.UNKNOWN,
                error_code="timeout" if isinstance(exc, TimeoutError) else "connection_lost",
                reason="no answer from the gateway; checking whether it was sent before retrying",
            )

    async def reconcile(self, message: Outbound) -> SendResult:
        """After UNKNOWN: SENT/FAILED if the gateway knows the send, RETRY if it surely
        does not (sending again is safe), UNKNOWN if it cannot tell yet (ask later)."""
        try:
            request = self.prepare(message)
        except (InvalidPhone, TemplateError) as exc:
            return SendResult(SendOutcome.FAILED, error_code="invalid", reason=str(exc))
        entry = await self.ctx.state.get(self._ledger_key(message.key))
        if entry is not None and entry.startswith("sent:"):
            return SendResult.sent(entry[5:] or None)
        since = float(entry.split(":", 1)[1]) if entry else self._clock() - 86400
        result = await self._reconcile(request, since)
        if result.outcome == SendOutcome.SENT:
            await self.ctx.state.set(
                self._ledger_key(message.key),
                f"sent:{result.provider_message_id or ''}",
                ttl=LEDGER_TTL,
            )
        elif result.outcome == SendOutcome.RETRY:
            await self.ctx.state.delete(self._ledger_key(message.key))
        return result

    async def _reconcile(self, request: SmsRequest, since: float) -> SendResult:
        try:
            found = await asyncio.wait_for(self._lookup(request, since), self.settings.timeout)
        except (TimeoutError, aiohttp.ClientError, NotSent) as exc:
            return SendResult(
                SendOutcome.UNKNOWN, error_code="lookup_failed", reason=f"look-up failed: {exc}"
            )
        if found is not None:
            return found
        if self._clock() - since < self.settings.reconcile_grace:
            return SendResult(
                SendOutcome.UNKNOWN,
                error_code="not_visible_yet",
                reason="the gateway does not show this send yet; asking again shortly",
                retry_after=timedelta(seconds=30),
            )
        return SendResult(
            SendOutcome.RETRY, error_code="not_found", reason="the gateway never received it"
        )

    async def _submit(self, request: SmsRequest) -> SendResult:
        raise NotImplementedError  # abstract: each gateway implements it

    async def _lookup(self, request: SmsRequest, since: float) -> SendResult | None:
        """The gateway's record of `request.key` sent after `since`, or None."""
        raise NotImplementedError  # abstract: each gateway implements it

    async def check_connection(self) -> ConnectionCheck:
        raise NotImplementedError  # abstract: each gateway implements it

    # ------------------------------------------------------------------ helpers

    def api_base(self, default: str) -> str:
        return (
            self.ctx.api_base_overrides.get(self.kind) or self.settings.api_base or default
        ).rstrip("/")


def delivered_status(success: bool) -> MessageStatus:
    return MessageStatus.DELIVERED if success else MessageStatus.FAILED
