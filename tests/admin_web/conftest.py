from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.admin_web.people import Org, seed_org, wire_console
from tests.system import System, start_system, stop_system


@pytest.fixture
async def console(sqlite_url: str, tmp_path: Path) -> AsyncIterator[System]:
    """A whole crmbot with the console wired as the lead wires it (SQLite)."""
    running = await start_system(sqlite_url, tmp_path)
    wire_console(running)
    yield running
    await stop_system(running)


@pytest.fixture
async def org(console: System) -> Org:
    return await seed_org(console)
