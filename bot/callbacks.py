"""The provider-facing HTTP route: verify → parse → store (commit) → acknowledge → publish.

`/callbacks/{kind}/{token}`: the token is the account's unguessable callback_token, so
unsigned pushes (Aliyun, Tencent SMS) are still bound to one account; an unknown token
is 403. A store that is down answers 503 so the provider retries instead of us
acknowledging something we did not keep (issue 10).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web
from aiohttp.typedefs import Handler
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from channels.base import ChannelAdapter, ChannelError, HandshakeAdapter, RawRequest, RawResponse
from conversations.actions import RecordResult
from conversations.types import Inbound

from .accounts import AccountDirectory
from .log_context import bind, new_request_id
from .metrics import CALLBACK_SECONDS

log = logging.getLogger(__name__)

Publish = Callable[[RecordResult], Awaitable[None]]
Store = Callable[[int, Sequence[Inbound]], Awaitable[RecordResult]]


def _external_url(request: web.Request) -> str:
    """The URL as the provider called it: behind a reverse proxy, from X-Forwarded-*
    (Twilio signs the exact public URL)."""
    proto = request.headers.get("X-Forwarded-Proto")
    host = request.headers.get("X-Forwarded-Host")
    url = request.url
    if proto:
        url = url.with_scheme(proto.split(",")[0].strip())
    if host:
        url = url.with_host(host.split(",")[0].strip().split(":")[0])
        if ":" in host:
            url = url.with_port(int(host.rsplit(":", 1)[1]))
        elif proto:
            url = url.with_port(None)
    return str(url)


def _raw(request: web.Request, body: bytes) -> RawRequest:
    return RawRequest(
        method=request.method,
        url=_external_url(request),
        path=request.path,
        query=dict(request.query),
        headers=dict(request.headers),
        body=body,
        remote=request.remote,
    )


def _response(raw: RawResponse) -> web.Response:
    return web.Response(
        status=raw.status, body=raw.body, content_type=raw.content_type.split(";")[0]
    )


CALLBACK_PREFIX = "/callbacks/"


@web.middleware
async def callbacks_first(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Call provider routes directly, past the console's middlewares: a callback carries
    no session cookie, login or CSRF token, and those seven layers would only add time on
    the one path a provider's timeout is on. Must be the first middleware."""
    if not request.path.startswith(CALLBACK_PREFIX):
        return await handler(request)
    response = await request.match_info.handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


class CallbackRoutes:
    def __init__(self, store: Store, accounts: AccountDirectory, publish: Publish) -> None:
        self.store = store
        self.accounts = accounts
        self.publish = publish
        self.stats = {"stored": 0, "duplicates": 0, "rejected": 0, "unavailable": 0}

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(CALLBACK_PREFIX + "{kind}/{token}", self.handshake),
            web.post(CALLBACK_PREFIX + "{kind}/{token}", self.receive),
        ]

    async def _account(self, request: web.Request) -> tuple[int, object] | web.Response:
        kind, token = request.match_info["kind"], request.match_info["token"]
        try:
            loaded = await self.accounts.by_callback_token(kind, token)
        except (DBAPIError, OSError) as exc:
            self.stats["unavailable"] += 1
            log.error("callback %s: store unavailable: %s", kind, exc)
            return web.Response(status=503, text="store unavailable, retry later")
        if loaded is None:
            self.stats["rejected"] += 1
            log.warning(
                "callback rejected: unknown account token kind=%s from=%s", kind, request.remote
            )
            return web.Response(status=403, text="unknown callback URL")
        return loaded.id, loaded.adapter

    async def handshake(self, request: web.Request) -> web.Response:
        found = await self._account(request)
        if isinstance(found, web.Response):
            return found
        _account_id, adapter = found
        if not hasattr(adapter, "handshake"):
            return web.Response(status=405, text="this channel does not verify URLs by GET")
        handshaker: HandshakeAdapter = adapter  # checked just above
        try:
            return _response(await handshaker.handshake(_raw(request, b"")))
        except ChannelError as exc:
            self.stats["rejected"] += 1
            log.warning("URL verification rejected (%s): %s", exc.kind.value, exc)
            return web.Response(status=exc.status, text=exc.kind.value)

    async def receive(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        with bind(request_id=new_request_id()):
            response = await self._receive(request)
        CALLBACK_SECONDS.labels(
            kind=request.match_info["kind"], status=str(response.status)
        ).observe(time.perf_counter() - started)
        return response

    async def _receive(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        found = await self._account(request)
        if isinstance(found, web.Response):
            return found
        account_id, adapter_obj = found
        assert isinstance(adapter_obj, ChannelAdapter)
        adapter = adapter_obj
        body = await request.read()  # over client_max_size → 413 before we see it
        raw = _raw(request, body)
        try:
            await adapter.verify(raw)
            items = adapter.parse(raw)
        except ChannelError as exc:
            self.stats["rejected"] += 1
            log.warning(
                "callback rejected account=%s %s: %s (from %s)",
                account_id,
                exc.kind.value,
                exc,
                request.remote,
            )
            return web.Response(status=exc.status, text=exc.kind.value)
        try:
            result = await self.store(account_id, items)  # committed when this returns
        except (DBAPIError, OSError) as exc:
            self.stats["unavailable"] += 1
            log.error("callback account=%s not stored, answering 503: %s", account_id, exc)
            return web.Response(status=503, text="store unavailable, retry later")
        except SQLAlchemyError:
            log.exception("callback account=%s failed to store", account_id)
            return web.Response(status=500, text="internal error")
        self.stats["stored"] += len(result.message_ids) + len(result.event_ids)
        self.stats["duplicates"] += result.duplicates
        try:
            await self.publish(result)
        except Exception:  # noqa: BLE001  (stored already: the recovery sweep re-publishes it)
            log.exception("callback account=%s stored but not published", account_id)
        log.info(
            "callback account=%s new=%s dup=%d statuses=%d in %.1fms",
            account_id,
            [*result.message_ids, *(f"e{e}" for e in result.event_ids)],
            result.duplicates,
            result.statuses,
            (time.perf_counter() - started) * 1000,
        )
        return _response(adapter.acknowledge(raw, items))
