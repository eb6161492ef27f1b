"""What every WeCom account kind shares: its corp, its API client (own secret, own token
cache, own rate limit) and its callback crypto. Config keys are checked in config_check."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from channels.base import ChannelContext
from conversations.types import AccountRef

from .api import DEFAULT_BASE, RateLimit, WeComApi
from .crypto import WeComCrypto


def api_base(config: Mapping[str, Any], ctx: ChannelContext) -> str:
    """Sandbox accounts talk to the built-in simulator, wherever it listens this run."""
    sandbox = ctx.api_base_overrides.get("wecom") if config.get("sandbox") else None
    return str(config.get("api_base") or sandbox or DEFAULT_BASE)


def rate_limit(config: Mapping[str, Any]) -> RateLimit:
    limit = config.get("api_rate_limit") or {}
    return RateLimit(
        calls=int(limit.get("calls", RateLimit.calls)),
        seconds=float(limit.get("seconds", RateLimit.seconds)),
    )


def build_api(account: AccountRef, ctx: ChannelContext) -> WeComApi:
    return WeComApi(
        ctx.http,
        ctx.state,
        corp_id=str(account.config["corp_id"]),
        secret=account.secrets["secret"],
        base_url=api_base(account.config, ctx),
        limit=rate_limit(account.config),
    )


def build_crypto(account: AccountRef) -> WeComCrypto | None:
    """The callback crypto, or None for an account that receives no callbacks."""
    token = account.secrets.get("token")
    key = account.secrets.get("encoding_aes_key")
    if not token or not key:
        return None
    return WeComCrypto(token, key, str(account.config["corp_id"]))
