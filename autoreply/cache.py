"""The in-memory engine and account profiles, rebuilt when the store's version
counters move (an edit in this process or in any other).

A rebuild reads the rows, compiles the new indexes in a worker thread, and swaps one
reference: messages being decided meanwhile keep using the previous snapshot, so the
pipeline never pauses for a rebuild. The version row is read at most every
`reload_check`, so deciding costs no store round trip per message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from .engine import Engine
from .faq import FaqIndex
from .lifecycle import AccountProfile
from .rules import Rule
from .settings import AutoReplySettings
from .store import ACCOUNTS, FAQ, RULES, load_accounts, load_faq, load_rules, read_versions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    engine: Engine
    accounts: Mapping[int, AccountProfile] = field(default_factory=dict)
    versions: Mapping[str, int] = field(default_factory=dict)

    def profile(self, account_id: int) -> AccountProfile:
        return self.accounts.get(account_id) or AccountProfile()


class EngineCache:
    def __init__(
        self, settings: AutoReplySettings, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._snapshot: Snapshot | None = None
        self._rules: list[Rule] = []
        self._checked_at = float("-inf")
        self._lock = asyncio.Lock()
        self.rebuilds = 0

    def invalidate(self) -> None:
        """Read the version row on the next call (this process just edited rules)."""
        self._checked_at = float("-inf")

    async def current(self, session: AsyncSession) -> Snapshot:
        """The snapshot to decide with; rebuilds first if the store moved on."""
        snapshot = self._snapshot
        now = self._clock()
        if (
            snapshot is not None
            and now - self._checked_at < self.settings.reload_check.total_seconds()
        ):
            return snapshot
        self._checked_at = now
        versions = await read_versions(session)
        if snapshot is not None and versions == snapshot.versions:
            return snapshot
        if snapshot is not None and self._lock.locked():
            return snapshot  # another task is rebuilding: keep answering with this one
        async with self._lock:
            current = self._snapshot
            if current is None or current.versions != versions:
                current = await self._rebuild(session, current, versions)
                self._snapshot = current
            return current

    async def _rebuild(
        self, session: AsyncSession, old: Snapshot | None, versions: Mapping[str, int]
    ) -> Snapshot:
        started = time.perf_counter()
        stale = {
            name for name in versions if old is None or old.versions.get(name) != versions[name]
        }
        if RULES in stale:
            self._rules = await load_rules(session)
        faq = old.engine.faq if old is not None else None
        if FAQ in stale or faq is None:
            entries, synonyms = await load_faq(session)
            # jieba and the automata are CPU work: off the event loop
            faq = await asyncio.to_thread(FaqIndex, entries, synonyms)
        accounts = (
            await load_accounts(session) if ACCOUNTS in stale or old is None else old.accounts
        )
        engine = await asyncio.to_thread(Engine.build, self._rules, faq, self.settings)
        self.rebuilds += 1
        log.info(
            "autoreply index rebuilt: %d rules, %d faq entries, %s in %.3f s",
            len(self._rules),
            len(faq),
            sorted(stale),
            time.perf_counter() - started,
        )
        return Snapshot(engine=engine, accounts=accounts, versions=dict(versions))
