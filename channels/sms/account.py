"""The settings every SMS account row carries, whatever the gateway.

`ChannelAccount.config` (plain) and `.secrets` (encrypted) hold them; each gateway's
`config_check.py` adds its own keys and reports every problem at once.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .phone import DEFAULT_REGION
from .templates import SmsTemplate, VariableStyle, parse_templates
from .window import MarketingWindow, marketing_window

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConfigProblems(ValueError):
    """All problems of one account's settings, one per line (shown in the console)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class RateLimit:
    """Token bucket per account, shared across processes through SharedState."""

    per_second: float
    burst: float
    max_wait: float  # block a send at most this long for a token, else RETRY later


@dataclass(frozen=True)
class SmsSettings:
    kind: str
    sign_name: str  # 签名 (Aliyun/Tencent) or the sender id shown as scope (Twilio)
    templates: Mapping[str, SmsTemplate]
    free_text_template: str | None  # a one-variable template that carries free text
    rate: RateLimit
    ip_allowlist: tuple[IPNetwork, ...]
    api_base: str | None
    timeout: float
    reconcile_grace: float  # seconds a submitted send may stay invisible to look-ups
    default_region: str
    price_per_segment: float | None
    currency: str
    window: MarketingWindow
    opt_out_suffix: str | None


def _number(config: Mapping[str, Any], key: str, default: float, problems: list[str]) -> float:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        problems.append(f"{key} must be a non-negative number")
        return default
    return float(value)


def read_settings(
    kind: str,
    config: Mapping[str, Any],
    style: VariableStyle,
    *,
    default_rate: float,
    default_grace: float,
    problems: list[str],
    api_base_override: str | None = None,
) -> SmsSettings:
    """Read the shared keys; append what is wrong to `problems`."""
    templates: dict[str, SmsTemplate] = {}
    try:
        templates = parse_templates(config.get("templates"), style)
    except ValueError as exc:
        problems.append(str(exc))
    free_text = config.get("free_text_template")
    if free_text is not None:
        free_text = str(free_text)
        template = templates.get(free_text)
        if template is None:
            problems.append(f"free_text_template {free_text!r} is not in templates")
        elif len(template.variables) != 1:
            problems.append("free_text_template must have exactly one variable")
    rate_raw = config.get("rate_limit") or {}
    if not isinstance(rate_raw, Mapping):
        problems.append("rate_limit must be a table (per_second, burst, max_wait)")
        rate_raw = {}
    per_second = _number(rate_raw, "per_second", default_rate, problems) or default_rate
    rate = RateLimit(
        per_second=per_second,
        burst=_number(rate_raw, "burst", max(1.0, per_second), problems) or 1.0,
        max_wait=_number(rate_raw, "max_wait", 5.0, problems),
    )
    networks: list[IPNetwork] = []
    for entry in config.get("ip_allowlist") or []:
        try:
            networks.append(ipaddress.ip_network(str(entry), strict=False))
        except ValueError:
            problems.append(f"ip_allowlist entry {entry!r} is not an IP address or CIDR")
    price = config.get("price_per_segment")
    if price is not None and (isinstance(price, bool) or not isinstance(price, int | float)):
        problems.append("price_per_segment must be a number")
        price = None
    try:
        window = marketing_window(config, kind)
    except ValueError as exc:
        problems.append(str(exc))
        window = marketing_window({}, kind)
    suffix = config.get("opt_out_suffix")
    return SmsSettings(
        kind=kind,
        sign_name=str(config.get("sign_name", "")),
        templates=templates,
        free_text_template=free_text,
        rate=rate,
        ip_allowlist=tuple(networks),
        api_base=api_base_override or config.get("api_base"),
        timeout=_number(config, "timeout_seconds", 10.0, problems) or 10.0,
        reconcile_grace=_number(config, "reconcile_grace_seconds", default_grace, problems),
        default_region=str(config.get("default_region", DEFAULT_REGION)),
        price_per_segment=None if price is None else float(price),
        currency=str(config.get("currency", "CNY")),
        window=window,
        opt_out_suffix=str(suffix) if suffix else None,
    )


def require(mapping: Mapping[str, Any], key: str, where: str, problems: list[str]) -> str:
    """A required non-empty string setting (problem recorded when missing)."""
    value = mapping.get(key)
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{where}.{key} is required")
        return ""
    return value.strip()
