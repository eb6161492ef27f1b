"""The callback half every WeCom account kind shares: URL verification (GET) and the
encrypted envelope (POST). The kinds differ only in what they do with the decrypted
plaintext, so each passes a `to_inbound` of its own."""

from __future__ import annotations

from collections.abc import Sequence

from channels.base import (
    BadSignature,
    Forbidden,
    MalformedPayload,
    PayloadTooLarge,
    RawRequest,
    RawResponse,
)
from conversations.types import Inbound

from .crypto import InvalidSignature, WeComCrypto, WeComCryptoError
from .inbound import parse_xml, to_inbound

MAX_BODY = 256 * 1024  # real callbacks are a few KB


class CallbackEndpoint:
    """Mixin: verify/parse/acknowledge/handshake over `self.crypto`."""

    crypto: WeComCrypto | None

    def _crypto(self) -> WeComCrypto:
        if self.crypto is None:
            raise Forbidden("this account has no callback Token/EncodingAESKey configured")
        return self.crypto

    def _envelope(self, request: RawRequest) -> tuple[str, str, str, str]:
        q = request.query
        missing = [k for k in ("msg_signature", "timestamp", "nonce") if not q.get(k)]
        if missing:
            raise BadSignature(f"missing query parameters: {', '.join(missing)}")
        if len(request.body) > MAX_BODY:
            raise PayloadTooLarge(f"callback body of {len(request.body)} bytes")
        encrypt = parse_xml(request.body).get("Encrypt", "")
        if not encrypt:
            raise MalformedPayload("callback has no <Encrypt>")
        return q["msg_signature"], q["timestamp"], q["nonce"], encrypt

    def decrypt_request(self, request: RawRequest) -> bytes:
        crypto = self._crypto()
        sig, ts, nonce, encrypt = self._envelope(request)
        try:
            return crypto.decrypt_checked(sig, ts, nonce, encrypt)
        except WeComCryptoError as exc:
            if exc.code == -40001:
                raise BadSignature(str(exc)) from exc
            raise MalformedPayload(f"undecryptable callback ({exc.code}): {exc}") from exc

    async def verify(self, request: RawRequest) -> None:
        # the signature only: parse() decrypts (and checks it again, a SHA-1 away), so
        # the AES step runs once per callback
        crypto = self._crypto()
        sig, ts, nonce, encrypt = self._envelope(request)
        try:
            crypto.check_signature(sig, ts, nonce, encrypt)
        except InvalidSignature as exc:
            raise BadSignature(str(exc)) from exc

    def parse(self, request: RawRequest) -> Sequence[Inbound]:
        return [to_inbound(self.decrypt_request(request))]

    def acknowledge(self, request: RawRequest, stored: Sequence[Inbound]) -> RawResponse:
        # empty 200: we answer later through the API (passive replies are optional)
        return RawResponse(status=200, body=b"")

    async def handshake(self, request: RawRequest) -> RawResponse:
        """GET URL verification: answer the decrypted echostr, bare (no quotes/BOM/newline)."""
        crypto = self._crypto()
        q = request.query
        if not all(q.get(k) for k in ("msg_signature", "timestamp", "nonce", "echostr")):
            raise BadSignature("URL verification without msg_signature/timestamp/nonce/echostr")
        try:
            plain = crypto.decrypt_checked(
                q["msg_signature"], q["timestamp"], q["nonce"], q["echostr"]
            )
        except WeComCryptoError as exc:
            if exc.code == -40001:
                raise BadSignature(str(exc)) from exc
            raise MalformedPayload(str(exc)) from exc
        return RawResponse(status=200, body=plain, content_type="text/plain")
