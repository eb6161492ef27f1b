"""Content-addressed media store on disk (WeCom media, email attachments).

Files are named by SHA-256 so the same image received twice is stored once; the
MIME type is sniffed from the bytes, not trusted from the provider.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MAX_BYTES = 20 * 1024 * 1024

# magic numbers of the types the console previews; everything else is a download
_MAGIC: list[tuple[bytes, int, str]] = [
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"RIFF", 0, "application/octet-stream"),  # refined below (webp/wav)
    (b"%PDF-", 0, "application/pdf"),
    (b"#!AMR", 0, "audio/amr"),
    (b"#!SILK_V3", 0, "audio/silk"),
    (b"\x02#!SILK_V3", 0, "audio/silk"),
    (b"ID3", 0, "audio/mpeg"),
    (b"PK\x03\x04", 0, "application/zip"),
    (b"ftyp", 4, "video/mp4"),
]

FORBIDDEN_TYPES = frozenset({"application/x-msdownload", "application/x-dosexec"})


class MediaRejected(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def sniff_mime(data: bytes) -> str:
    """MIME type from the first bytes; never from the provider's label."""
    if data[:2] == b"MZ":
        return "application/x-msdownload"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/wav"
    for magic, offset, mime in _MAGIC:
        if data[offset : offset + len(magic)] == magic:
            return mime
    try:
        data[:4096].decode("utf-8")
    except UnicodeDecodeError:
        return "application/octet-stream"
    return "text/plain"


@dataclass(frozen=True)
class StoredMedia:
    sha256: str
    size: int
    mime: str
    filename: str | None = None


class MediaStore:
    def __init__(self, root: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.root = root
        self.max_bytes = max_bytes

    def path_for(self, sha256: str) -> Path:
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise ValueError("not a media key")
        return self.root / sha256[:2] / sha256

    def put(self, data: bytes, filename: str | None = None) -> StoredMedia:
        """Store bytes; raises MediaRejected when over the limit or of a forbidden type."""
        if len(data) > self.max_bytes:
            raise MediaRejected(f"file is {len(data)} bytes, over the {self.max_bytes} limit")
        mime = sniff_mime(data)
        if mime in FORBIDDEN_TYPES:
            raise MediaRejected(f"file type {mime} is not accepted")
        digest = hashlib.sha256(data).hexdigest()
        path = self.path_for(digest)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_bytes(data)
            os.replace(tmp, path)  # atomic: a reader never sees half a file
        return StoredMedia(sha256=digest, size=len(data), mime=mime, filename=filename)

    def read(self, sha256: str) -> bytes:
        return self.path_for(sha256).read_bytes()
