"""Who sent a message: identities, their customers, e-mail threads — synchronous, so the
same code serves an async session (`AsyncSession.run_sync`, see actions.py) and the
callback ingest that runs a whole batch on a worker thread (Database.write_in_thread)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from .db import utcnow
from .models import ChannelAccount, Conversation, Customer, Identity, Message
from .sql import insert_ignore_returning_id_sync

log = logging.getLogger(__name__)

MAX_THREAD_REFS = 50  # a long References header: the nearest ids are the ones that matter


def resolve_identity(
    session: Session,
    account: ChannelAccount,
    external_id: str,
    *,
    display_name: str | None = None,
    hints: Mapping[str, str] | None = None,
) -> Identity:
    """Find or create the identity (and its customer) for an external id on an account.

    A new identity joins an existing customer that shares a phone, email or WeCom
    unionid (one customer per person); otherwise a new customer is created.
    """
    found = session.scalar(
        select(Identity).where(
            Identity.channel_kind == account.kind,
            Identity.account_id == account.id,
            Identity.external_id == external_id,
        )
    )
    if found is not None:
        return found
    hints = hints or {}
    customer = customer_by_hints(session, hints)
    if customer is None:
        customer = Customer(
            display_name=display_name or hints.get("name") or external_id,
            phone=hints.get("phone"),
            email=hints.get("email"),
            wecom_unionid=hints.get("unionid"),
            first_channel=account.kind,
        )
        session.add(customer)
        session.flush()
    new_id = insert_ignore_returning_id_sync(
        session,
        Identity.__table__,  # type: ignore[arg-type]  # declarative tables are Tables
        {
            "customer_id": customer.id,
            "channel_kind": account.kind,
            "account_id": account.id,
            "external_id": external_id,
            "display_name": display_name,
            "created_at": utcnow(),
        },
        ("channel_kind", "account_id", "external_id"),
    )
    query = select(Identity).where(
        Identity.channel_kind == account.kind,
        Identity.account_id == account.id,
        Identity.external_id == external_id,
    )
    identity = session.execute(query).scalar_one()
    if new_id is None:
        log.debug("identity raced into existence: %s/%s", account.id, external_id)
    return identity


def customer_by_hints(session: Session, hints: Mapping[str, str]) -> Customer | None:
    for column, key in (
        (Customer.wecom_unionid, "unionid"),
        (Customer.phone, "phone"),
        (Customer.email, "email"),
    ):
        value = hints.get(key)
        if value:
            customer = session.scalar(
                select(Customer)
                .where(column == value, Customer.merged_into_id.is_(None))
                .order_by(Customer.id)
                .limit(1)
            )
            if customer is not None:
                return customer
    # WeCom's external_userid names one person across a corp's kf, 客户联系 and archive
    # accounts: a new identity with the same id joins that person's customer
    external_userid = hints.get("external_userid")
    if external_userid:
        return session.scalar(
            select(Customer)
            .join(Identity, Identity.customer_id == Customer.id)
            .where(
                Identity.external_id == external_userid,
                Identity.channel_kind.like("wecom.%"),
                Customer.merged_into_id.is_(None),
            )
            .order_by(Customer.id)
            .limit(1)
        )
    return None


def thread_conversation(
    session: Session, account_id: int, refs: Sequence[str]
) -> Conversation | None:
    """The conversation of the nearest message in `refs` stored on the account (the
    Message-ID → conversation index is messages(account_id, provider_message_id))."""
    refs = [ref for ref in refs[:MAX_THREAD_REFS] if ref]
    if not refs:
        return None
    rows = (
        session.execute(
            select(Message.provider_message_id, Message.conversation_id)
            .where(Message.account_id == account_id, Message.provider_message_id.in_(refs))
            .order_by(Message.id)
        )
    ).all()
    found = {str(ref): int(conv_id) for ref, conv_id in rows}
    for ref in refs:
        if ref in found:
            return session.get(Conversation, found[ref])
    return None
