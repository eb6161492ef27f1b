"""The ctypes binding of the Finance SDK, exercised against a small C library that
implements the SDK's C interface (WeWorkFinanceSdk_C.h) — the real .so is Tencent's and
is not shipped. Skipped where no C compiler is installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from channels.wecom.archive.native import NativeFinanceSdk
from channels.wecom.archive.sdk import ArchiveError

FAKE_SDK = r"""
#include <stdlib.h>
#include <string.h>
typedef struct { char* buf; int len; } Slice_t;
typedef struct { char* index; int index_len; char* data; int data_len; int finish; } MediaData_t;
typedef struct { int ready; } WeWorkFinanceSdk_t;
static void put(Slice_t* s, const char* text) {
    s->len = (int)strlen(text); s->buf = malloc(s->len + 1); memcpy(s->buf, text, s->len + 1);
}
WeWorkFinanceSdk_t* NewSdk() { return calloc(1, sizeof(WeWorkFinanceSdk_t)); }
void DestroySdk(WeWorkFinanceSdk_t* sdk) { free(sdk); }
int Init(WeWorkFinanceSdk_t* sdk, const char* corpid, const char* secret) {
    if (strcmp(secret, "right-secret") != 0) return 10004;
    sdk->ready = 1; return 0;
}
Slice_t* NewSlice() { return calloc(1, sizeof(Slice_t)); }
void FreeSlice(Slice_t* s) { free(s->buf); free(s); }
char* GetContentFromSlice(Slice_t* s) { return s->buf; }
int GetSliceLen(Slice_t* s) { return s->len; }
int GetChatData(WeWorkFinanceSdk_t* sdk, unsigned long long seq, unsigned int limit,
                const char* proxy, const char* passwd, int timeout, Slice_t* out) {
    if (!sdk->ready) return 10003;
    if (limit > 1000) return 10000;
    if (seq >= 2) { put(out, "{\"errcode\":0,\"errmsg\":\"ok\",\"chatdata\":[]}"); return 0; }
    put(out, "{\"errcode\":0,\"errmsg\":\"ok\",\"chatdata\":[{\"seq\":2,\"msgid\":\"m2\","
             "\"publickey_ver\":1,\"encrypt_random_key\":\"k\",\"encrypt_chat_msg\":\"c\"}]}");
    return 0;
}
int DecryptData(const char* key, const char* msg, Slice_t* out) {
    if (strcmp(key, "good-key") != 0) return 10006;
    put(out, "{\"msgtype\":\"text\",\"text\":{\"content\":\"\xe4\xbd\xa0\xe5\xa5\xbd\"}}");
    return 0;
}
MediaData_t* NewMediaData() { return calloc(1, sizeof(MediaData_t)); }
void FreeMediaData(MediaData_t* m) { free(m->index); free(m->data); free(m); }
char* GetOutIndexBuf(MediaData_t* m) { return m->index; }
char* GetData(MediaData_t* m) { return m->data; }
int GetIndexLen(MediaData_t* m) { return m->index_len; }
int GetDataLen(MediaData_t* m) { return m->data_len; }
int IsMediaDataFinish(MediaData_t* m) { return m->finish; }
int GetMediaData(WeWorkFinanceSdk_t* sdk, const char* indexbuf, const char* fileid,
                 const char* proxy, const char* passwd, int timeout, MediaData_t* m) {
    if (strcmp(fileid, "file-1") != 0) return 10005;
    int first = indexbuf[0] == '\0';
    m->data_len = 3; m->data = malloc(3); memcpy(m->data, first ? "\x00\x01\x02" : "\x03\x04\x05", 3);
    m->index = malloc(2); memcpy(m->index, "1", 2); m->index_len = 1;
    m->finish = !first;
    return 0;
}
"""


@pytest.fixture(scope="module")
def fake_sdk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler to build the Finance SDK stand-in")
    root = tmp_path_factory.mktemp("finance-sdk")
    (root / "fake.c").write_text(FAKE_SDK)
    lib = root / "libWeWorkFinanceSdk_C.so"
    subprocess.run([compiler, "-shared", "-fPIC", "-o", str(lib), str(root / "fake.c")], check=True)
    return lib


async def test_binding_reads_chat_data_and_decrypts(fake_sdk: Path) -> None:
    sdk = NativeFinanceSdk(str(fake_sdk), "wwcorp", "right-secret")
    assert '"seq":2' in await sdk.get_chat_data(0, 100, 5)
    assert await sdk.decrypt_data("good-key", "c") == '{"msgtype":"text","text":{"content":"你好"}}'


async def test_binding_reads_media_in_chunks(fake_sdk: Path) -> None:
    sdk = NativeFinanceSdk(str(fake_sdk), "wwcorp", "right-secret")
    first = await sdk.get_media_data("file-1", "", 5)
    second = await sdk.get_media_data("file-1", first.next_index, 5)
    assert (first.data, first.finished, second.data, second.finished) == (
        b"\x00\x01\x02",
        False,
        b"\x03\x04\x05",
        True,
    )


async def test_wrong_secret_is_explained(fake_sdk: Path) -> None:
    sdk = NativeFinanceSdk(str(fake_sdk), "wwcorp", "wrong")
    with pytest.raises(ArchiveError) as info:
        await sdk.get_chat_data(0, 100, 5)
    assert info.value.code == 10004 and "Secret" in info.value.readable


async def test_wrong_key_is_explained(fake_sdk: Path) -> None:
    sdk = NativeFinanceSdk(str(fake_sdk), "wwcorp", "right-secret")
    with pytest.raises(ArchiveError) as info:
        await sdk.decrypt_data("bad-key", "c")
    assert info.value.code == 10006 and "私钥" in info.value.readable
