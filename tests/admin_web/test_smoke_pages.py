"""Every console page renders for the roles allowed to open it."""

from __future__ import annotations

import pytest

from tests.admin_web.people import PASSWORD, Org
from tests.system import System

PAGES = [
    "/inbox",
    "/search?q=你好",
    "/dashboard",
    "/stats/staff",
    "/settings/accounts",
    "/settings/users",
    "/settings/handover",
    "/audit",
    "/me",
    "/quick-replies",
]


@pytest.mark.parametrize("path", PAGES)
async def test_admin_opens_every_page(console: System, org: Org, path: str) -> None:
    http = await console.login("admin", PASSWORD)
    try:
        resp = await http.get(f"{console.base}{path}")
        assert resp.status == 200, await resp.text()
    finally:
        await http.close()
