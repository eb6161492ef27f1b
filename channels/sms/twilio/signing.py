"""X-Twilio-Signature: Base64(HMAC(secret, url + sorted name+value pairs)).

"Secure webhooks" twilio.com/docs/usage/webhooks/webhooks-security. HMAC-SHA1 with the
Auth Token by default; with `X-Twilio-Webhooks-Signature-Settings: key=…,algorithm=
HMAC_SHA256` the SharedKey secret and SHA-256. Twilio signs the URL sometimes with and
sometimes without the default port, so both forms are accepted (as its SDK does).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

ALGORITHMS = {"HMAC_SHA1": hashlib.sha1, "HMAC_SHA256": hashlib.sha256}


def compute_signature(
    secret: str, url: str, params: Iterable[tuple[str, str]], algorithm: str = "HMAC_SHA1"
) -> str:
    pairs: dict[str, set[str]] = {}
    for name, value in params:
        pairs.setdefault(name, set()).add(value)
    data = url + "".join(name + value for name in sorted(pairs) for value in sorted(pairs[name]))
    digest = hmac.new(secret.encode("utf-8"), data.encode("utf-8"), ALGORITHMS[algorithm]).digest()
    return base64.b64encode(digest).decode("ascii")


def url_variants(url: str) -> tuple[str, str]:
    """(without the port, with the port: the scheme's default when none is given)."""
    parts = urlsplit(url)
    if parts.port is not None:
        bare, explicit = parts.netloc.rsplit(":", 1)[0], parts.netloc
    else:
        bare = parts.netloc
        explicit = f"{parts.netloc}:{443 if parts.scheme == 'https' else 80}"
    return urlunsplit(parts._replace(netloc=bare)), urlunsplit(parts._replace(netloc=explicit))


def algorithm_of(settings_header: str | None) -> str:
    for part in (settings_header or "").split(","):
        name, _, value = part.partition("=")
        if name.strip() == "algorithm" and value.strip():
            return value.strip().upper()
    return "HMAC_SHA1"


def is_valid(
    secret: str,
    url: str,
    params: list[tuple[str, str]],
    signature: str,
    algorithm: str = "HMAC_SHA1",
) -> bool:
    if algorithm not in ALGORITHMS or not signature:
        return False
    return any(
        hmac.compare_digest(compute_signature(secret, variant, params, algorithm), signature)
        for variant in url_variants(url)
    )
