"""ctypes binding of Tencent's Finance SDK (libWeWorkFinanceSdk_C.so, Linux x86-64 /
arm64), loaded from the path the operator configures (`finance_sdk_path`); crmbot does
not ship or download it. C API (WeWorkFinanceSdk_C.h):

    WeWorkFinanceSdk_t* NewSdk(); int Init(sdk, corpid, secret); void DestroySdk(sdk);
    int GetChatData(sdk, unsigned long long seq, unsigned int limit, proxy, passwd,
                    int timeout, Slice_t* out);
    int DecryptData(const char* encrypt_key, const char* encrypt_msg, Slice_t* out);
    int GetMediaData(sdk, indexbuf, sdkfileid, proxy, passwd, int timeout, MediaData_t* out);
    Slice_t* NewSlice(); void FreeSlice(Slice_t*); char* GetContentFromSlice(Slice_t*);
    int GetSliceLen(Slice_t*); MediaData_t* NewMediaData(); void FreeMediaData(MediaData_t*);
    char* GetOutIndexBuf(MediaData_t*); char* GetData(MediaData_t*); int GetIndexLen(…);
    int GetDataLen(…); int IsMediaDataFinish(…);

Every call blocks on the network, so each runs in a worker thread, one at a time.
"""

from __future__ import annotations

import asyncio
import ctypes
import threading
from pathlib import Path
from typing import Any

from .sdk import ArchiveConfigError, ArchiveError, MediaChunk

_c = ctypes


def _declare(lib: Any) -> None:
    vp, cp = _c.c_void_p, _c.c_char_p
    lib.NewSdk.restype = vp
    lib.NewSdk.argtypes = []
    lib.Init.restype = _c.c_int
    lib.Init.argtypes = [vp, cp, cp]
    lib.DestroySdk.restype = None
    lib.DestroySdk.argtypes = [vp]
    lib.GetChatData.restype = _c.c_int
    lib.GetChatData.argtypes = [vp, _c.c_ulonglong, _c.c_uint, cp, cp, _c.c_int, vp]
    lib.DecryptData.restype = _c.c_int
    lib.DecryptData.argtypes = [cp, cp, vp]
    lib.GetMediaData.restype = _c.c_int
    lib.GetMediaData.argtypes = [vp, cp, cp, cp, cp, _c.c_int, vp]
    lib.NewSlice.restype = vp
    lib.NewSlice.argtypes = []
    lib.FreeSlice.restype = None
    lib.FreeSlice.argtypes = [vp]
    lib.GetContentFromSlice.restype = _c.POINTER(_c.c_char)
    lib.GetContentFromSlice.argtypes = [vp]
    lib.GetSliceLen.restype = _c.c_int
    lib.GetSliceLen.argtypes = [vp]
    lib.NewMediaData.restype = vp
    lib.NewMediaData.argtypes = []
    lib.FreeMediaData.restype = None
    lib.FreeMediaData.argtypes = [vp]
    lib.GetOutIndexBuf.restype = _c.POINTER(_c.c_char)
    lib.GetOutIndexBuf.argtypes = [vp]
    lib.GetData.restype = _c.POINTER(_c.c_char)
    lib.GetData.argtypes = [vp]
    lib.GetIndexLen.restype = _c.c_int
    lib.GetIndexLen.argtypes = [vp]
    lib.GetDataLen.restype = _c.c_int
    lib.GetDataLen.argtypes = [vp]
    lib.IsMediaDataFinish.restype = _c.c_int
    lib.IsMediaDataFinish.argtypes = [vp]


class NativeFinanceSdk:
    def __init__(
        self, library_path: str, corp_id: str, secret: str, *, proxy: str = "", passwd: str = ""
    ) -> None:
        if not library_path:
            raise ArchiveConfigError(
                "未配置 Finance SDK 路径 finance_sdk_path (libWeWorkFinanceSdk_C.so not configured)"
            )
        self.library_path = library_path
        self.corp_id = corp_id
        self.secret = secret
        self.proxy = proxy.encode()
        self.passwd = passwd.encode()
        self._lib: Any = None
        self._sdk: Any = None
        self._lock = threading.Lock()

    def _ensure(self) -> tuple[Any, Any]:
        if self._sdk is not None:
            return self._lib, self._sdk
        if not Path(self.library_path).is_file():
            raise ArchiveConfigError(
                f"找不到 Finance SDK 文件 (Finance SDK not found): {self.library_path}"
            )
        try:
            lib = ctypes.CDLL(self.library_path)
            _declare(lib)
        except (OSError, AttributeError) as exc:
            raise ArchiveConfigError(
                f"无法加载 Finance SDK (cannot load the Finance SDK; Linux x86-64/arm64 only): {exc}"
            ) from exc
        sdk = lib.NewSdk()
        rc = lib.Init(sdk, self.corp_id.encode(), self.secret.encode())
        if rc != 0:
            lib.DestroySdk(sdk)
            raise ArchiveError(rc)
        self._lib, self._sdk = lib, sdk
        return lib, sdk

    def _chat_data(self, seq: int, limit: int, sdk_timeout: int) -> str:
        with self._lock:
            lib, sdk = self._ensure()
            out = lib.NewSlice()
            try:
                rc = lib.GetChatData(sdk, seq, limit, self.proxy, self.passwd, sdk_timeout, out)
                if rc != 0:
                    raise ArchiveError(rc)
                return _c.string_at(lib.GetContentFromSlice(out), lib.GetSliceLen(out)).decode()
            finally:
                lib.FreeSlice(out)

    def _decrypt(self, random_key: str, encrypt_chat_msg: str) -> str:
        with self._lock:
            lib, _sdk = self._ensure()
            out = lib.NewSlice()
            try:
                rc = lib.DecryptData(random_key.encode(), encrypt_chat_msg.encode(), out)
                if rc != 0:
                    raise ArchiveError(rc)
                return _c.string_at(lib.GetContentFromSlice(out), lib.GetSliceLen(out)).decode()
            finally:
                lib.FreeSlice(out)

    def _media(self, sdkfileid: str, index: str, sdk_timeout: int) -> MediaChunk:
        with self._lock:
            lib, sdk = self._ensure()
            out = lib.NewMediaData()
            try:
                rc = lib.GetMediaData(
                    sdk,
                    index.encode(),
                    sdkfileid.encode(),
                    self.proxy,
                    self.passwd,
                    sdk_timeout,
                    out,
                )
                if rc != 0:
                    raise ArchiveError(rc)
                data = _c.string_at(lib.GetData(out), lib.GetDataLen(out))
                nxt = _c.string_at(lib.GetOutIndexBuf(out), lib.GetIndexLen(out)).decode()
                return MediaChunk(data, nxt, bool(lib.IsMediaDataFinish(out)))
            finally:
                lib.FreeMediaData(out)

    async def get_chat_data(self, seq: int, limit: int, sdk_timeout: int) -> str:
        return await asyncio.to_thread(self._chat_data, seq, limit, sdk_timeout)

    async def decrypt_data(self, random_key: str, encrypt_chat_msg: str) -> str:
        return await asyncio.to_thread(self._decrypt, random_key, encrypt_chat_msg)

    async def get_media_data(self, sdkfileid: str, index: str, sdk_timeout: int) -> MediaChunk:
        return await asyncio.to_thread(self._media, sdkfileid, index, sdk_timeout)
