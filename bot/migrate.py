"""Run Alembic migrations programmatically (no alembic.ini to keep in sync)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def upgrade(url: str, target: str = "heads") -> None:
    """Bring the database to the newest schema; every package branch included."""
    command.upgrade(alembic_config(url), target)


async def upgrade_async(url: str) -> None:
    # Alembic's env.py runs its own event loop; keep it off ours
    await asyncio.to_thread(upgrade, url)


def revision(url: str, message: str, autogenerate: bool = True) -> None:
    command.revision(alembic_config(url), message=message, autogenerate=autogenerate)
