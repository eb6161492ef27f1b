"""E.164 normalisation of the ways Chinese teams type numbers."""

from __future__ import annotations

import pytest

from channels.sms.phone import InvalidPhone, normalise_phone


@pytest.mark.parametrize(
    "raw",
    ["13800138000", "+86 138-0013-8000", "0086 13800138000", "8613800138000", "138 0013 8000",
     "１３８００１３８０００", "(+86)138.0013.8000"],
)  # fmt: skip
def test_chinese_mobile_forms_normalise_to_e164(raw: str) -> None:
    assert normalise_phone(raw) == "+8613800138000"


def test_international_numbers_keep_their_country() -> None:
    assert normalise_phone("+852 6123 4567") == "+85261234567"
    assert normalise_phone("(415) 555-2671", "US") == "+14155552671"


@pytest.mark.parametrize(
    ("raw", "key"),
    [("", "sms.phone.empty"), ("1380013800", "sms.phone.length"), ("138001380001", "sms.phone.length"),
     ("abc", "sms.phone.chars"), ("+8612345678901", "sms.phone.invalid")],
)  # fmt: skip
def test_invalid_numbers_are_rejected_with_a_reason(raw: str, key: str) -> None:
    with pytest.raises(InvalidPhone) as caught:
        normalise_phone(raw)
    assert caught.value.translation_key == key and caught.value.reason
