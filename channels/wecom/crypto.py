"""WeCom callback crypto (企业微信 加解密方案, doc 90968), owned here rather than taken from
wechatpy so every malformed input raises one typed error (wechatpy leaks binascii /
struct / Unicode errors) and signatures are compared in constant time.

- signature = sha1(sorted(token, timestamp, nonce, encrypt) joined) hex
- AES-256-CBC, key = b64decode(EncodingAESKey + "="), IV = key[:16]
- plaintext = random(16) ‖ uint32_be(len(msg)) ‖ msg ‖ receiveid, PKCS#7 to a 32-byte block
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 32  # WeCom pads to 32 bytes, not AES's 16: a 16-byte unpadder rejects real vectors


class WeComCryptoError(Exception):
    """Base of every crypto failure; `code` follows Tencent's reference error table."""

    code = -40000


class InvalidSignature(WeComCryptoError):
    code = -40001


class IllegalAesKey(WeComCryptoError):
    code = -40004


class ReceiverMismatch(WeComCryptoError):
    code = -40005


class DecryptFailed(WeComCryptoError):
    code = -40007


def signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    parts = sorted([token, timestamp, nonce, encrypt])
    return hashlib.sha1("".join(parts).encode("utf-8"), usedforsecurity=False).hexdigest()


def aes_key(encoding_aes_key: str) -> bytes:
    if len(encoding_aes_key) != 43:
        raise IllegalAesKey("EncodingAESKey must be 43 characters")
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise IllegalAesKey("EncodingAESKey is not base64") from exc
    if len(key) != 32:
        raise IllegalAesKey("EncodingAESKey does not decode to 32 bytes")
    return key


class WeComCrypto:
    def __init__(self, token: str, encoding_aes_key: str, receive_id: str) -> None:
        self.token = token
        self.key = aes_key(encoding_aes_key)
        self.receive_id = receive_id

    def check_signature(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> None:
        expected = signature(self.token, timestamp, nonce, encrypt)
        if not hmac.compare_digest(expected.encode(), (msg_signature or "").lower().encode()):
            raise InvalidSignature("msg_signature does not match")

    def decrypt(self, encrypt: str) -> bytes:
        """Decrypt an Encrypt field; raises DecryptFailed/ReceiverMismatch, nothing else."""
        try:
            data = base64.b64decode(encrypt, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise DecryptFailed("Encrypt is not base64") from exc
        if not data or len(data) % 16:
            raise DecryptFailed("ciphertext length is not a multiple of the AES block")
        decryptor = Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16])).decryptor()
        plain = decryptor.update(data) + decryptor.finalize()
        pad = plain[-1]
        if not 1 <= pad <= BLOCK or pad > len(plain) or plain[-pad:] != bytes([pad]) * pad:
            raise DecryptFailed("bad PKCS#7 padding")
        plain = plain[:-pad]
        if len(plain) < 20:
            raise DecryptFailed("plaintext too short")
        (length,) = struct.unpack(">I", plain[16:20])
        if 20 + length > len(plain):
            raise DecryptFailed("declared message length exceeds the plaintext")
        msg = plain[20 : 20 + length]
        receiver = plain[20 + length :]
        if self.receive_id and receiver.decode("utf-8", "replace") != self.receive_id:
            raise ReceiverMismatch("message is addressed to another corp/suite")
        return msg

    def decrypt_checked(
        self, msg_signature: str, timestamp: str, nonce: str, encrypt: str
    ) -> bytes:
        self.check_signature(msg_signature, timestamp, nonce, encrypt)
        return self.decrypt(encrypt)

    def encrypt(self, message: bytes, random16: bytes | None = None) -> str:
        rnd = random16 if random16 is not None else os.urandom(16)
        body = rnd + struct.pack(">I", len(message)) + message + self.receive_id.encode()
        pad = BLOCK - len(body) % BLOCK
        body += bytes([pad]) * pad
        encryptor = Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16])).encryptor()
        return base64.b64encode(encryptor.update(body) + encryptor.finalize()).decode()

    def encrypt_envelope(self, message: bytes, timestamp: str, nonce: str) -> tuple[str, str]:
        """(Encrypt, MsgSignature) for a callback body or a passive reply."""
        enc = self.encrypt(message)
        return enc, signature(self.token, timestamp, nonce, enc)
