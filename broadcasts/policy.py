"""What each account kind means for a broadcast: how a customer is reached on it, what a
message costs, when marketing may go out, what it must end with (issue 12).

`ChannelPolicy` is the plug point for the SMS and email helpers: `policy_for(kind)` picks
a built-in policy by kind family, and `PolicyRegistry.register` lets a channel package
replace it with its own (its segment counter, price, payload shape).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from conversations.optout import consent_target_of
from conversations.types import MessageKind

from .segments import CharacterSegments, GsmSegments, SegmentCounter

DEFAULT_ZONE = "Asia/Shanghai"
# issue 12: the stricter of the providers' rules (Tencent allows until 22:00)
DEFAULT_MARKETING_HOURS = (time(8, 0), time(21, 0))
_VARIABLE = re.compile(r"\{[a-z_]+\}")


@dataclass(frozen=True)
class MarketingWindow:
    """Local hours in which marketing may be sent; outside them sending is deferred."""

    start: time
    end: time
    zone: ZoneInfo

    def next_allowed(self, at: datetime) -> datetime:
        """`at` itself when allowed, else the next opening (DST-correct)."""
        local = at.astimezone(self.zone)
        if self.start <= local.time() < self.end:
            return at
        day = local.date() if local.time() < self.start else local.date() + timedelta(days=1)
        opening = datetime.combine(day, self.start, tzinfo=self.zone)
        # an opening inside a DST gap: normalising lands on the first real instant after it
        return opening.astimezone(ZoneInfo("UTC")).astimezone(at.tzinfo)

    @classmethod
    def parse(cls, text: str, zone: str = DEFAULT_ZONE) -> MarketingWindow:
        """'08:00-21:00' → a window in `zone`."""
        match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", text)
        if not match:
            raise ValueError(f"marketing hours {text!r}: expected HH:MM-HH:MM")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        start, end = time(h1, m1), time(h2 % 24, m2) if h2 < 24 else time(23, 59, 59)
        if not start < end:
            raise ValueError(f"marketing hours {text!r}: start must be before end")
        return cls(start, end, ZoneInfo(zone))


@dataclass(frozen=True)
class Estimate:
    segments: int  # billed parts per message (1 for channels that do not bill by parts)
    cost: float  # per message, in the account's currency
    currency: str = "CNY"


@dataclass(frozen=True)
class AccountView:
    """The parts of a channel account a policy may read (no secrets)."""

    id: int
    kind: str
    name: str
    config: Mapping[str, Any]


@dataclass(frozen=True)
class CustomerView:
    id: int
    display_name: str
    phone: str | None
    email: str | None
    owner_name: str | None = None
    profile: Mapping[str, Any] = field(default_factory=dict)


class ChannelPolicy(Protocol):
    @property
    def family(self) -> str:
        """Content key and consent channel: "sms" | "email" | "wecom"."""
        ...

    def address(self, customer: CustomerView, identity_external_id: str | None) -> str | None:
        """Where this customer is reached on the account, or None (unreachable)."""
        ...

    def consent_scope(self, account: AccountView) -> str:
        """Suppression scope: the SMS signature, the mailbox, or '*'."""
        ...

    def marketing_window(self, account: AccountView) -> MarketingWindow | None: ...

    def finalise(self, account: AccountView, text: str, marketing: bool) -> str:
        """The text as the recipient will see it (signature, opt-out suffix)."""
        ...

    def estimate(self, account: AccountView, final_text: str) -> Estimate: ...

    def validate(
        self, account: AccountView, variant: Mapping[str, Any], marketing: bool
    ) -> list[str]:
        """Problems to show before scheduling (e.g. variables in an Aliyun marketing template)."""
        ...

    def payload(
        self, account: AccountView, variant: Mapping[str, Any], final_text: str
    ) -> tuple[MessageKind, dict[str, Any]]:
        """The outbox payload the channel's adapter reads."""
        ...


# providers' own marketing hours (issue 12): Tencent accepts marketing 08:00–22:00 only
PROVIDER_LATEST_END = {"sms.tencent": time(22, 0)}


def _window(account: AccountView) -> MarketingWindow:
    """The account's marketing hours: `marketing_window = {start, end, timezone}` (the
    form docs/channels/sms.md documents) or `marketing_hours = "08:00-21:00"`, clipped
    to the provider's own limit."""
    zone = str(account.config.get("timezone") or DEFAULT_ZONE)
    table = account.config.get("marketing_window")
    hours = account.config.get("marketing_hours")
    if isinstance(table, Mapping) and table.get("start") and table.get("end"):
        zone = str(table.get("timezone") or zone)
        window = MarketingWindow.parse(f"{table['start']}-{table['end']}", zone)
    elif hours:
        window = MarketingWindow.parse(str(hours), zone)
    else:
        window = MarketingWindow(*DEFAULT_MARKETING_HOURS, ZoneInfo(zone))
    latest = PROVIDER_LATEST_END.get(account.kind)
    if latest is not None and window.end > latest:
        window = MarketingWindow(window.start, latest, window.zone)
    return window


@dataclass(frozen=True)
class SmsPolicy:
    """SMS: 【签名】 + text + opt-out suffix; billed per segment."""

    family: str = "sms"

    def address(self, customer: CustomerView, identity_external_id: str | None) -> str | None:
        return identity_external_id or customer.phone

    def consent_scope(self, account: AccountView) -> str:
        # the scope opt-out replies were recorded under (【签名】, or Twilio's sender)
        target = consent_target_of(account.kind, account.config)
        return target.scope if target is not None else "*"

    def marketing_window(self, account: AccountView) -> MarketingWindow | None:
        return _window(account)

    def _suffix(self, account: AccountView) -> str:
        if "opt_out_suffix" in account.config:
            return str(account.config["opt_out_suffix"])
        if account.kind == "sms.tencent":
            return "拒收请回复R"  # Tencent rejects marketing without it
        if account.kind == "sms.twilio":
            return " Reply STOP to opt out"
        return "回T退订"

    def _counter(self, account: AccountView) -> SegmentCounter:
        if account.kind == "sms.twilio":
            return GsmSegments()
        return CharacterSegments()

    def finalise(self, account: AccountView, text: str, marketing: bool) -> str:
        sign = str(account.config.get("sign_name") or "")
        head = f"【{sign}】" if sign and account.kind != "sms.twilio" else ""
        suffix = self._suffix(account) if marketing else ""
        if suffix and text.endswith(suffix):
            suffix = ""
        return f"{head}{text}{suffix}"

    def estimate(self, account: AccountView, final_text: str) -> Estimate:
        parts = self._counter(account).count(final_text)
        price = float(account.config.get("price_per_segment", 0.045))
        return Estimate(parts, round(parts * price, 4), str(account.config.get("currency", "CNY")))

    def validate(
        self, account: AccountView, variant: Mapping[str, Any], marketing: bool
    ) -> list[str]:
        problems = []
        text = str(variant.get("text", ""))
        if not text and not variant.get("template_code"):
            problems.append("sms: text or template_code is required")
        if marketing and account.kind == "sms.aliyun" and _VARIABLE.search(text):
            # issue 12: Aliyun marketing templates cannot contain variables
            problems.append("sms.aliyun: marketing templates cannot contain variables")
        return problems

    def payload(
        self, account: AccountView, variant: Mapping[str, Any], final_text: str
    ) -> tuple[MessageKind, dict[str, Any]]:
        body: dict[str, Any] = {"text": final_text}
        if variant.get("template_code"):
            body["template_code"] = variant["template_code"]
            body["template_params"] = dict(variant.get("params") or {})
        return MessageKind.TEXT, body


@dataclass(frozen=True)
class EmailPolicy:
    family: str = "email"

    def address(self, customer: CustomerView, identity_external_id: str | None) -> str | None:
        found = identity_external_id or customer.email
        return found.lower() if found else None

    def consent_scope(self, account: AccountView) -> str:
        return str(account.config.get("address") or "*")

    def marketing_window(self, account: AccountView) -> MarketingWindow | None:
        return _window(account)

    def finalise(self, account: AccountView, text: str, marketing: bool) -> str:
        return text

    def estimate(self, account: AccountView, final_text: str) -> Estimate:
        return Estimate(1, float(account.config.get("price_per_message", 0.0)))

    def validate(
        self, account: AccountView, variant: Mapping[str, Any], marketing: bool
    ) -> list[str]:
        problems = []
        if not variant.get("subject"):
            problems.append("email: subject is required")
        if not (variant.get("html") or variant.get("text")):
            problems.append("email: html or text is required")
        return problems

    def payload(
        self, account: AccountView, variant: Mapping[str, Any], final_text: str
    ) -> tuple[MessageKind, dict[str, Any]]:
        # the email adapter adds List-Unsubscribe (RFC 8058) for purpose=marketing
        return MessageKind.EMAIL, {
            "text": final_text,
            "subject": str(variant.get("subject", "")),
            "html": str(variant.get("html_rendered", variant.get("html", ""))),
        }


@dataclass(frozen=True)
class WeComPolicy:
    """WeCom kinds: reached only through an identity (external_userid, kf openid)."""

    family: str = "wecom"

    def address(self, customer: CustomerView, identity_external_id: str | None) -> str | None:
        return identity_external_id

    def consent_scope(self, account: AccountView) -> str:
        return "*"

    def marketing_window(self, account: AccountView) -> MarketingWindow | None:
        return _window(account)

    def finalise(self, account: AccountView, text: str, marketing: bool) -> str:
        return text

    def estimate(self, account: AccountView, final_text: str) -> Estimate:
        return Estimate(1, 0.0)

    def validate(
        self, account: AccountView, variant: Mapping[str, Any], marketing: bool
    ) -> list[str]:
        msgtype = variant.get("msgtype", "text")
        if msgtype not in ("text", "image", "link", "miniprogram"):
            return [f"wecom: unknown msgtype {msgtype!r}"]
        needs = {
            "text": ("text",),
            "image": ("media",),
            "link": ("title", "url"),
            "miniprogram": ("title", "appid", "page"),
        }[str(msgtype)]
        return [f"wecom {msgtype}: {key} is required" for key in needs if not variant.get(key)]

    def payload(
        self, account: AccountView, variant: Mapping[str, Any], final_text: str
    ) -> tuple[MessageKind, dict[str, Any]]:
        msgtype = str(variant.get("msgtype", "text"))
        body = {k: v for k, v in variant.items() if k not in ("text",)}
        body["text"] = final_text
        body["msgtype"] = msgtype
        kind = {"text": MessageKind.TEXT, "image": MessageKind.IMAGE, "link": MessageKind.LINK}
        return kind.get(msgtype, MessageKind.RICH), body


class PolicyRegistry:
    """Kind (or kind family) → policy; channel packages may register their own."""

    def __init__(self) -> None:
        self._by_kind: dict[str, ChannelPolicy] = {}
        self._by_family: dict[str, ChannelPolicy] = {
            "sms": SmsPolicy(),
            "email": EmailPolicy(),
            "wecom": WeComPolicy(),
        }

    def register(self, kind: str, policy: ChannelPolicy) -> None:
        self._by_kind[kind] = policy

    def for_kind(self, kind: str) -> ChannelPolicy | None:
        if kind in self._by_kind:
            return self._by_kind[kind]
        return self._by_family.get(kind.split(".", 1)[0])
