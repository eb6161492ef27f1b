"""WeCom corp tags (企业标签, doc 92117) as a small async API for the tagging side
(tagging/wecom_sync.py owns crmbot's tags and the two-way sync).

- `CorpTags(api)`: list / add / edit / delete corp tags and mark_tag on a customer;
- `tag_change(event_payload)`: a stored change_external_tag event as a `TagChange`
  (create / update / delete / shuffle of a tag or tag group), for the sync job to apply.
A corp holds at most 3,000 corp tags (40071 beyond).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from conversations.types import Outbound, SendOutcome, SendResult

from .api import WeComApi
from .errors import WeComApiError
from .outbound import result_of

P = "/cgi-bin/externalcontact/"
MARK_TAG_OPERATION = "mark_tag"  # an outbox operation on a 客户联系 account


@dataclass(frozen=True)
class CorpTag:
    id: str
    name: str
    group_id: str
    group_name: str
    order: int = 0


@dataclass(frozen=True)
class TagGroup:
    id: str
    name: str
    order: int = 0
    tags: tuple[CorpTag, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class TagChange:
    """change_external_tag: ChangeType create|update|delete|shuffle, TagType tag|tag_group."""

    change: str
    tag_type: str
    id: str
    strategy_id: str | None = None


def tag_change(payload: Mapping[str, Any]) -> TagChange:
    return TagChange(
        change=str(payload.get("ChangeType", "")),
        tag_type=str(payload.get("TagType", "tag")),
        id=str(payload.get("Id", "")),
        strategy_id=str(payload.get("StrategyId")) if payload.get("StrategyId") else None,
    )


def _groups(data: Mapping[str, Any]) -> list[TagGroup]:
    out = []
    for g in data.get("tag_group") or []:
        tags = tuple(
            CorpTag(
                str(t["id"]),
                str(t["name"]),
                str(g["group_id"]),
                str(g["group_name"]),
                int(t.get("order", 0)),
            )
            for t in g.get("tag") or []
            if not t.get("deleted")
        )
        out.append(TagGroup(str(g["group_id"]), str(g["group_name"]), int(g.get("order", 0)), tags))
    return out


class CorpTags:
    def __init__(self, api: WeComApi) -> None:
        self.api = api

    async def list(
        self, *, tag_ids: Sequence[str] = (), group_ids: Sequence[str] = ()
    ) -> list[TagGroup]:
        """get_corp_tag_list (all, or only these tags / groups)."""
        body: dict[str, Any] = {}
        if tag_ids:
            body["tag_id"] = list(tag_ids)
        if group_ids:
            body["group_id"] = list(group_ids)
        return _groups(await self.api.call("POST", P + "get_corp_tag_list", body=body))

    async def add(
        self, names: Sequence[str], *, group_id: str | None = None, group_name: str | None = None
    ) -> TagGroup:
        """add_corp_tag into an existing group (group_id) or a new/named group."""
        body: dict[str, Any] = {"tag": [{"name": n} for n in names]}
        if group_id:
            body["group_id"] = group_id
        if group_name:
            body["group_name"] = group_name
        data = await self.api.call("POST", P + "add_corp_tag", body=body)
        return _groups({"tag_group": [data["tag_group"]]})[0]

    async def edit(
        self, tag_or_group_id: str, *, name: str | None = None, order: int | None = None
    ) -> None:
        body: dict[str, Any] = {"id": tag_or_group_id}
        if name is not None:
            body["name"] = name
        if order is not None:
            body["order"] = order
        await self.api.call("POST", P + "edit_corp_tag", body=body)

    async def delete(self, *, tag_ids: Sequence[str] = (), group_ids: Sequence[str] = ()) -> None:
        await self.api.call(
            "POST", P + "del_corp_tag", body={"tag_id": list(tag_ids), "group_id": list(group_ids)}
        )

    async def mark(
        self,
        userid: str,
        external_userid: str,
        *,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
    ) -> None:
        """mark_tag: tags as seen by one salesperson's relation (84061 if not a contact)."""
        await self.api.call(
            "POST",
            P + "mark_tag",
            body={
                "userid": userid,
                "external_userid": external_userid,
                "add_tag": list(add),
                "remove_tag": list(remove),
            },
        )


async def mark_from_outbox(api: WeComApi, message: Outbound) -> SendResult:
    """The outbox's mark_tag operation (queued by the tag push job)."""
    p = message.payload
    try:
        await CorpTags(api).mark(
            str(p["userid"]),
            str(p["external_userid"]),
            add=list(p.get("add_tag") or []),
            remove=list(p.get("remove_tag") or []),
        )
    except WeComApiError as exc:
        return result_of(exc)
    except (aiohttp.ClientError, TimeoutError) as exc:
        # mark_tag sets tags to a state: repeating it after a timeout is harmless
        return SendResult(SendOutcome.RETRY, error_code="network", reason=str(exc) or "timeout")
    return SendResult.sent(None)
