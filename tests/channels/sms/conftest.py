"""Fixtures for SMS adapter tests: an HTTP session, shared state and a channel context."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from channels.base import ChannelContext
from channels.media import MediaStore
from channels.state import MemoryState
from conversations.db import Database
from tests.channels.sms.harness import CallbackHarness


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def state() -> MemoryState:
    return MemoryState()


@pytest.fixture
def ctx(http: aiohttp.ClientSession, state: MemoryState, tmp_path: Path) -> ChannelContext:
    return ChannelContext(
        http=http, state=state, media=MediaStore(tmp_path / "media"), public_url="http://127.0.0.1"
    )


@pytest.fixture
async def harness(db: Database) -> AsyncIterator[CallbackHarness]:
    h = CallbackHarness(db)
    await h.start()
    yield h
    await h.close()


@pytest.fixture
async def sqlite_harness(sqlite_db: Database) -> AsyncIterator[CallbackHarness]:
    h = CallbackHarness(sqlite_db)
    await h.start()
    yield h
    await h.close()
