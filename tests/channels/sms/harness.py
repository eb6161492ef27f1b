"""A stand-in for the lead's callback route and pipeline, for adapter+store tests.

`/callbacks/{kind}/{token}`: verify → parse → record_inbound in one transaction →
commit → acknowledge (a wrong token is a 403 before the adapter is asked), then the
opt-out handler runs on each new message in its own transaction, as the pipeline would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from sqlalchemy import select

from channels.base import ChannelAdapter, ChannelError, RawRequest
from conversations import actions
from conversations.db import Database, utcnow
from conversations.handlers import MessageContext
from conversations.models import ChannelAccount, Conversation, Customer, Message, OutboxItem
from conversations.optout import handle_opt_out
from conversations.types import (
    AccountRef,
    MessageKind,
    Outbound,
    Purpose,
    SendOutcome,
    SendResult,
)


@dataclass
class Route:
    account_id: int
    adapter: ChannelAdapter


@dataclass
class CallbackHarness:
    db: Database
    routes: dict[tuple[str, str], Route] = field(default_factory=dict)
    responses: list[tuple[int, bytes]] = field(default_factory=list)
    runner: web.AppRunner | None = None
    port: int = 0

    def add(self, kind: str, token: str, account_id: int, adapter: ChannelAdapter) -> str:
        self.routes[(kind, token)] = Route(account_id, adapter)
        return f"{self.url}/callbacks/{kind}/{token}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/callbacks/{kind}/{token}", self._callback)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self.runner.addresses[0][1])

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def _callback(self, request: web.Request) -> web.Response:
        route = self.routes.get((request.match_info["kind"], request.match_info["token"]))
        if route is None:
            return web.Response(status=403, text="unknown callback token")
        raw = RawRequest(
            method=request.method,
            url=str(request.url),
            path=request.path,
            query=dict(request.query),
            headers=dict(request.headers),
            body=await request.read(),
            remote=request.remote,
        )
        try:
            await route.adapter.verify(raw)
            items = route.adapter.parse(raw)
        except ChannelError as exc:
            return web.Response(status=exc.status, text=str(exc))
        async with self.db.transaction() as s:
            account = await s.get(ChannelAccount, route.account_id)
            assert account is not None
            result = await actions.record_inbound(s, account, items)
        for message_id in result.message_ids:
            await self.process(message_id)
        answer = route.adapter.acknowledge(raw, items)
        return web.Response(
            status=answer.status, body=answer.body, content_type=answer.content_type.split(";")[0]
        )

    async def process(self, message_id: int) -> None:
        """Run the pipeline's opt-out handler on one stored message."""
        async with self.db.transaction() as s:
            message = await s.get(Message, message_id)
            assert message is not None
            conversation = await s.get(Conversation, message.conversation_id)
            assert conversation is not None
            account = await s.get(ChannelAccount, message.account_id)
            customer = await s.get(Customer, conversation.customer_id)
            assert account is not None and customer is not None
            ctx = MessageContext(
                session=s,
                account=account,
                rules=route_rules(self, account.id),
                conversation=conversation,
                customer=customer,
                message=message,
                now=utcnow(),
            )
            await handle_opt_out(ctx)
            message.processed_at = utcnow()


def route_rules(harness: CallbackHarness, account_id: int) -> Any:
    for route in harness.routes.values():
        if route.account_id == account_id:
            return route.adapter.rules
    raise KeyError(account_id)


async def messages_of(db: Database, account_id: int) -> list[Message]:
    async with db.reading() as s:
        return list(
            (
                await s.execute(
                    select(Message).where(Message.account_id == account_id).order_by(Message.id)
                )
            )
            .scalars()
            .all()
        )


async def create_account(db: Database, account: AccountRef, token: str) -> ChannelAccount:
    """Store an AccountRef (e.g. a simulator's) as a channel account row."""
    async with db.transaction() as s:
        row = ChannelAccount(
            kind=account.kind,
            name=account.name,
            config=dict(account.config),
            secrets=dict(account.secrets),
            callback_token=token,
        )
        s.add(row)
    return row


async def queue_text(
    db: Database,
    account: ChannelAccount,
    phone: str,
    key: str,
    payload: dict[str, Any],
    text: str = "",
) -> int:
    """Open the customer's conversation and queue one outbound SMS; returns the message id."""
    async with db.transaction() as s:
        identity = await actions.resolve_identity(s, account, phone, hints={"phone": phone})
        conversation = await actions.conversation_for(s, account, identity)
        message = await actions.queue_outbound(
            s, conversation, text=text, purpose=Purpose.REPLY, idempotency_key=key, payload=payload
        )
        assert message is not None
        return message.id


async def outbound_for(db: Database, account: AccountRef, key: str) -> Outbound:
    """The Outbound the lead's dispatcher builds from one outbox row."""
    async with db.reading() as s:
        item = (
            await s.execute(select(OutboxItem).where(OutboxItem.idempotency_key == key))
        ).scalar_one()
        payload = dict(item.payload)
        return Outbound(
            key=key,
            account=account,
            recipient=item.recipient,
            kind=MessageKind(payload.get("kind", "text")),
            text=str(payload.get("text", "")),
            purpose=Purpose(item.purpose),
            payload=payload,
        )


async def dispatch(
    db: Database, adapter: ChannelAdapter, account: AccountRef, key: str
) -> SendResult:
    """What the lead's dispatcher does with one outbox row: send, record the result."""
    outbound = await outbound_for(db, account, key)
    result = await adapter.send(outbound)
    async with db.transaction() as s:
        item = (
            await s.execute(select(OutboxItem).where(OutboxItem.idempotency_key == key))
        ).scalar_one()
        item.status = result.outcome.value
        item.provider_message_id = result.provider_message_id
        if item.message_id is not None and result.outcome == SendOutcome.SENT:
            message = await s.get(Message, item.message_id)
            assert message is not None
            message.provider_message_id = result.provider_message_id
            if message.status == "pending":
                message.status = "sent"
    return result
