"""The OpenAPI document describes exactly the API routes the application serves."""

from __future__ import annotations

import re

import aiohttp

from tests.admin_web.test_permission_matrix import console_routes
from tests.system import System


async def test_openapi_documents_every_api_route(console: System) -> None:
    async with aiohttp.ClientSession() as http:
        resp = await http.get(f"{console.base}/api/v1/openapi.yaml")
        text = await resp.text()
    assert resp.status == 200
    # the `paths:` section: two-space indented paths, four-space indented methods
    documented: set[tuple[str, str]] = set()
    path = ""
    for line in text.split("\npaths:\n", 1)[1].splitlines():
        if m := re.match(r"^  (/\S*):$", line):
            path = m.group(1)
        elif m := re.match(r"^    (get|post|put|patch|delete):$", line):
            documented.add((m.group(1).upper(), "/api/v1" + path))
    served = {
        (method, re.sub(r"\{(\w+):[^}]+\}", r"{\1}", path))
        for method, path in console_routes(console.server.app)
        if path.startswith("/api/v1")
    }
    assert documented == served
