"""Phone numbers in E.164, the one form crmbot stores (customers.phone, identity ids).

Chinese teams type numbers every way: 13800138000, +86 138-0013-8000, 0086…, 86…;
`phonenumbers` (Google's libphonenumber metadata) knows every country's lengths, so a
typo is rejected with a reason instead of reaching the gateway.
"""

from __future__ import annotations

import re

import phonenumbers

DEFAULT_REGION = "CN"
_SEPARATORS = re.compile(r"[\s\-().\u3000\u2010-\u2015]")
_FULL_WIDTH_DIGITS = str.maketrans("０１２３４５６７８９＋", "0123456789+")


class InvalidPhone(ValueError):
    """A number we refuse; `reason` is readable, `translation_key` is for the console."""

    def __init__(self, raw: str, reason: str, translation_key: str) -> None:
        super().__init__(f"{raw!r}: {reason}")
        self.raw = raw
        self.reason = reason
        self.translation_key = translation_key


def normalise_phone(raw: str, default_region: str = DEFAULT_REGION) -> str:
    """Return `raw` as E.164 (+8613800138000) or raise `InvalidPhone` with the reason."""
    text = _SEPARATORS.sub("", raw.translate(_FULL_WIDTH_DIGITS))
    if not text:
        raise InvalidPhone(raw, "empty phone number", "sms.phone.empty")
    if text.startswith("00"):
        text = "+" + text[2:]
    elif re.fullmatch(r"861\d{10}", text):
        # Aliyun and Tencent accept a bare "86" country code; without the "+" the
        # library would read it as a (too long) national number
        text = "+" + text
    if not re.fullmatch(r"\+?\d+", text):
        raise InvalidPhone(raw, "phone number has characters other than digits", "sms.phone.chars")
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(raw, f"not a phone number ({exc})", "sms.phone.unparsable") from exc
    national = str(number.national_number)
    if number.country_code == 86 and national.startswith("1") and len(national) != 11:
        # 10- and 12-digit typos of a mobile number would otherwise pass as landlines
        raise InvalidPhone(raw, "Chinese mobile numbers have 11 digits", "sms.phone.length")
    if not phonenumbers.is_possible_number(number):
        raise InvalidPhone(raw, "wrong number of digits for its country", "sms.phone.length")
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone(raw, "no such number range in its country", "sms.phone.invalid")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def is_mainland_china(e164: str) -> bool:
    """True for +86 numbers (domestic SMS: signature mandatory, domestic templates)."""
    return e164.startswith("+86")


def national_digits(e164: str) -> tuple[str, str]:
    """Split an E.164 number into (country calling code, national number)."""
    number = phonenumbers.parse(e164, None)
    return str(number.country_code), str(number.national_number)
