"""Browser tests: Playwright driving the system's Chromium (never a downloaded browser).

A new browser test needs only the `console` system, the `org` people and `ui`:
`page = await ui.login("sales_a")`, then Playwright as usual. Tagging and broadcast
tests add their own seed data with tests.admin_web.people helpers."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.admin_web.people import PASSWORD, Org, seed_org, wire_console
from tests.system import System, start_system, stop_system

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

pytestmark = pytest.mark.browser


@pytest.fixture
async def console(sqlite_url: str, tmp_path: Path) -> AsyncIterator[System]:
    running = await start_system(sqlite_url, tmp_path)
    wire_console(running)
    yield running
    await stop_system(running)


@pytest.fixture
async def org(console: System) -> Org:
    return await seed_org(console)


@dataclass
class Ui:
    """Opens logged-in pages in one browser."""

    browser: Any
    console: System

    async def login(self, username: str, *, mobile: bool = False, locale: str = "zh-CN") -> Any:
        viewport = {"width": 390, "height": 844} if mobile else {"width": 1280, "height": 860}
        context = await self.browser.new_context(viewport=viewport, locale=locale)
        page = await context.new_page()
        await page.goto(f"{self.console.base}/login")
        await page.fill("input[name=username]", username)
        await page.fill("input[name=password]", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_selector("header.top")  # a console page, not the login form
        return page

    def url(self, path: str) -> str:
        return self.console.base + path


@pytest.fixture
async def ui(console: System) -> AsyncIterator[Ui]:
    if not CHROMIUM.exists() or shutil.which(str(CHROMIUM)) is None:
        pytest.skip(f"Chromium not installed at {CHROMIUM}")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.skip("playwright is not installed")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(CHROMIUM), args=LAUNCH_ARGS, headless=True
        )
        try:
            yield Ui(browser, console)
        finally:
            await browser.close()
