"""One mailbox connection for the poller: login, SELECT, UID fetches, IDLE, APPEND.

Protocol framing lives in imap_client.py; this module turns IMAP responses into the few
facts the sync needs (UIDVALIDITY, UIDs, sizes, raw messages).
"""

from __future__ import annotations

import base64
import logging
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

from .config_check import ServerConfig
from .errors import ImapError
from .imap_client import ImapClient, Response, Untagged, quote
from .oauth import TokenSource, xoauth2_initial_response

log = logging.getLogger(__name__)

CLIENT_VERSION = "0.1"
_FETCH = re.compile(rb"^\* \d+ FETCH \(", re.I)
_UID = re.compile(rb"\bUID (\d+)", re.I)
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)", re.I)
_INTERNALDATE = re.compile(rb'\bINTERNALDATE "([^"]+)"', re.I)
_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]", re.I)
_UIDNEXT = re.compile(rb"\[UIDNEXT (\d+)\]", re.I)
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


@dataclass(frozen=True)
class FolderState:
    uidvalidity: int
    uidnext: int | None


@dataclass(frozen=True)
class MessageMeta:
    uid: int
    size: int
    internal_date: datetime | None


class ImapConnection:
    """A logged-in connection; after any failure the caller closes it and reconnects."""

    def __init__(
        self, server: ServerConfig, timeout: float, tokens: TokenSource | None = None
    ) -> None:
        self._server = server
        self._client = ImapClient(timeout)
        self._tokens = tokens
        self.selected: str | None = None

    @property
    def connected(self) -> bool:
        return self._client.is_open

    @property
    def supports_idle(self) -> bool:
        return "IDLE" in self._client.capabilities

    async def connect(self) -> None:
        server = self._server
        tls = server.tls_context() if server.security == "ssl" else None
        try:
            await self._client.open(server.host, server.port, tls)
            if server.security == "starttls":
                await self._client.starttls(server.tls_context())
            if server.oauth:
                await self._login_oauth()
            else:
                await self._client.login(server.username, server.password)
            if not self._client.capabilities or "IDLE" not in self._client.capabilities:
                # some servers only list extensions (IDLE) after login
                await self._client.refresh_capabilities()
            if "ID" in self._client.capabilities:
                # 163/126 (NetEase) answer "Unsafe Login" to SELECT until the client has
                # identified itself with ID (RFC 2971)
                fields = ("name", "crmbot", "version", CLIENT_VERSION, "vendor", "crmbot")
                await self._client.command("ID", "(" + " ".join(quote(f) for f in fields) + ")")
        except BaseException:
            await self._client.close()
            raise

    async def _login_oauth(self) -> None:
        """XOAUTH2 with the cached access token; once more with a fresh one if refused
        (revoked or expired early), since the cache cannot know that."""
        if self._tokens is None:
            raise ImapError("OAuth login needs a token source", translation_key="email.oauth")
        if "AUTH=XOAUTH2" not in self._client.capabilities:
            raise ImapError(
                "the IMAP server does not offer AUTH=XOAUTH2",
                translation_key="email.imap_no_xoauth2",
            )
        user = self._server.username
        for refresh in (False, True):
            token = await self._tokens.access_token(refresh=refresh)
            response = await self._client.authenticate(
                "XOAUTH2", xoauth2_initial_response(user, token)
            )
            if response.ok:
                return
            log.info("IMAP XOAUTH2 refused for %s (refresh=%s): %s", user, refresh, response.text)
        raise ImapError(
            f"IMAP XOAUTH2 login refused for {user}: {response.text}",
            translation_key="email.imap_login_refused",
        )

    async def close(self, *, graceful: bool = True) -> None:
        """LOGOUT and close; `graceful=False` only drops the socket (mid-IDLE, broken)."""
        self.selected = None
        if graceful:
            await self._client.logout()
        else:
            await self._client.close()

    async def select(self, folder: str) -> FolderState:
        response = await self._client.command("SELECT", encode_folder(folder))
        if not response.ok:
            raise ImapError(f"cannot open folder {folder!r}: {response.text}")
        self.selected = folder
        data = b"\n".join(item.text for item in response.untagged) + b"\n" + response.text.encode()
        validity = _UIDVALIDITY.search(data)
        if validity is None:
            raise ImapError(f"server gave no UIDVALIDITY for {folder!r}")
        uidnext = _UIDNEXT.search(data)
        return FolderState(int(validity.group(1)), int(uidnext.group(1)) if uidnext else None)

    async def uids_since(self, day: date) -> list[int]:
        since = f"{day.day:02d}-{_MONTHS[day.month - 1]}-{day.year}"
        response = await self._client.check("UID", "SEARCH", "SINCE", since)
        uids: list[int] = []
        for item in response.untagged:
            tokens = item.text.split()
            if len(tokens) >= 2 and tokens[1].upper() == b"SEARCH":
                uids.extend(int(tok) for tok in tokens[2:] if tok.isdigit())
        return sorted(uids)

    async def metas_after(self, last_uid: int) -> list[MessageMeta]:
        """Messages with UID > last_uid. `n:*` also returns the highest message when n is
        past the end (RFC 3501 §6.4.8), so UIDs at or below last_uid are dropped here."""
        return [m for m in await self.metas(f"{last_uid + 1}:*") if m.uid > last_uid]

    async def metas(self, uid_set: str) -> list[MessageMeta]:
        response = await self._client.check(
            "UID", "FETCH", uid_set, "(UID RFC822.SIZE INTERNALDATE)"
        )
        out: list[MessageMeta] = []
        for item in _fetches(response):
            uid, size = _UID.search(item.text), _SIZE.search(item.text)
            if uid is None:
                continue
            idate = _INTERNALDATE.search(item.text)
            out.append(
                MessageMeta(
                    uid=int(uid.group(1)),
                    size=int(size.group(1)) if size else 0,
                    internal_date=_internal_date(idate.group(1).decode()) if idate else None,
                )
            )
        return sorted(out, key=lambda m: m.uid)

    async def fetch(self, uid: int, headers_only: bool = False) -> bytes | None:
        """The raw message (PEEK: the user's \\Seen flags stay untouched); None if gone."""
        part = "BODY.PEEK[HEADER]" if headers_only else "BODY.PEEK[]"
        response = await self._client.check("UID", "FETCH", str(uid), f"(UID {part})")
        for item in _fetches(response):
            found = _UID.search(item.text)
            if found and int(found.group(1)) == uid and item.literals:
                return item.literals[0]
        return None  # expunged between the listing and the fetch

    async def append(
        self,
        data: bytes,
        folder: str,
        flags: str = "(\\Seen)",
        internal_date: datetime | None = None,
    ) -> None:
        args: list[str | bytes] = ["APPEND", encode_folder(folder), flags]
        if internal_date is not None:
            d = internal_date.astimezone(UTC)
            stamp = f"{d.day:02d}-{_MONTHS[d.month - 1]}-{d.year} {d:%H:%M:%S} +0000"
            args.append(quote(stamp))
        await self._client.check(*args, data)

    async def has_message_id(self, message_id: str) -> bool:
        """Whether the selected folder holds a mail with this Message-ID header."""
        response = await self._client.check(
            "UID", "SEARCH", "HEADER", "Message-ID", quote(message_id)
        )
        return any(
            len(item.text.split()) > 2 and item.text.split()[1].upper() == b"SEARCH"
            for item in response.untagged
        )

    async def fetch_all(self) -> list[bytes]:
        """Every message of the selected folder, in UID order (tests, support tools)."""
        response = await self._client.check("UID", "FETCH", "1:*", "(UID BODY.PEEK[])")
        return [item.literals[0] for item in _fetches(response) if item.literals]

    async def idle(self, seconds: float) -> bool:
        """IDLE until the server pushes something or `seconds` pass; True on a push.

        Cancelling leaves the connection mid-IDLE, so it is dropped (the next pull
        reconnects)."""
        try:
            return await self._client.idle(seconds)
        except BaseException:
            await self.close(graceful=False)
            raise

    async def noop(self) -> None:
        await self._client.check("NOOP")


def _fetches(response: Response) -> list[Untagged]:
    return [item for item in response.untagged if _FETCH.match(item.text)]


def _internal_date(value: str) -> datetime | None:
    try:
        return datetime.strptime(value.strip(), "%d-%b-%Y %H:%M:%S %z").astimezone(UTC)
    except ValueError:
        return None


def encode_folder(name: str) -> str:
    """Folder name as an IMAP quoted string in modified UTF-7 (RFC 3501 §5.1.3):
    Chinese folder names such as 客户来信 are common on 企业邮箱."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            encoded = base64.b64encode("".join(pending).encode("utf-16-be")).decode()
            out.append("&" + encoded.rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    flush()
    return quote("".join(out))
