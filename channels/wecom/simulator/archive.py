"""A double of the Finance SDK (会话内容存档) behind /finance/*: GetChatData by seq with
RSA-wrapped random keys per key version, DecryptData and chunked GetMediaData, with the
SDK's error codes (10004 wrong secret, 10009 IP not trusted, 301052 licence expired,
10006 wrong key) — the same shapes the native library returns."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

if TYPE_CHECKING:
    from .core import WeComSimulator


_KEY_POOL: list[rsa.RSAPrivateKey] = []


def _pooled_key(index: int) -> rsa.RSAPrivateKey:
    """RSA-2048 keys are slow to make; simulators in one process share a pool."""
    while len(_KEY_POOL) <= index:
        _KEY_POOL.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return _KEY_POOL[index]


def _seal(random_key: str, plain: str) -> str:
    nonce = os.urandom(12)
    key = hashlib.sha256(random_key.encode()).digest()
    return base64.b64encode(nonce + AESGCM(key).encrypt(nonce, plain.encode(), None)).decode()


def _open(random_key: str, sealed: str) -> str:
    data = base64.b64decode(sealed)
    key = hashlib.sha256(random_key.encode()).digest()
    return AESGCM(key).decrypt(data[:12], data[12:], None).decode()


@dataclass
class ArchiveSim:
    core: WeComSimulator
    secrets_by_corp: dict[str, str] = field(default_factory=dict)
    keys: dict[str, dict[int, rsa.RSAPrivateKey]] = field(default_factory=dict)  # corp → ver → key
    current_version: dict[str, int] = field(default_factory=dict)
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    expired: set[str] = field(default_factory=set)  # corps whose licence ran out
    untrusted: set[str] = field(default_factory=set)  # corps where our IP is not trusted
    chunk_size: int = 512 * 1024
    _keys_made: int = 0

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/finance/get_chat_data", self._get_chat_data)
        router.add_post("/finance/decrypt_data", self._decrypt)
        router.add_post("/finance/get_media_data", self._media)

    # ---- set-up

    def enable(self, corp_id: str, secret: str) -> str:
        """Turn the archive on for a corp; returns the PEM of key version 1."""
        self.secrets_by_corp[corp_id] = secret
        return self.rotate_key(corp_id)

    def rotate_key(self, corp_id: str) -> str:
        """A new key version (the admin uploaded a new public key); its private PEM."""
        key = _pooled_key(self._keys_made)
        self._keys_made += 1
        version = self.current_version.get(corp_id, 0) + 1
        self.keys.setdefault(corp_id, {})[version] = key
        self.current_version[corp_id] = version
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    def chat(
        self,
        corp_id: str,
        sender: str,
        to: str,
        msgtype: str = "text",
        content: dict[str, Any] | None = None,
        *,
        text: str = "",
        msgtime_ms: int | None = None,
        roomid: str = "",
        action: str = "send",
    ) -> int:
        """Archive one message; returns its seq."""
        return self.add_record(
            corp_id,
            {
                "msgid": f"{secrets.randbits(60)}_{int(self.core.clock())}_external",
                "action": action,
                "from": sender,
                "tolist": [to],
                "roomid": roomid,
                "msgtime": msgtime_ms if msgtime_ms is not None else int(self.core.clock() * 1000),
                "msgtype": msgtype,
                msgtype: content if content is not None else {"content": text},
            },
        )

    def add_record(self, corp_id: str, record: dict[str, Any]) -> int:
        """Archive a record as the SDK returns it once decrypted (doc 91774 shape)."""
        log = self.records.setdefault(corp_id, [])
        seq = (log[-1]["seq"] if log else 0) + 1
        version = self.current_version[corp_id]
        random_key = secrets.token_hex(12)
        public = self.keys[corp_id][version].public_key()
        log.append(
            {
                "seq": seq,
                "msgid": record["msgid"],
                "publickey_ver": version,
                "encrypt_random_key": base64.b64encode(
                    public.encrypt(random_key.encode(), padding.PKCS1v15())
                ).decode(),
                "encrypt_chat_msg": _seal(random_key, json.dumps(record, ensure_ascii=False)),
            }
        )
        return seq

    def add_file(self, data: bytes) -> str:
        sdkfileid = "Cts" + secrets.token_urlsafe(24)
        self.files[sdkfileid] = data
        return sdkfileid

    # ---- the SDK calls

    def _check(self, body: dict[str, Any]) -> int:
        corp = str(body.get("corpid", ""))
        if self.secrets_by_corp.get(corp) != body.get("secret"):
            return 10004
        if corp in self.untrusted:
            return 10009
        return 0

    async def _get_chat_data(self, request: web.Request) -> web.Response:
        body = await request.json()
        rc = self._check(body)
        if rc:
            return web.json_response({"rc": rc})
        corp = str(body["corpid"])
        if corp in self.expired:
            payload: dict[str, Any] = {
                "errcode": 301052,
                "errmsg": "msgaudit expired",
                "chatdata": [],
            }
        else:
            limit = int(body.get("limit", 1000))
            if not 1 <= limit <= 1000:
                return web.json_response({"rc": 10000})
            seq = int(body.get("seq", 0))
            rows = [r for r in self.records.get(corp, []) if r["seq"] > seq][:limit]
            payload = {"errcode": 0, "errmsg": "ok", "chatdata": rows}
        return web.json_response({"rc": 0, "slice": json.dumps(payload)})

    async def _decrypt(self, request: web.Request) -> web.Response:
        body = await request.json()
        try:
            plain = _open(str(body.get("key", "")), str(body.get("msg", "")))
        except (ValueError, KeyError):
            return web.json_response({"rc": 10006})
        except Exception:  # noqa: BLE001  (AESGCM raises InvalidTag: the SDK answers 10006)
            return web.json_response({"rc": 10006})
        return web.json_response({"rc": 0, "slice": plain})

    async def _media(self, request: web.Request) -> web.Response:
        body = await request.json()
        rc = self._check(body)
        if rc:
            return web.json_response({"rc": rc})
        data = self.files.get(str(body.get("sdkfileid", "")))
        if data is None:
            return web.json_response({"rc": 10005})
        start = int(body.get("index") or 0)
        chunk = data[start : start + self.chunk_size]
        end = start + len(chunk)
        return web.json_response(
            {
                "rc": 0,
                "data": base64.b64encode(chunk).decode(),
                "next_index": str(end),
                "finished": end >= len(data),
            }
        )
