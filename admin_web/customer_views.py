"""Customer page (客户详情): identities, profile, conversations, opt-out status, and the
merge of a duplicate customer (一客一档). Tags, value scores and broadcasts received come
from other packages through `ConsoleDeps.customer_panels`."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.access import AccessDenied, Viewer, conversation_scope
from conversations.consent import Suppression
from conversations.models import ChannelAccount, Conversation, Customer, Identity, StaffUser
from conversations.queries import visible_customer
from tagging.merge import DuplicateSuggestion, MergeError, find_duplicates, merge_customers

from .deps import DEPS_KEY
from .forms import int_or_none
from .i18n import gettext
from .policy import MANAGERS, STAFF, allow
from .render import panels, render
from .security import viewer_of

routes = web.RouteTableDef()


@routes.get("/customers/{id:\\d+}")
@allow(STAFF)
async def customer_page(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    viewer = viewer_of(request)
    customer_id = int(request.match_info["id"])
    async with deps.db.reading() as s:
        try:
            customer = await visible_customer(s, viewer, customer_id)
        except LookupError:
            raise web.HTTPNotFound(text=gettext("No such customer.")) from None
        except AccessDenied:
            raise web.HTTPForbidden(text=gettext("You may not see this customer.")) from None
        conversations = (
            await s.execute(
                select(Conversation, ChannelAccount)
                .join(ChannelAccount, ChannelAccount.id == Conversation.account_id)
                .where(Conversation.customer_id == customer_id, conversation_scope(viewer))
                .order_by(Conversation.last_message_at.desc().nulls_last())
            )
        ).all()
        identities = (
            await s.execute(
                select(Identity, ChannelAccount)
                .join(ChannelAccount, ChannelAccount.id == Identity.account_id)
                .where(Identity.customer_id == customer_id)
                .order_by(Identity.id)
            )
        ).all()
        owner = await s.get(StaffUser, customer.owner_id) if customer.owner_id else None
        addresses = [a for a in (customer.phone, customer.email) if a]
        addresses += [i.external_id for i, _ in identities]
        suppressions = (
            await s.scalars(select(Suppression).where(Suppression.address.in_(addresses)))
        ).all()
        merged_into = (
            await s.get(Customer, customer.merged_into_id) if customer.merged_into_id else None
        )
        duplicates = (
            await _visible_duplicates(s, viewer, customer)
            if viewer.role in MANAGERS and merged_into is None
            else []
        )
    return await render(
        request,
        "customer.html",
        {
            "customer": customer,
            "owner": owner,
            "identities": identities,
            "conversations": conversations,
            "suppressions": suppressions,
            "merged_into": merged_into,
            "can_merge": viewer.role in MANAGERS and merged_into is None,
            "duplicates": duplicates,
            "merge_error": request.query.get("merge_error"),
            "labels": deps.channel_labels,
            "panels": panels([await p(request, customer_id) for p in deps.customer_panels]),
        },
    )


async def _visible_duplicates(
    s: AsyncSession, viewer: Viewer, customer: Customer
) -> list[DuplicateSuggestion]:
    """Probable duplicates of this customer that the viewer may also see."""
    found = await find_duplicates(
        s,
        name=customer.display_name,
        phone=customer.phone,
        email=customer.email,
        unionid=customer.wecom_unionid,
        exclude_id=customer.id,
    )
    visible = []
    for suggestion in found:
        try:
            await visible_customer(s, viewer, suggestion.customer_id)
        except (LookupError, AccessDenied):
            continue
        visible.append(suggestion)
    return visible


@routes.post("/customers/{id:\\d+}/merge")
@allow(MANAGERS)
async def merge_customer_view(request: web.Request) -> web.Response:
    """Merge the customer named in the form into this one (audited by merge_customers)."""
    form = await request.post()
    viewer = viewer_of(request)
    winner_id = int(request.match_info["id"])
    loser_id = int_or_none(form.get("other"))
    if loser_id is None:
        raise web.HTTPFound(f"/customers/{winner_id}?merge_error=other")
    async with request.app[DEPS_KEY].db.transaction() as s:
        for customer_id in (winner_id, loser_id):
            try:
                await visible_customer(s, viewer, customer_id)
            except LookupError:
                raise web.HTTPFound(f"/customers/{winner_id}?merge_error=unknown") from None
            except AccessDenied:
                raise web.HTTPForbidden(text=gettext("You may not see this customer.")) from None
        try:
            await merge_customers(
                s,
                winner_id,
                loser_id,
                actor_id=viewer.staff_id,
                reason=str(form.get("reason", ""))[:500],
            )
        except MergeError:
            raise web.HTTPFound(f"/customers/{winner_id}?merge_error=refused") from None
    raise web.HTTPFound(f"/customers/{winner_id}")
