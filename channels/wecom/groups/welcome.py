"""Group welcome templates (入群欢迎语素材, doc 92366): add / edit / get / del through
group_welcome_template/*. WeCom owns the template (members pick it in the client when
they set a group's welcome message); crmbot keeps a copy to list and edit it. The API
call comes first and the copy is written only after WeCom accepted it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from channels.wecom.api import WeComApi
from conversations.db import Database

from .models import GroupWelcomeTemplate

BASE = "/cgi-bin/externalcontact/group_welcome_template/"
TEXT_LIMIT = 4000  # bytes of text.content
ATTACHMENT_KINDS = ("image", "link", "miniprogram", "file", "video")


class TemplateError(ValueError):
    """The template cannot be sent to WeCom as it is (empty, too long, unknown attachment)."""


def template_body(text: str, attachment: Mapping[str, Any], notify: bool) -> dict[str, Any]:
    """The request body WeCom takes; at most one attachment besides the text."""
    if len(text.encode()) > TEXT_LIMIT:
        raise TemplateError(f"欢迎语超过 {TEXT_LIMIT} 字节 (text over {TEXT_LIMIT} bytes)")
    kinds = [k for k in attachment if k in ATTACHMENT_KINDS]
    if len(kinds) != len(attachment) or len(kinds) > 1:
        raise TemplateError(
            "附件只能有一个：图片、链接、小程序、文件或视频 (one attachment at most)"
        )
    if not text.strip() and not kinds:
        raise TemplateError("欢迎语不能为空 (a template needs text or an attachment)")
    body: dict[str, Any] = {"notify": 1 if notify else 0, **attachment}
    if text.strip():
        body["text"] = {"content": text}
    return body


async def create_template(
    db: Database,
    api: WeComApi,
    account_id: int,
    text: str,
    attachment: Mapping[str, Any] | None = None,
    *,
    notify: bool = True,
) -> GroupWelcomeTemplate:
    """group_welcome_template/add, then the local copy."""
    body = template_body(text, attachment or {}, notify)
    data = await api.call("POST", BASE + "add", body=body)
    async with db.transaction() as s:
        row = GroupWelcomeTemplate(
            account_id=account_id,
            template_id=str(data["template_id"]),
            text=text,
            attachment=dict(attachment or {}),
            notify=notify,
        )
        s.add(row)
    return row


async def _row(db: Database, account_id: int, template_id: str) -> GroupWelcomeTemplate:
    async with db.reading() as s:
        row = await s.scalar(
            select(GroupWelcomeTemplate).where(
                GroupWelcomeTemplate.account_id == account_id,
                GroupWelcomeTemplate.template_id == template_id,
            )
        )
    if row is None:
        raise LookupError(f"no group welcome template {template_id} on account {account_id}")
    return row


async def edit_template(
    db: Database,
    api: WeComApi,
    account_id: int,
    template_id: str,
    text: str,
    attachment: Mapping[str, Any] | None = None,
) -> None:
    """group_welcome_template/edit, then the local copy."""
    await _row(db, account_id, template_id)
    body = template_body(text, attachment or {}, True)
    body.pop("notify")  # edit takes no notify flag
    await api.call("POST", BASE + "edit", body={"template_id": template_id, **body})
    async with db.transaction() as s:
        row = await s.scalar(
            select(GroupWelcomeTemplate).where(
                GroupWelcomeTemplate.account_id == account_id,
                GroupWelcomeTemplate.template_id == template_id,
            )
        )
        assert row is not None
        row.text = text
        row.attachment = dict(attachment or {})


async def refresh_template(
    db: Database, api: WeComApi, account_id: int, template_id: str
) -> GroupWelcomeTemplate:
    """group_welcome_template/get: the copy takes what WeCom holds now."""
    data = await api.call("POST", BASE + "get", body={"template_id": template_id})
    async with db.transaction() as s:
        row = await s.scalar(
            select(GroupWelcomeTemplate).where(
                GroupWelcomeTemplate.account_id == account_id,
                GroupWelcomeTemplate.template_id == template_id,
            )
        )
        if row is None:
            row = GroupWelcomeTemplate(account_id=account_id, template_id=template_id)
            s.add(row)
        row.text = str((data.get("text") or {}).get("content") or "")
        row.attachment = {k: data[k] for k in ATTACHMENT_KINDS if data.get(k)}
    return row


async def delete_template(db: Database, api: WeComApi, account_id: int, template_id: str) -> None:
    """group_welcome_template/del, then the local copy."""
    await api.call("POST", BASE + "del", body={"template_id": template_id})
    async with db.transaction() as s:
        row = await s.scalar(
            select(GroupWelcomeTemplate).where(
                GroupWelcomeTemplate.account_id == account_id,
                GroupWelcomeTemplate.template_id == template_id,
            )
        )
        if row is not None:
            await s.delete(row)
