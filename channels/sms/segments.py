"""How many SMS parts a text costs (GSM 03.38 / UCS-2 concatenation, Chinese billing).

| scheme | one part | each part when split | when |
| GSM-7 | 160 | 153 (UDH takes 7 septets) | only GSM 03.38 characters; ^{}\\[~]|€ cost two |
| UCS-2 | 70 | 67 | anything else; characters outside the BMP (emoji) cost two |
| China domestic billing | 70 | 67 | Aliyun/Tencent to +86: every character counts one, 【签名】 included |
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

# GSM 03.38 default alphabet (without the escape code itself)
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# the extension table: each costs an escape septet plus itself
_GSM_EXTENSION = frozenset("^{}\\[~]|€\f")


class Encoding(enum.StrEnum):
    GSM7 = "gsm7"
    UCS2 = "ucs2"


class Billing(enum.StrEnum):
    """Whose counting rule applies: the handset's (GSM) or the Chinese gateways'."""

    GSM = "gsm"
    CHINA = "china"


@dataclass(frozen=True)
class SegmentCount:
    encoding: Encoding
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2 / China)
    segments: int
    single_limit: int
    part_limit: int

    @property
    def remaining_in_last(self) -> int:
        """How many more units fit before the next part starts (for a live counter)."""
        if self.segments <= 1:
            return self.single_limit - self.units
        return self.segments * self.part_limit - self.units


def is_gsm7(text: str) -> bool:
    return all(ch in _GSM_BASIC or ch in _GSM_EXTENSION for ch in text)


def _unit_costs(text: str, encoding: Encoding) -> list[int]:
    if encoding == Encoding.GSM7:
        return [2 if ch in _GSM_EXTENSION else 1 for ch in text]
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def _pack(costs: list[int], part_limit: int) -> int:
    # a character (escape pair, surrogate pair) is never split across two parts
    parts, used = 1, 0
    for cost in costs:
        if used + cost > part_limit:
            parts, used = parts + 1, 0
        used += cost
    return parts


def count_segments(text: str, billing: Billing = Billing.GSM) -> SegmentCount:
    """Count the parts `text` (signature and opt-out wording included) is billed as."""
    if billing == Billing.CHINA:
        units = sum(_unit_costs(text, Encoding.UCS2))
        segments = 1 if units <= 70 else -(-units // 67)
        encoding = Encoding.GSM7 if is_gsm7(text) else Encoding.UCS2
        return SegmentCount(encoding, units, max(segments, 1), 70, 67)
    encoding = Encoding.GSM7 if is_gsm7(text) else Encoding.UCS2
    single, part = (160, 153) if encoding == Encoding.GSM7 else (70, 67)
    costs = _unit_costs(text, encoding)
    units = sum(costs)
    segments = 1 if units <= single else _pack(costs, part)
    return SegmentCount(encoding, units, segments, single, part)
