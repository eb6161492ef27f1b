"""Phone numbers: E.164 normalisation and the region of a Chinese mobile number (号段).

Both use the data shipped inside the `phonenumbers` package (libphonenumber's metadata
and geocoding tables); nothing is looked up over the network.
"""

from __future__ import annotations

import phonenumbers
from phonenumbers import geocoder

from .regions import Region, region_from_text

DEFAULT_REGION = "CN"


def normalise_phone(raw: str, default_region: str = DEFAULT_REGION) -> str | None:
    """E.164 form of a phone number ("+8613800138000"), or None if it is not a valid number."""
    text = raw.strip()
    if not text:
        return None
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def region_of_phone(e164: str) -> Region | None:
    """Province/city of a Chinese number from its prefix, None when not known or not +86."""
    if not e164.startswith("+86"):
        return None
    try:
        number = phonenumbers.parse(e164)
    except phonenumbers.NumberParseException:
        return None
    description = geocoder.description_for_number(number, "zh")
    return region_from_text(description) if description else None
