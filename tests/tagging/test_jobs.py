"""Settings and the scheduled job."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from conversations.access import Role
from conversations.db import Database, utcnow
from conversations.notifications import StaffNotification
from conversations.staff import create_staff
from tagging.config import TaggingSettings
from tagging.jobs import nightly
from tagging.models import CustomerProfile
from tests.tagging import factories as f

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_settings_reject_unknown_keys() -> None:
    with pytest.raises(ValueError, match="unknown"):
        TaggingSettings.from_section({"birthday_days": 3})


def test_settings_read_the_value_table() -> None:
    settings = TaggingSettings.from_section({"value": {"window_days": 90}})
    assert settings.value.window_days == 90


async def test_nightly_scores_brackets_and_reminds_once(sqlite_db: Database) -> None:
    now = utcnow()
    today = now.astimezone(SHANGHAI).date()
    async with sqlite_db.transaction() as s:
        owner = await create_staff(
            s, username="sales1", password="s3cret-pass-123", role=Role.SALES
        )
        # born in a leap year, so the date exists even when today is 29 February
        c = await f.customer(s, "寿星", birth_date=date(1992, today.month, today.day))
        c.owner_id = owner.id
    first = await nightly(sqlite_db, TaggingSettings(), now, SHANGHAI)
    second = await nightly(sqlite_db, TaggingSettings(), now, SHANGHAI)
    async with sqlite_db.reading() as s:
        profile = await s.get(CustomerProfile, c.id)
        notes = (await s.scalars(select(StaffNotification))).all()
    assert (first["birthday_reminders"], second["birthday_reminders"]) == (1, 0)
    assert profile is not None and profile.age_bracket is not None and profile.abc_class == "C"
    assert len(notes) == 1 and "寿星" in notes[0].text
