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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from .engine import Engine
from .faq import FaqDoc, FaqIndex, load_tokenizer
from .lifecycle import AccountProfile
from .settings import AutoReplySettings
from .store import (
    ACCOUNTS,
    FAQ,
    RULES,
    CompiledRules,
    RuleRow,
    compile_rule_rows,
    load_accounts,
    load_faq,
    load_rule_rows,
    read_versions,
)

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
        self._rules: CompiledRules = {}
        self._checked_at = float("-inf")
        self._lock = asyncio.Lock()
        self.rebuilds = 0

    async def warm_up(self) -> None:
        """Load jieba's dictionary (~1 s) in a thread: call at worker start, so the
        first rebuild does not pay for it."""
        await asyncio.to_thread(load_tokenizer)

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
        # the loop only reads (one query per table); validating, jieba and the automata
        # are CPU work done in a thread while the old snapshot keeps answering
        rule_rows = await load_rule_rows(session) if RULES in stale or old is None else None
        faq_source = await load_faq(session) if FAQ in stale or old is None else None
        accounts = (
            await load_accounts(session) if ACCOUNTS in stale or old is None else old.accounts
        )
        rules, engine = await asyncio.to_thread(
            self._build, rule_rows, faq_source, old.engine.faq if old is not None else None
        )
        self._rules = rules  # only after a successful build
        self.rebuilds += 1
        log.info(
            "autoreply index rebuilt: %d rules, %d faq entries, %s in %.3f s",
            len(rules),
            len(engine.faq),
            sorted(stale),
            time.perf_counter() - started,
        )
        return Snapshot(engine=engine, accounts=accounts, versions=dict(versions))

    def _build(
        self,
        rule_rows: Sequence[RuleRow] | None,
        faq_source: tuple[list[FaqDoc], dict[str, list[str]]] | None,
        faq: FaqIndex | None,
    ) -> tuple[CompiledRules, Engine]:
        """The new engine (runs in a worker thread); unchanged parts are reused."""
        rules = self._rules if rule_rows is None else compile_rule_rows(rule_rows, self._rules)
        if faq_source is not None or faq is None:
            entries, synonyms = faq_source or ([], {})
            faq = FaqIndex(entries, synonyms)
        engine = Engine.build([rule for _at, rule in rules.values()], faq, self.settings)
        return rules, engine
