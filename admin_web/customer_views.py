"""Customer page (客户详情): identities, profile, conversations, opt-out status. The
tagging and broadcast packages fill their sections through template blocks."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select

from conversations.access import AccessDenied, conversation_scope
from conversations.consent import Suppression
from conversations.models import ChannelAccount, Conversation, Identity, StaffUser
from conversations.queries import visible_customer

from .deps import DEPS_KEY
from .i18n import gettext
from .policy import STAFF, allow
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
    return await render(
        request,
        "customer.html",
        {
            "customer": customer,
            "owner": owner,
            "identities": identities,
            "conversations": conversations,
            "suppressions": suppressions,
            "labels": deps.channel_labels,
            "panels": panels([await p(request, customer_id) for p in deps.customer_panels]),
        },
    )
