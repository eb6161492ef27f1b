"""Charset decoding that survives what Chinese mail clients actually send.

GB2312-labelled mail routinely holds GBK-only characters (镕, 喆); the standard library
and mail-parser mangle it, so every GB-family label decodes as gb18030, the superset
(research note §3d). Big5 labels decode as big5hkscs for the same reason.
"""

from __future__ import annotations

import codecs
import re
from email.header import decode_header

from charset_normalizer import from_bytes

# label (lower case) → codec that is a superset of what the label promises
_ALIASES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "ms936": "gb18030",
    "windows-936": "gb18030",
    "euc-cn": "gb18030",
    "euccn": "gb18030",
    "gb_2312-80": "gb18030",
    "gb2312-80": "gb18030",
    "csgb2312": "gb18030",
    "chinese": "gb18030",
    "x-euc-cn": "gb18030",
    "hz-gb-2312": "hz",
    "big5": "big5hkscs",
    "big-5": "big5hkscs",
    "x-big5": "big5hkscs",
    "cn-big5": "big5hkscs",
    "csbig5": "big5hkscs",
    "cp950": "big5hkscs",
    "ks_c_5601-1987": "cp949",  # Outlook's label for Korean
    "unicode-1-1-utf-7": "utf-7",
    "utf8": "utf-8",
    "us-ascii": "utf-8",  # 8-bit bytes under an ASCII label are almost always UTF-8 or GBK
    "ascii": "utf-8",
}

_FALLBACKS = ("utf-8", "gb18030", "big5hkscs")


def codec_for(label: str | None) -> str | None:
    """The Python codec to decode a declared MIME charset with; None if unknown."""
    if not label:
        return None
    name = label.strip().strip("\"'").lower()
    name = _ALIASES.get(name, name)
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decode_bytes(data: bytes, declared: str | None = None) -> tuple[str, str]:
    """Decode text bytes: the declared charset (mapped), then UTF-8/GB18030/Big5, then
    detection; never raises. Returns the text and the codec used."""
    tried: list[str] = []
    codec = codec_for(declared)
    if codec is not None:
        tried.append(codec)
        try:
            return data.decode(codec), codec
        except (UnicodeDecodeError, LookupError):
            pass  # wrong declared charset: common, fall through to the guesses
    if data.isascii():
        return data.decode("ascii"), "ascii"
    for fallback in _FALLBACKS:
        if fallback in tried:
            continue
        try:
            return data.decode(fallback), fallback
        except UnicodeDecodeError:
            continue
    best = from_bytes(data[:65536]).best()
    guess = best.encoding if best is not None else None
    final = codec_for(guess) or codec or "utf-8"
    return data.decode(final, errors="replace"), final


_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")


def decode_header_value(value: str) -> str:
    """Decode an RFC 2047 header value with our charset map; raw 8-bit GBK/UTF-8 bytes
    (smuggled in as surrogate escapes by the email package) are recovered too."""
    value = _recover_8bit(value)
    if "=?" not in value:
        return _unfold(value)
    # adjacent encoded words are joined without the whitespace between them (RFC 2047 §6.2)
    try:
        parts = decode_header(value)
    except (ValueError, AssertionError, LookupError):
        return _unfold(value)
    out: list[str] = []
    for chunk, charset in parts:
        if isinstance(chunk, str):
            out.append(chunk)
        else:
            out.append(decode_bytes(chunk, charset)[0])
    return _unfold("".join(out))


def _recover_8bit(value: str) -> str:
    if not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value
    raw = value.encode("utf-8", "surrogateescape")
    return decode_bytes(raw)[0]


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n[ \t]+", " ", value).replace("\r", "").replace("\n", " ").strip()
