"""One-click unsubscribe (RFC 8058): signed tokens and the aiohttp handler."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from channels.email.unsubscribe import derive_key, make_token, read_token, routes
from conversations.consent import is_suppressed
from conversations.db import Database

KEY = derive_key("x" * 48)


def test_token_round_trips() -> None:
    found = read_token(KEY, make_token(KEY, 3, "Buyer@Customer.test"))

    assert found is not None and (found.account_id, found.address) == (3, "buyer@customer.test")


def test_tampered_token_is_refused() -> None:
    token = make_token(KEY, 3, "buyer@customer.test")
    other = make_token(KEY, 3, "victim@customer.test")

    assert read_token(KEY, other.split(".")[0] + "." + token.split(".")[1]) is None
    assert read_token(derive_key("y" * 48), token) is None
    assert read_token(KEY, "garbage") is None


async def client_for(db: Database, aiohttp_client: Any) -> Any:
    app = web.Application()
    app.add_routes(routes(db, KEY))
    return await aiohttp_client(app)


async def test_get_shows_a_page_and_unsubscribes_nobody(db: Database, aiohttp_client: Any) -> None:
    client = await client_for(db, aiohttp_client)
    token = make_token(KEY, 1, "buyer@customer.test")

    response = await client.get(f"/email/unsubscribe/{token}")

    assert response.status == 200
    assert "buyer@customer.test" in await response.text()
    async with db.reading() as session:
        assert not await is_suppressed(session, channel="email", address="buyer@customer.test")


async def test_one_click_post_suppresses_the_address(db: Database, aiohttp_client: Any) -> None:
    client = await client_for(db, aiohttp_client)
    token = make_token(KEY, 1, "buyer@customer.test")

    response = await client.post(
        f"/email/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"}
    )

    assert response.status == 200
    async with db.reading() as session:
        assert await is_suppressed(session, channel="email", address="buyer@customer.test")


async def test_forged_token_is_404(db: Database, aiohttp_client: Any) -> None:
    client = await client_for(db, aiohttp_client)

    response = await client.post(
        "/email/unsubscribe/abc.def", data={"List-Unsubscribe": "One-Click"}
    )

    assert response.status == 404
