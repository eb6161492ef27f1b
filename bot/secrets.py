"""Channel secrets encrypted at rest (Fernet, key derived from the installation's secret)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping

from cryptography.fernet import Fernet, InvalidToken

PREFIX = "enc:v1:"


class SecretBox:
    def __init__(self, secret_key: str) -> None:
        digest = hashlib.sha256(b"crmbot-channel-secrets\x00" + secret_key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def seal(self, values: Mapping[str, str]) -> dict[str, str]:
        return {
            k: v if v.startswith(PREFIX) else PREFIX + self._fernet.encrypt(v.encode()).decode()
            for k, v in values.items()
        }

    def open(self, values: Mapping[str, str]) -> dict[str, str]:
        """Decrypt; raises ValueError naming the field when the key does not fit."""
        out: dict[str, str] = {}
        for k, v in values.items():
            if not v.startswith(PREFIX):
                out[k] = v
                continue
            try:
                out[k] = self._fernet.decrypt(v[len(PREFIX) :].encode()).decode()
            except InvalidToken as exc:
                raise ValueError(
                    f"secret {k!r} cannot be decrypted: was secret_key changed?"
                ) from exc
        return out
