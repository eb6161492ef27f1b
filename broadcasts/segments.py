"""SMS segment counting (短信计费条数): how many billed parts a text becomes.

Two rules exist in practice:
- Chinese gateways (Aliyun, Tencent) count characters, signature included: ≤ 70 is one
  message, longer texts are billed per 67 characters (the rest carries the concat header);
- GSM networks (Twilio and most non-Chinese routes): GSM-7 text fits 160 septets
  (153 per part when split; extension characters take two), anything else is UCS-2
  with 70 / 67 UTF-16 units.
The SMS helper may supply its own counter; anything with `count(text) -> int` fits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

# 3GPP TS 23.038 default alphabet and its extension table (each extension costs 2 septets)
_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")


class SegmentCounter(Protocol):
    def count(self, text: str) -> int:
        """Billed SMS parts for `text` as the gateway will send it."""
        ...


def _parts(units: int, single: int, multi: int) -> int:
    if units == 0:
        return 0
    if units <= single:
        return 1
    return -(-units // multi)


@dataclass(frozen=True)
class CharacterSegments:
    """Chinese gateways: characters, 70 for one message, 67 per part beyond."""

    single: int = 70
    multi: int = 67

    def count(self, text: str) -> int:
        return _parts(len(text), self.single, self.multi)


@dataclass(frozen=True)
class GsmSegments:
    """GSM-7 when every character fits it (160/153 septets), else UCS-2 (70/67 units)."""

    def count(self, text: str) -> int:
        septets = 0
        for char in text:
            if char in _GSM7_BASIC:
                septets += 1
            elif char in _GSM7_EXTENSION:
                septets += 2
            else:
                return _parts(len(text.encode("utf-16-le")) // 2, 70, 67)
        return _parts(septets, 160, 153)
