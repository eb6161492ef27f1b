"""The scheduled work of tagging, for the scheduler to call once a night (or hourly).

Each step runs in its own transaction so one failing step does not undo the others, and
each is idempotent, so a repeated fire changes nothing."""

from __future__ import annotations

import logging
from datetime import datetime, tzinfo
from typing import Any

from conversations.db import Database

from .autotag import apply_profile_rules
from .config import TaggingSettings
from .profiles import refresh_age_brackets, remind_birthdays
from .value import recompute_values

log = logging.getLogger(__name__)


async def nightly(
    db: Database, settings: TaggingSettings, now: datetime, tz: tzinfo
) -> dict[str, Any]:
    """Age brackets, RFM/ABC, profile auto-tag rules and birthday reminders; a summary."""
    today = now.astimezone(tz).date()
    async with db.transaction() as s:
        await refresh_age_brackets(s, today)
    async with db.transaction() as s:
        report = await recompute_values(s, settings.value, now)
    async with db.transaction() as s:
        tagged = await apply_profile_rules(s, now)
    async with db.transaction() as s:
        reminded = await remind_birthdays(s, today, settings.birthday_reminder_days)
    summary = {
        "scored": report.scored,
        "classes": report.classes,
        "profile_rule_tags": tagged,
        "birthday_reminders": reminded,
    }
    log.info("tagging nightly: %s", summary)
    return summary
