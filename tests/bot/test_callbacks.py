"""The callback route's place in the aiohttp application."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.typedefs import Handler

from bot.callbacks import callbacks_first


async def test_provider_callbacks_skip_the_console_middlewares() -> None:
    seen: list[str] = []

    @web.middleware
    async def console_layer(request: web.Request, handler: Handler) -> web.StreamResponse:
        seen.append(request.path)
        return await handler(request)

    async def ok(_request: web.Request) -> web.Response:
        return web.Response(text="success")

    app = web.Application(middlewares=[callbacks_first, console_layer])
    app.router.add_post("/callbacks/{kind}/{token}", ok)
    app.router.add_get("/inbox", ok)
    async with TestClient(TestServer(app)) as client:
        callback = await client.post("/callbacks/wecom.app/t0k")
        page = await client.get("/inbox")
        missing = await client.post("/callbacks")
        assert (callback.status, page.status, missing.status) == (200, 200, 404)
        assert callback.headers["X-Content-Type-Options"] == "nosniff"
    assert seen == ["/inbox", "/callbacks"]
