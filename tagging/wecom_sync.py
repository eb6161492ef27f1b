"""Two-way sync with WeCom corp tags (企业客户标签): pure planning plus local apply.

The WeCom adapter fetches `externalcontact/get_corp_tag_list`, turns it into
`RemoteGroup` values (`RemoteGroup.from_api`), asks `plan_sync` what to do, applies the
local half with `apply_plan_locally`, creates the remote half itself (add_corp_tag) and
reports the new ids back with `record_remote_ids`. For one customer, `plan_mark` says
which tags to add/remove remotely (mark_tag) and `apply_remote_customer_tags` mirrors a
customer's remote tags locally (after a change_external_contact/edit callback).

Policy: names edited in WeCom win (staff rename tags in the WeCom client); a tag deleted
in WeCom is archived here, never deleted (its history stays); tags made here are created
in WeCom.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import CustomerTag, Tag, TagGroup
from .tags import Why, tag_customer, untag_customer


@dataclass(frozen=True)
class RemoteTag:
    id: str
    name: str
    order: int = 0
    deleted: bool = False


@dataclass(frozen=True)
class RemoteGroup:
    group_id: str
    name: str
    tags: tuple[RemoteTag, ...]
    order: int = 0
    deleted: bool = False

    @classmethod
    def from_api(cls, item: Mapping[str, Any]) -> RemoteGroup:
        """One entry of get_corp_tag_list's `tag_group` array."""
        return cls(
            group_id=str(item["group_id"]),
            name=str(item["group_name"]),
            order=int(item.get("order", 0)),
            deleted=bool(item.get("deleted", False)),
            tags=tuple(
                RemoteTag(
                    id=str(tag["id"]),
                    name=str(tag["name"]),
                    order=int(tag.get("order", 0)),
                    deleted=bool(tag.get("deleted", False)),
                )
                for tag in item.get("tag", [])
            ),
        )


@dataclass(frozen=True)
class LocalTagState:
    tag_id: int
    group_id: int
    group_name: str
    name: str
    wecom_tag_id: str | None
    wecom_group_id: str | None
    archived: bool


@dataclass(frozen=True)
class RemoteCreation:
    """Local tags to create in WeCom (one add_corp_tag call per group)."""

    group_name: str
    wecom_group_id: str | None  # None: create the group too
    local_tag_ids: tuple[int, ...]
    tag_names: tuple[str, ...]


@dataclass
class SyncPlan:
    link_groups: list[tuple[int, str]] = field(default_factory=list)  # local group → remote
    link_tags: list[tuple[int, str]] = field(default_factory=list)  # local tag → remote
    rename_groups: list[tuple[int, str]] = field(default_factory=list)
    rename_tags: list[tuple[int, str]] = field(default_factory=list)
    archive_tags: list[int] = field(default_factory=list)
    create_local: list[tuple[RemoteGroup, RemoteTag]] = field(default_factory=list)
    create_remote: list[RemoteCreation] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not any(
            (
                self.link_groups,
                self.link_tags,
                self.rename_groups,
                self.rename_tags,
                self.archive_tags,
                self.create_local,
                self.create_remote,
            )
        )


def plan_sync(remote: Sequence[RemoteGroup], local: Sequence[LocalTagState]) -> SyncPlan:
    """What to change on each side so that both hold the same tags."""
    plan = SyncPlan()
    live_groups = [g for g in remote if not g.deleted]
    remote_tags = {t.id: (g, t) for g in live_groups for t in g.tags if not t.deleted}
    remote_by_name = {(g.name, t.name): (g, t) for g, t in remote_tags.values()}
    remote_groups_by_name = {g.name: g for g in live_groups}
    remote_groups_by_id = {g.group_id: g for g in live_groups}

    local_groups: dict[int, tuple[str, str | None]] = {}
    for item in local:
        local_groups[item.group_id] = (item.group_name, item.wecom_group_id)
    group_remote_id: dict[int, str | None] = {}
    for group_id, (name, wecom_id) in local_groups.items():
        if wecom_id and wecom_id in remote_groups_by_id:
            remote_name = remote_groups_by_id[wecom_id].name
            if remote_name != name:
                plan.rename_groups.append((group_id, remote_name))
            group_remote_id[group_id] = wecom_id
        elif name in remote_groups_by_name:
            found = remote_groups_by_name[name].group_id
            plan.link_groups.append((group_id, found))
            group_remote_id[group_id] = found
        else:
            group_remote_id[group_id] = None

    linked_remote: set[str] = set()
    to_create: dict[int, list[LocalTagState]] = {}
    for item in local:
        if item.wecom_tag_id:
            if item.wecom_tag_id in remote_tags:
                linked_remote.add(item.wecom_tag_id)
                _, remote_tag = remote_tags[item.wecom_tag_id]
                if remote_tag.name != item.name:
                    plan.rename_tags.append((item.tag_id, remote_tag.name))
            elif not item.archived:
                plan.archive_tags.append(item.tag_id)
            continue
        if item.archived:
            continue
        match = remote_by_name.get((item.group_name, item.name))
        if match is not None and match[1].id not in linked_remote:
            plan.link_tags.append((item.tag_id, match[1].id))
            linked_remote.add(match[1].id)
        else:
            to_create.setdefault(item.group_id, []).append(item)

    for group_id, items in sorted(to_create.items()):
        plan.create_remote.append(
            RemoteCreation(
                group_name=local_groups[group_id][0],
                wecom_group_id=group_remote_id.get(group_id),
                local_tag_ids=tuple(i.tag_id for i in items),
                tag_names=tuple(i.name for i in items),
            )
        )
    for tag_id, (group, tag) in sorted(remote_tags.items()):
        if tag_id not in linked_remote:
            plan.create_local.append((group, tag))
    return plan


async def load_local_state(session: AsyncSession) -> list[LocalTagState]:
    rows = await session.execute(
        select(Tag, TagGroup).join(TagGroup, TagGroup.id == Tag.group_id).order_by(Tag.id)
    )
    return [
        LocalTagState(
            tag_id=tag.id,
            group_id=group.id,
            group_name=group.name,
            name=tag.name,
            wecom_tag_id=tag.wecom_tag_id,
            wecom_group_id=group.wecom_group_id,
            archived=tag.archived,
        )
        for tag, group in rows
    ]


async def apply_plan_locally(session: AsyncSession, plan: SyncPlan) -> None:
    """Apply the local half of a plan (links, renames, archives, tags made in WeCom)."""
    for group_id, wecom_id in plan.link_groups:
        group = await session.get(TagGroup, group_id)
        if group is not None:
            group.wecom_group_id = wecom_id
    for group_id, name in plan.rename_groups:
        group = await session.get(TagGroup, group_id)
        if group is not None:
            group.name = name
    for tag_id, wecom_id in plan.link_tags:
        tag = await session.get(Tag, tag_id)
        if tag is not None:
            tag.wecom_tag_id = wecom_id
    for tag_id, name in plan.rename_tags:
        tag = await session.get(Tag, tag_id)
        if tag is not None:
            tag.name = name
    for tag_id in plan.archive_tags:
        tag = await session.get(Tag, tag_id)
        if tag is not None:
            tag.archived = True
    for remote_group, remote_tag in plan.create_local:
        group = await session.scalar(
            select(TagGroup).where(TagGroup.wecom_group_id == remote_group.group_id)
        ) or await session.scalar(select(TagGroup).where(TagGroup.name == remote_group.name))
        if group is None:
            group = TagGroup(
                name=remote_group.name,
                wecom_group_id=remote_group.group_id,
                sort=remote_group.order,
            )
            session.add(group)
            await session.flush()
        group.wecom_group_id = group.wecom_group_id or remote_group.group_id
        existing = await session.scalar(
            select(Tag).where(Tag.group_id == group.id, Tag.name == remote_tag.name)
        )
        if existing is not None:
            existing.wecom_tag_id = remote_tag.id
            existing.archived = False
        else:
            session.add(
                Tag(
                    group_id=group.id,
                    name=remote_tag.name,
                    wecom_tag_id=remote_tag.id,
                    sort=remote_tag.order,
                )
            )
    await session.flush()


async def record_remote_ids(
    session: AsyncSession, creation: RemoteCreation, group_id: str, tag_ids: Sequence[str]
) -> None:
    """After the adapter's add_corp_tag: remember the ids WeCom gave (same order as names)."""
    if len(tag_ids) != len(creation.local_tag_ids):
        raise ValueError("WeCom returned a different number of tags than were created")
    for local_id, wecom_id in zip(creation.local_tag_ids, tag_ids, strict=True):
        tag = await session.get(Tag, local_id)
        if tag is not None:
            tag.wecom_tag_id = wecom_id
            group = await session.get(TagGroup, tag.group_id)
            if group is not None:
                group.wecom_group_id = group_id
    await session.flush()


def plan_mark(
    local_remote_ids: Collection[str], remote_ids: Collection[str]
) -> tuple[list[str], list[str]]:
    """(add_tag, remove_tag) for WeCom's mark_tag so the remote side matches ours."""
    local, remote = set(local_remote_ids), set(remote_ids)
    return sorted(local - remote), sorted(remote - local)


async def customer_remote_tag_ids(session: AsyncSession, customer_id: int) -> list[str]:
    """WeCom ids of the customer's tags that are synced (for `plan_mark`)."""
    rows = await session.scalars(
        select(Tag.wecom_tag_id)
        .join(CustomerTag, CustomerTag.tag_id == Tag.id)
        .where(CustomerTag.customer_id == customer_id, Tag.wecom_tag_id.is_not(None))
    )
    return sorted(str(r) for r in rows if r)


async def apply_remote_customer_tags(
    session: AsyncSession, customer_id: int, remote_ids: Collection[str], *, reason: str = ""
) -> tuple[int, int]:
    """Mirror a customer's WeCom tags locally: add the missing synced tags and take off
    synced tags WeCom no longer has. Local-only tags are left alone. (added, removed)."""
    synced = {
        str(t.wecom_tag_id): t
        for t in await session.scalars(select(Tag).where(Tag.wecom_tag_id.is_not(None)))
    }
    have = set(await customer_remote_tag_ids(session, customer_id))
    wanted = {rid for rid in remote_ids if rid in synced}
    why = Why("wecom", reason=reason or "WeCom corp tag sync")
    added = removed = 0
    for rid in sorted(wanted - have):
        added += await tag_customer(session, customer_id, synced[rid].id, why)
    for rid in sorted(have - wanted):
        removed += await untag_customer(session, customer_id, synced[rid].id, why)
    return added, removed
