"""The customer card the sidebar shows beside a WeCom chat: who the customer is, what
we know and said, and who follows them — limited to what the salesperson may see."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from channels.wecom.models import FollowRelation
from conversations.access import AccessDenied, Role, Viewer, conversation_scope
from conversations.consent import Suppression
from conversations.models import (
    ChannelAccount,
    Conversation,
    Customer,
    Identity,
    Message,
    StaffUser,
)
from conversations.notes import ConversationNote
from conversations.queries import visible_customer
from tagging.models import CustomerProfile, Tag, TagGroup
from tagging.tags import tags_of

TIMELINE = 30
NOTES = 20


@dataclass(frozen=True)
class SidebarUser:
    """The salesperson looking at the sidebar: their console viewer and WeCom userid."""

    viewer: Viewer
    wecom_userid: str | None


async def customer_for_external(session: AsyncSession, external_userid: str) -> int | None:
    """The crmbot customer behind a WeCom external_userid (follow relation or identity)."""
    found = await session.scalar(
        select(FollowRelation.customer_id)
        .where(FollowRelation.external_userid == external_userid)
        .limit(1)
    )
    if found is not None:
        return int(found)
    found = await session.scalar(
        select(Identity.customer_id)
        .where(Identity.external_id == external_userid, Identity.channel_kind.like("wecom%"))
        .limit(1)
    )
    if found is None:
        return None
    customer = await session.get(Customer, int(found))
    # a merged customer lives on in the one it was merged into
    while customer is not None and customer.merged_into_id is not None:
        customer = await session.get(Customer, customer.merged_into_id)
    return customer.id if customer else None


async def follows(session: AsyncSession, user: SidebarUser, customer_id: int) -> bool:
    if not user.wecom_userid:
        return False
    return (
        await session.scalar(
            select(FollowRelation.id).where(
                FollowRelation.customer_id == customer_id,
                FollowRelation.userid == user.wecom_userid,
                FollowRelation.status == "active",
            )
        )
    ) is not None


async def sidebar_customer(session: AsyncSession, user: SidebarUser, customer_id: int) -> Customer:
    """The customer if this salesperson follows them (跟进) or may see them in the
    console; AccessDenied / LookupError otherwise. Marketers never see private chats."""
    if user.viewer.role == Role.MARKETER:
        raise AccessDenied(f"customer {customer_id}")
    try:
        return await visible_customer(session, user.viewer, customer_id)
    except AccessDenied:
        if await follows(session, user, customer_id):
            customer = await session.get(Customer, customer_id)
            if customer is not None:
                return customer
        raise


def _profile_json(profile: CustomerProfile | None) -> dict[str, Any]:
    if profile is None:
        return {}
    return {
        "gender": profile.gender,
        "province": profile.province,
        "city": profile.city,
        "age_bracket": profile.age_bracket,
        "occupation": profile.occupation,
        "intent_level": profile.intent_level,
        "rfm": (
            f"R{profile.rfm_r}F{profile.rfm_f}M{profile.rfm_m}"
            if profile.rfm_r is not None
            else None
        ),
        "abc_class": profile.abc_class,
    }


async def tag_catalogue(session: AsyncSession) -> list[dict[str, Any]]:
    """Every live tag by group, for the tag editor."""
    rows = await session.execute(
        select(Tag, TagGroup)
        .join(TagGroup, TagGroup.id == Tag.group_id)
        .where(Tag.archived.is_(False))
        .order_by(TagGroup.sort, TagGroup.id, Tag.sort, Tag.id)
    )
    groups: dict[int, dict[str, Any]] = {}
    for tag, group in rows:
        entry = groups.setdefault(
            group.id,
            {"id": group.id, "name": group.name, "exclusive": group.exclusive, "tags": []},
        )
        entry["tags"].append({"id": tag.id, "name": tag.name, "color": tag.color or group.color})
    return list(groups.values())


async def visible_conversations(
    session: AsyncSession, user: SidebarUser, customer_id: int
) -> list[Conversation]:
    """The customer's conversations the salesperson may read: all of them when they
    follow the customer (the chats are with them), else the console's scope."""
    query = select(Conversation).where(Conversation.customer_id == customer_id)
    if not await follows(session, user, customer_id):
        query = query.where(conversation_scope(user.viewer))
    rows = await session.scalars(query.order_by(Conversation.last_message_at.desc().nulls_last()))
    return list(rows)


async def customer_card(
    session: AsyncSession,
    user: SidebarUser,
    customer_id: int,
    channel_labels: Mapping[str, tuple[str, str]],
) -> dict[str, Any]:
    """Everything the sidebar shows about one customer, as JSON."""
    customer = await sidebar_customer(session, user, customer_id)
    conversations = await visible_conversations(session, user, customer_id)
    conv_ids = [c.id for c in conversations]
    kinds: dict[int, str] = {
        account_id: kind
        for account_id, kind in await session.execute(
            select(ChannelAccount.id, ChannelAccount.kind)
        )
    }
    timeline: Sequence[Message] = []
    notes: list[dict[str, Any]] = []
    if conv_ids:
        timeline = list(
            await session.scalars(
                select(Message)
                .where(Message.conversation_id.in_(conv_ids))
                .order_by(Message.occurred_at.desc(), Message.id.desc())
                .limit(TIMELINE)
            )
        )
        note_rows = await session.execute(
            select(ConversationNote, StaffUser.display_name)
            .join(StaffUser, StaffUser.id == ConversationNote.author_id)
            .where(ConversationNote.conversation_id.in_(conv_ids))
            .order_by(ConversationNote.id.desc())
            .limit(NOTES)
        )
        notes = [
            {"text": n.text, "author": name, "at": n.created_at.isoformat()}
            for n, name in note_rows
        ]
    identities = list(
        await session.scalars(select(Identity).where(Identity.customer_id == customer_id))
    )
    addresses = [a for a in (customer.phone, customer.email) if a]
    addresses += [i.external_id for i in identities]
    suppressions = list(
        await session.scalars(select(Suppression).where(Suppression.address.in_(addresses)))
    )
    followers = await session.execute(
        select(FollowRelation, StaffUser.display_name)
        .outerjoin(StaffUser, StaffUser.wecom_userid == FollowRelation.userid)
        .where(FollowRelation.customer_id == customer_id)
        .order_by(FollowRelation.id)
    )
    owner = await session.get(StaffUser, customer.owner_id) if customer.owner_id else None
    last_inbound = next((m for m in timeline if m.direction == "in" and m.text), None)

    def label(account_id: int) -> str:
        kind = kinds.get(account_id, "")
        return channel_labels.get(kind, (kind, kind))[0]

    return {
        "customer": {
            "id": customer.id,
            "name": customer.display_name,
            "phone": customer.phone,
            "email": customer.email,
            "first_channel": customer.first_channel,
            "created_at": customer.created_at.isoformat(),
            "last_contact_at": (
                customer.last_contact_at.isoformat() if customer.last_contact_at else None
            ),
            "owner": owner.display_name if owner else None,
        },
        "profile": _profile_json(await session.get(CustomerProfile, customer_id)),
        "tags": [
            {"id": t.tag_id, "group": t.group, "name": t.name, "color": t.color}
            for t in await tags_of(session, customer_id)
        ],
        "timeline": [
            {
                "id": m.id,
                "direction": m.direction,
                "kind": m.kind,
                "text": m.text,
                "channel": label(m.account_id),
                "at": m.occurred_at.isoformat(),
            }
            for m in reversed(timeline)
        ],
        "notes": notes,
        "opt_outs": [
            {"channel": s.channel, "scope": s.scope, "at": s.created_at.isoformat()}
            for s in suppressions
        ],
        "followers": [
            {"userid": f.userid, "name": name or f.userid, "status": f.status, "remark": f.remark}
            for f, name in followers
        ],
        "conversation_id": conv_ids[0] if conv_ids else None,
        "last_question": last_inbound.text if last_inbound else None,
    }
