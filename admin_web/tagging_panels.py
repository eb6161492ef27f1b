"""Tagging's sections in other console pages (issue 9): the customer's tags (editable)
and value scores (RFM / ABC) on the customer page, and the inbox filter by tag.

`bot.runtime.web_app` plugs them into `ConsoleDeps.customer_panels` and
`ConsoleDeps.inbox_filters`. The customer page checked that the viewer may see the
customer before it asks for panels; the tag form posts to tagging_views, which checks again.
"""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session
from sqlalchemy import ColumnElement, select

from conversations.models import Conversation
from tagging.models import CustomerProfile, CustomerTag, Tag, TagGroup
from tagging.tags import tags_of
from tagging.value import ValueConfig

from .deps import DEPS_KEY, CustomerPanel
from .forms import int_or_none
from .security import csrf_token_for

TAG_PARAM = "tag"


async def _tag_choices(request: web.Request) -> list[tuple[TagGroup, list[Tag]]]:
    """Tags that can still be given, grouped as in the tag manager."""
    async with request.app[DEPS_KEY].db.reading() as s:
        groups = (await s.scalars(select(TagGroup).order_by(TagGroup.sort, TagGroup.id))).all()
        tags = (
            await s.scalars(select(Tag).where(Tag.archived.is_(False)).order_by(Tag.sort, Tag.id))
        ).all()
    by_group: dict[int, list[Tag]] = {}
    for tag in tags:
        by_group.setdefault(tag.group_id, []).append(tag)
    return [(g, by_group[g.id]) for g in groups if g.id in by_group]


async def customer_tags_panel(request: web.Request, customer_id: int) -> str | None:
    """The customer's tags, why each is there, and forms to add or remove one."""
    async with request.app[DEPS_KEY].db.reading() as s:
        assigned = await tags_of(s, customer_id)
    given = {t.tag_id for t in assigned}
    choices = [
        (group, [t for t in tags if t.id not in given])
        for group, tags in await _tag_choices(request)
    ]
    return aiohttp_jinja2.render_string(
        "tagging/_customer_tags.html",
        request,
        {
            "customer_id": customer_id,
            "assigned": assigned,
            "choices": [(g, tags) for g, tags in choices if tags],
            "csrf": csrf_token_for(await get_session(request)),
        },
    )


def customer_value_panel(config: ValueConfig) -> CustomerPanel:
    """RFM scores and ABC class with the figures behind them (`[tagging.value]`)."""

    async def panel(request: web.Request, customer_id: int) -> str | None:
        async with request.app[DEPS_KEY].db.reading() as s:
            profile = await s.get(CustomerProfile, customer_id)
        scored = profile is not None and profile.value_computed_at is not None
        return aiohttp_jinja2.render_string(
            "tagging/_customer_value.html",
            request,
            {
                "p": profile if scored else None,
                "window_days": config.window_days,
                "monetary_yuan": (profile.monetary_cents or 0) / 100 if profile else 0,
            },
        )

    return panel


class TagInboxFilter:
    """Inbox filter by customer tag: `?tag=<id>` keeps conversations whose customer has it."""

    async def control(self, request: web.Request) -> str:
        return aiohttp_jinja2.render_string(
            "tagging/_inbox_filter.html",
            request,
            {"choices": await _tag_choices(request), "selected": self._tag_id(request)},
        )

    def condition(self, request: web.Request) -> ColumnElement[bool] | None:
        tag_id = self._tag_id(request)
        if tag_id is None:
            return None
        tagged = select(CustomerTag.customer_id).where(CustomerTag.tag_id == tag_id)
        return Conversation.customer_id.in_(tagged)

    @staticmethod
    def _tag_id(request: web.Request) -> int | None:
        return int_or_none(request.query.get(TAG_PARAM))
