"""The email channel adapter: one mailbox, IMAP in (a PullAdapter), SMTP out.

Receiving follows the UID sync of research note §3a: per folder the cursor
"imap:<folder>" holds "<UIDVALIDITY>:<last UID>", moved by `bot.pollers.store_pull_page`
in the same transaction as the page's messages. IDLE is only a wake-up signal.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import aiosmtplib

from channels.base import (
    ChannelContext,
    ConnectionCheck,
    Forbidden,
    PullPage,
    RawRequest,
    RawResponse,
)
from channels.registry import AdapterSpec
from conversations.types import (
    AccountRef,
    ChannelRules,
    Inbound,
    Outbound,
    Purpose,
    SendOutcome,
    SendResult,
)

from . import errors
from .config_check import MailboxConfig, mailbox_config
from .imap_source import FolderState, ImapConnection, MessageMeta
from .inbound import MailSource, mail_to_inbound
from .oauth import TokenSource
from .outbound import InvalidOutbound, build_message, smtp_send
from .thread_headers import message_id_for

log = logging.getLogger(__name__)

KIND = "email"
SENT_TTL = 30 * 24 * 3600.0  # how long a sent key is remembered (outbox retries end far sooner)


def cursor_name(folder: str) -> str:
    return f"imap:{folder}"


def parse_cursor(value: str | None) -> tuple[int, int] | None:
    """(uidvalidity, last_uid) from a stored cursor; None if absent or unreadable."""
    if not value:
        return None
    try:
        validity, last = value.split(":", 1)
        return int(validity), int(last)
    except ValueError:
        return None


class EmailAdapter:
    """ChannelAdapter + PullAdapter for one mailbox."""

    kind: ClassVar[str] = KIND
    rules: ClassVar[ChannelRules] = ChannelRules(auto_reply=True, marketing=True)

    def __init__(
        self,
        account: AccountRef,
        ctx: ChannelContext,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.account = account
        self.ctx = ctx
        self.config: MailboxConfig = mailbox_config(account, ctx.public_url)
        key = account.secrets.get("unsubscribe_key")
        self.unsubscribe_key: bytes | None = bytes.fromhex(key) if key else None
        self._clock = clock or (lambda: datetime.now(UTC))
        self._tokens = (
            TokenSource(account.id, self.config.oauth, ctx.http, ctx.state)
            if self.config.oauth is not None
            else None
        )
        self._imap = self._connection()
        self._next_folder = 0
        self._own = frozenset({self.config.address})
        self._monotonic = time.monotonic
        self._sleep = asyncio.sleep  # the poll wait; tests replace it
        self._last_idle_failure = -math.inf

    def _connection(self) -> ImapConnection:
        return ImapConnection(self.config.imap, self.config.timeout, self._tokens)

    # ------------------------------------------------------------------ callbacks

    async def verify(self, request: RawRequest) -> None:
        # mail arrives by IMAP; nothing may post mail into a mailbox over HTTP
        raise Forbidden("the email channel has no callback endpoint")

    def parse(self, request: RawRequest) -> Sequence[Inbound]:
        """A raw RFC 822 body → Inbound values (pure: attachments are not stored)."""
        return mail_to_inbound(request.body, own_addresses=self._own, media=None)

    def acknowledge(self, request: RawRequest, stored: Sequence[Inbound]) -> RawResponse:
        return RawResponse(status=200, body=b"ok")

    # ------------------------------------------------------------------ receiving

    async def pull(self, cursors: Mapping[str, str]) -> PullPage:
        """One page from the next folder in turn; `has_more` until every folder is current."""
        folders = self.config.folders
        folder = folders[self._next_folder % len(folders)]
        try:
            page = await self._pull_folder(folder, cursors.get(cursor_name(folder)))
        except BaseException:
            # the connection is in an unknown state (or we are being cancelled): drop it
            await self._imap.close(graceful=False)
            raise
        more_folders = (self._next_folder % len(folders)) < len(folders) - 1
        if not page.has_more:
            self._next_folder = (self._next_folder + 1) % len(folders)
        return PullPage(
            items=page.items,
            cursor_name=page.cursor_name,
            cursor=page.cursor,
            has_more=page.has_more or more_folders,
        )

    async def _pull_folder(self, folder: str, stored: str | None) -> PullPage:
        if not self._imap.connected:
            await self._imap.connect()
        state = await self._imap.select(folder)
        position = parse_cursor(stored)
        name = cursor_name(folder)
        if position is None or position[0] != state.uidvalidity:
            if position is not None:
                log.warning(
                    "account=%s folder=%s UIDVALIDITY changed %s -> %s: resync, dedupe by Message-ID",
                    self.account.id,
                    folder,
                    position[0],
                    state.uidvalidity,
                )
            return await self._backfill(folder, state)
        metas = await self._imap.metas_after(position[1])
        return await self._page(folder, state, metas, name)

    async def _backfill(self, folder: str, state: FolderState) -> PullPage:
        """First connect (or new UIDVALIDITY): the last N days, then follow UIDs."""
        since = (self._clock() - timedelta(days=self.config.backfill_days)).date()
        uids = await self._imap.uids_since(since)
        if not uids:
            last = (state.uidnext - 1) if state.uidnext else 0
            return PullPage(
                items=[], cursor_name=cursor_name(folder), cursor=f"{state.uidvalidity}:{last}"
            )
        metas = await self._imap.metas(",".join(str(u) for u in uids))
        return await self._page(folder, state, metas, cursor_name(folder))

    async def _page(
        self, folder: str, state: FolderState, metas: list[MessageMeta], name: str
    ) -> PullPage:
        batch = metas[: self.config.batch_size]
        items: list[Inbound] = []
        for meta in batch:
            items.extend(await self._import(folder, state, meta))
        cursor = f"{state.uidvalidity}:{batch[-1].uid}" if batch else None
        return PullPage(
            items=items, cursor_name=name, cursor=cursor, has_more=len(metas) > len(batch)
        )

    async def _import(self, folder: str, state: FolderState, meta: MessageMeta) -> list[Inbound]:
        too_large = meta.size > self.config.max_message_bytes
        raw = await self._imap.fetch(meta.uid, headers_only=too_large)
        if raw is None:
            log.info(
                "account=%s folder=%s uid=%s vanished before fetch",
                self.account.id,
                folder,
                meta.uid,
            )
            return []
        if too_large:
            log.warning(
                "account=%s uid=%s is %d bytes (limit %d): importing headers only",
                self.account.id,
                meta.uid,
                meta.size,
                self.config.max_message_bytes,
            )
        source = MailSource(
            folder=folder,
            uid=meta.uid,
            uidvalidity=state.uidvalidity,
            internal_date=meta.internal_date,
            truncated=too_large,
        )
        # parsing a 25 MB mail and hashing its attachments is CPU work: keep the loop free
        return await asyncio.to_thread(
            mail_to_inbound, raw, own_addresses=self._own, media=self.ctx.media, source=source
        )

    async def wait_for_new(self, max_wait: float) -> None:
        """IMAP IDLE on the first folder (re-issued within 25 min), else a plain wait."""
        wait = min(max_wait, self.config.idle_renew_seconds)
        if not self._imap.connected:
            await self._imap.connect()
        if not self._imap.supports_idle:
            await self._sleep(min(max_wait, self.config.poll_seconds))
            return
        first = self.config.folders[0]
        try:
            if self._imap.selected != first:
                await self._imap.select(first)
            pushed = await self._imap.idle(wait)
        except (errors.ImapError, OSError) as exc:
            # a dropped IDLE (server BYE, restart) is normal: the next pull reconnects. Only
            # when it fails again soon do we fall back to a poll wait, so a server that
            # advertises IDLE but refuses it cannot spin the poller.
            await self._imap.close(graceful=False)
            now = self._monotonic()
            repeated = now - self._last_idle_failure < self.config.poll_seconds
            self._last_idle_failure = now
            log.info("account=%s IDLE failed (%s); repeated=%s", self.account.id, exc, repeated)
            if repeated:
                await self._sleep(min(max_wait, self.config.poll_seconds))
            return
        log.debug("account=%s IDLE ended (push=%s)", self.account.id, pushed)

    async def aclose(self) -> None:
        await self._imap.close()

    # ------------------------------------------------------------------ sending

    async def send(self, message: Outbound) -> SendResult:
        """Send once per `message.key`: a key already sent returns its Message-ID again."""
        state = self.ctx.state
        sent_key = f"email:sent:{self.account.id}:{message.key}"
        async with state.lock(
            f"email:send:{self.account.id}:{message.key}", ttl=self.config.timeout * 3
        ):
            already = await state.get(sent_key)
            if already:
                return SendResult.sent(already)
            if message.attempt > 1 and await self._found_in_sent(message):
                # an earlier attempt's outcome was unknown but the mail did go out
                message_id = message_id_for(message.key, self.config.message_id_domain)
                await state.set(sent_key, message_id, ttl=SENT_TTL)
                log.info(
                    "email send key=%s reconciled: already in %s",
                    message.key,
                    self.config.sent_folder,
                )
                return SendResult.sent(message_id)
            if message.purpose == Purpose.AUTO_REPLY:
                limited = await self._auto_reply_limited(message.recipient)
                if limited is not None:
                    return limited
            try:
                msg = build_message(
                    message,
                    self.config,
                    media=self.ctx.media,
                    unsubscribe_key=self.unsubscribe_key,
                    now=self._clock(),
                )
            except (InvalidOutbound, ValueError, FileNotFoundError) as exc:
                log.warning("email send key=%s refused: %s", message.key, exc)
                return SendResult(
                    SendOutcome.FAILED, error_code="email.invalid", reason=str(exc)[:400]
                )
            message_id = str(msg["Message-ID"])
            try:
                await smtp_send(
                    msg, self.config.smtp, self.config.address, self.config.timeout, self._tokens
                )
            except Exception as exc:  # noqa: BLE001  (mapped below; unknown kinds re-raise)
                result = errors.send_result_for(exc)
                log.warning(
                    "email send key=%s to=%s %s: %s",
                    message.key,
                    message.recipient,
                    result.outcome.value,
                    result.reason,
                )
                return SendResult(
                    result.outcome,
                    provider_message_id=message_id,
                    error_code=result.error_code,
                    reason=result.reason,
                    retry_after=result.retry_after,
                )
            await state.set(sent_key, message_id, ttl=SENT_TTL)
            await self._save_sent_copy(msg.as_bytes())
        log.info(
            "email sent key=%s to=%s message_id=%s", message.key, message.recipient, message_id
        )
        return SendResult.sent(message_id)

    async def _found_in_sent(self, message: Outbound) -> bool:
        folder = self.config.sent_folder
        if folder is None:
            return False
        message_id = message_id_for(message.key, self.config.message_id_domain)
        imap = self._connection()
        try:
            await imap.connect()
            await imap.select(folder)
            return await imap.has_message_id(message_id)
        except (errors.ImapError, errors.OAuthError, OSError, TimeoutError) as exc:
            log.warning("email reconcile key=%s: cannot search %s: %s", message.key, folder, exc)
            return False
        finally:
            await imap.close()

    async def _save_sent_copy(self, data: bytes) -> None:
        """Best effort: the mail is sent whether or not the copy can be filed."""
        folder = self.config.sent_folder
        if folder is None or not self.config.save_sent:
            return
        imap = self._connection()
        try:
            await imap.connect()
            await imap.append(data, folder)
        except (errors.ImapError, errors.OAuthError, OSError, TimeoutError) as exc:
            log.warning("email sent copy not filed in %s: %s", folder, exc)
        finally:
            await imap.close()

    async def _auto_reply_limited(self, recipient: str) -> SendResult | None:
        """RFC 3834 §2: automatic replies are rate-limited per conversation (recipient)."""
        per_hour = self.config.auto_replies_per_hour
        if per_hour <= 0:
            return None
        bucket = f"email:autoreply:{self.account.id}:{recipient.lower()}"
        wait = await self.ctx.state.take(bucket, rate=per_hour / 3600.0, burst=max(1.0, per_hour))
        if wait <= 0:
            return None
        log.info("email auto-reply to %s dropped: over %.0f/hour", recipient, per_hour)
        return SendResult(
            SendOutcome.FAILED,
            error_code="email.auto_reply_rate_limited",
            reason=f"auto-reply limit {per_hour:.0f}/hour reached for this conversation",
        )

    # ------------------------------------------------------------------ console

    async def check_connection(self) -> ConnectionCheck:
        """Log in to IMAP and SMTP with the stored settings; readable result for the console."""
        imap = self._connection()
        try:
            await imap.connect()
            state = await imap.select(self.config.folders[0])
        except (errors.ImapError, errors.OAuthError, OSError, TimeoutError) as exc:
            return ConnectionCheck(False, _imap_hint(exc), {"stage": "imap"})
        finally:
            await imap.close()
        smtp = self.config.smtp
        try:
            client = aiosmtplib.SMTP(
                hostname=smtp.host,
                port=smtp.port,
                use_tls=smtp.security == "ssl",
                start_tls=smtp.security == "starttls",
                tls_context=smtp.tls_context() if smtp.security != "none" else None,
                timeout=self.config.timeout,
            )
            async with client:
                if self._tokens is not None:
                    await client.auth_xoauth2(smtp.username, await self._tokens.access_token())
                else:
                    await client.login(smtp.username, smtp.password)
        except (aiosmtplib.SMTPException, errors.OAuthError, OSError, TimeoutError) as exc:
            return ConnectionCheck(
                False,
                f"SMTP 登录失败 / SMTP login failed: {exc}. "
                "163/QQ/企业邮箱需在网页邮箱设置中开启 SMTP 并使用授权码 (app password)。",
                {"stage": "smtp"},
            )
        return ConnectionCheck(
            True,
            f"IMAP 和 SMTP 连接正常 / IMAP and SMTP OK (UIDVALIDITY {state.uidvalidity})",
            {"uidvalidity": state.uidvalidity},
        )


def _imap_hint(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, errors.OAuthError):
        return f"OAuth 令牌获取失败 / OAuth token refresh failed: {text}. " + (
            "请重新授权邮箱并更新 refresh token (re-authorise the mailbox)."
            if exc.permanent
            else "请检查 token 地址与网络 (check the token endpoint and network)."
        )
    return (
        f"IMAP 连接失败 / IMAP failed: {text}. "
        "请确认已在邮箱设置中开启 IMAP 服务，并使用授权码而不是登录密码 "
        "(enable IMAP in the mailbox settings and use an app password)."
    )


def _factory(account: AccountRef, ctx: ChannelContext) -> EmailAdapter:
    return EmailAdapter(account, ctx)


SPECS = [
    AdapterSpec(
        kind=KIND,
        factory=_factory,
        rules=EmailAdapter.rules,
        label_zh="邮箱 (IMAP/SMTP)",
        label_en="Email (IMAP/SMTP)",
    )
]
