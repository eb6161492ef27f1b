"""A whole crmbot (web + worker roles) on a test store, wired to provider simulators."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from bot.config import load_settings
from bot.runtime import Services, build_services, start_background, web_app
from channels.wecom.simulator import SimApp, WeComSimulator, new_app
from conversations.access import Role
from conversations.models import ChannelAccount
from conversations.staff import create_staff


async def eventually(
    check: Callable[[], Awaitable[Any]], timeout: float = 10.0, interval: float = 0.02
) -> Any:
    """Poll `check` until it returns something truthy (no sleeps standing in for waits)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")


@dataclass
class System:
    services: Services
    server: TestServer
    sim: WeComSimulator
    sim_server: TestServer
    wecom: SimApp
    wecom_account_id: int
    wecom_token: str

    @property
    def base(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    def callback_url(self, kind: str = "wecom.app", token: str | None = None) -> str:
        return f"{self.base}/callbacks/{kind}/{token or self.wecom_token}"

    async def add_staff(
        self, username: str, role: Role, password: str = "s3cret-pass-123", **kw: Any
    ) -> int:
        async with self.services.db.transaction() as s:
            user = await create_staff(s, username=username, password=password, role=role, **kw)
            return user.id

    async def login(
        self, username: str, password: str = "s3cret-pass-123"
    ) -> aiohttp.ClientSession:
        """A browser-like session logged into the console (cookies + CSRF)."""
        http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        page = await (await http.get(f"{self.base}/login")).text()
        csrf = re.search(r'name="_csrf" value="([^"]+)"', page)
        assert csrf
        resp = await http.post(
            f"{self.base}/login",
            data={
                "username": username,
                "password": password,
                "_csrf": csrf.group(1),
                "next": "/inbox",
            },
            allow_redirects=False,
        )
        assert resp.status == 302, await resp.text()
        return http


async def start_system(db_url: str, data_dir: Path) -> System:
    sim = WeComSimulator()
    sim_server = TestServer(sim.app(), host="127.0.0.1")
    await sim_server.start_server()
    settings = load_settings(
        env={
            "CRMBOT_DATABASE_URL": db_url,
            "CRMBOT_DATA_DIR": str(data_dir),
            "CRMBOT_SANDBOX": "false",
            "CRMBOT_SECRET_KEY": secrets.token_urlsafe(40),
            "CRMBOT_LOG_LEVEL": "WARNING",
        }
    )
    # periodic jobs off: tests call them explicitly, so a background run never races one
    settings = dataclasses.replace(
        settings, sections={**settings.sections, "jobs": {"enabled": False}}
    )
    services = await build_services(settings)
    wecom = sim.add_app(new_app())
    sim.add_member(wecom.corp_id, "zhangsan")
    token = secrets.token_urlsafe(16)
    async with services.db.transaction() as s:
        row = ChannelAccount(
            kind="wecom.app",
            name="销售应用",
            config={
                "corp_id": wecom.corp_id,
                "agent_id": wecom.agent_id,
                "api_base": str(sim_server.make_url("")).rstrip("/"),
            },
            secrets=services.secrets.seal(
                {
                    "secret": wecom.secret,
                    "token": wecom.token,
                    "encoding_aes_key": wecom.encoding_aes_key,
                }
            ),
            callback_token=token,
        )
        s.add(row)
        await s.flush()
        account_id = row.id
    server = TestServer(web_app(services), host="127.0.0.1")
    await server.start_server()
    await start_background(services)
    return System(services, server, sim, sim_server, wecom, account_id, token)


async def stop_system(system: System) -> None:
    await system.server.close()  # runs nothing of ours: services closed below
    await system.services.close()
    await system.sim_server.close()
