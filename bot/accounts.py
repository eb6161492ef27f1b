"""Channel accounts → adapters: decrypts secrets, builds and caches one adapter per account."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select

from channels.base import ChannelAdapter, ChannelContext
from channels.registry import AdapterRegistry
from conversations.db import Database
from conversations.models import ChannelAccount
from conversations.types import AccountRef

from .secrets import SecretBox

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedAccount:
    id: int
    kind: str
    name: str
    callback_token: str
    adapter: ChannelAdapter
    ref: AccountRef


class AccountDirectory:
    def __init__(
        self,
        db: Database,
        registry: AdapterRegistry,
        ctx: ChannelContext,
        secrets: SecretBox,
        installation_secrets: Mapping[str, str] | None = None,
    ) -> None:
        # keys every adapter may need that belong to the installation, not to one
        # account (e.g. the key signing one-click unsubscribe links)
        self.installation_secrets = dict(installation_secrets or {})
        self.db = db
        self.registry = registry
        self.ctx = ctx
        self.secrets = secrets
        self._by_id: dict[int, LoadedAccount] = {}
        self._by_token: dict[str, LoadedAccount] = {}

    def ref(self, row: ChannelAccount) -> AccountRef:
        return AccountRef(
            id=row.id,
            kind=row.kind,
            name=row.name,
            config=dict(row.config),
            secrets={**self.installation_secrets, **self.secrets.open(row.secrets)},
        )

    def _load(self, row: ChannelAccount) -> LoadedAccount:
        ref = self.ref(row)
        adapter = self.registry.build(ref, self.ctx)
        loaded = LoadedAccount(row.id, row.kind, row.name, row.callback_token, adapter, ref)
        self._by_id[row.id] = loaded
        self._by_token[row.callback_token] = loaded
        return loaded

    async def by_id(self, account_id: int) -> LoadedAccount | None:
        if account_id in self._by_id:
            return self._by_id[account_id]
        async with self.db.reading() as s:
            row = await s.get(ChannelAccount, account_id)
        if row is None or row.kind not in self.registry.kinds():
            return None
        return self._load(row)

    async def by_callback_token(self, kind: str, token: str) -> LoadedAccount | None:
        loaded = self._by_token.get(token)
        if loaded is None:
            async with self.db.reading() as s:
                row = await s.scalar(
                    select(ChannelAccount).where(
                        ChannelAccount.callback_token == token, ChannelAccount.enabled.is_(True)
                    )
                )
            if row is None or row.kind not in self.registry.kinds():
                return None
            loaded = self._load(row)
        return loaded if loaded.kind == kind else None

    def forget(self, account_id: int) -> None:
        """Drop a cached adapter after its account was edited in the console."""
        loaded = self._by_id.pop(account_id, None)
        if loaded is not None:
            self._by_token.pop(loaded.callback_token, None)

    async def close_adapters(self) -> None:
        """Let adapters holding connections (IMAP) close them."""
        for loaded in self._by_id.values():
            closer = getattr(loaded.adapter, "aclose", None)
            if closer is not None:
                await closer()

    async def all_enabled(self) -> list[LoadedAccount]:
        async with self.db.reading() as s:
            rows = (
                await s.scalars(select(ChannelAccount).where(ChannelAccount.enabled.is_(True)))
            ).all()
        out = []
        for row in rows:
            if row.kind not in self.registry.kinds():
                log.warning("account %s has kind %s with no adapter; skipped", row.id, row.kind)
                continue
            out.append(self._by_id.get(row.id) or self._load(row))
        return out
