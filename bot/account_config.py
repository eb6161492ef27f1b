"""Channel accounts declared in the config file, validated at start and kept in the store.

    [[accounts]]
    kind = "wecom.app"
    name = "销售助手"
    callback_token = "a-long-random-string"   # optional; generated once if absent
    [accounts.config]
    corp_id = "ww0123456789abcdef"
    agent_id = 1000002
    [accounts.secrets]
    secret = "env:WECOM_APP_SECRET"             # "env:NAME" reads the environment
    token = "…"
    encoding_aes_key = "…"

Each account is checked by building its adapter, so the message for a wrong
EncodingAESKey, a missing template or a bad phone number is the channel's own.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from conversations.models import ChannelAccount
from conversations.types import AccountRef

from .config import ConfigError
from .runtime import Services


@dataclass(frozen=True)
class ConfiguredAccount:
    kind: str
    name: str
    config: dict[str, Any]
    secrets: dict[str, str]
    callback_token: str | None


def _resolve(value: Any, env: Mapping[str, str], where: str, problems: list[str]) -> str:
    text = str(value)
    if text.startswith("env:"):
        name = text[4:]
        if name not in env:
            problems.append(f"{where}: environment variable {name} is not set")
            return ""
        return env[name]
    return text


def parse_accounts(
    raw: tuple[Mapping[str, Any], ...], kinds: list[str], env: Mapping[str, str] | None = None
) -> tuple[list[ConfiguredAccount], list[str]]:
    env = os.environ if env is None else env
    problems: list[str] = []
    out: list[ConfiguredAccount] = []
    seen: set[tuple[str, str]] = set()
    for index, entry in enumerate(raw, start=1):
        where = f"accounts #{index}"
        kind = str(entry.get("kind", ""))
        name = str(entry.get("name", "")).strip()
        if kind not in kinds:
            problems.append(f"{where}: kind {kind!r} is not one of {', '.join(kinds)}")
            continue
        if not name:
            problems.append(f"{where}: name is missing")
            continue
        where = f"account {name!r} ({kind})"
        if (kind, name) in seen:
            problems.append(f"{where}: declared twice")
            continue
        seen.add((kind, name))
        config = entry.get("config", {})
        raw_secrets = entry.get("secrets", {})
        if not isinstance(config, dict) or not isinstance(raw_secrets, dict):
            problems.append(f"{where}: config and secrets must be tables")
            continue
        token = entry.get("callback_token")
        if token is not None and len(str(token)) < 16:
            problems.append(
                f"{where}: callback_token must be at least 16 characters (it guards the URL)"
            )
        out.append(
            ConfiguredAccount(
                kind=kind,
                name=name,
                config=dict(config),
                secrets={k: _resolve(v, env, where, problems) for k, v in raw_secrets.items()},
                callback_token=str(token) if token is not None else None,
            )
        )
    return out, problems


async def apply_configured_accounts(services: Services) -> list[tuple[str, str, str]]:
    """Validate and upsert the declared accounts; returns (kind, name, callback URL)."""
    declared, problems = parse_accounts(services.settings.accounts, services.registry.kinds())
    for acc in declared:
        try:
            services.registry.build(
                AccountRef(
                    id=0, kind=acc.kind, name=acc.name, config=acc.config, secrets=acc.secrets
                ),
                services.accounts.ctx,
            )
        except (ValueError, KeyError, TypeError) as exc:
            problems.append(f"account {acc.name!r} ({acc.kind}): {exc}")
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    urls: list[tuple[str, str, str]] = []
    async with services.db.transaction() as s:
        for acc in declared:
            row = await s.scalar(
                select(ChannelAccount).where(
                    ChannelAccount.kind == acc.kind, ChannelAccount.name == acc.name
                )
            )
            if row is None:
                row = ChannelAccount(
                    kind=acc.kind,
                    name=acc.name,
                    callback_token=acc.callback_token or secrets.token_urlsafe(24),
                    config={},
                    secrets={},
                )
                s.add(row)
            elif acc.callback_token:
                row.callback_token = acc.callback_token
            row.config = {**acc.config, "managed_by": "config"}
            row.secrets = services.secrets.seal(acc.secrets)
            row.enabled = True
            await s.flush()
            services.accounts.forget(row.id)
            urls.append(
                (
                    acc.kind,
                    acc.name,
                    f"{services.settings.public_url}/callbacks/{acc.kind}/{row.callback_token}",
                )
            )
    return urls
