"""Configuration from environment variables and an optional TOML file, validated at start.

Precedence: environment (CRMBOT_*) over the TOML file over defaults. Each package that
needs its own settings reads its TOML section (`[sms]`, `[email]`, …) from
`Settings.sections` and validates it with its own dataclass, so adding a channel never
touches this file.
"""

from __future__ import annotations

import os
import re
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class ConfigError(ValueError):
    """Raised with every problem found, one per line, so an operator fixes all at once."""


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: str | None
    host: str
    port: int
    public_url: str
    secret_key: str  # signs sessions and encrypts stored channel secrets
    data_dir: Path
    sandbox: bool  # built-in provider simulators instead of real providers
    timezone: str
    log_format: str  # "text" | "json"
    log_level: str
    max_body_bytes: int
    sqlite_synchronous: str
    sections: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # channel accounts managed in the config file ([[accounts]] tables), see bot/account_config.py
    accounts: tuple[Mapping[str, Any], ...] = ()

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def embedded(self) -> bool:
        return self.redis_url is None

    def section(self, name: str) -> Mapping[str, Any]:
        return self.sections.get(name, {})


_ENV_PREFIX = "CRMBOT_"
_CORE_KEYS = {
    "database_url": str,
    "redis_url": str,
    "host": str,
    "port": int,
    "public_url": str,
    "secret_key": str,
    "data_dir": str,
    "sandbox": bool,
    "timezone": str,
    "log_format": str,
    "log_level": str,
    "max_body_bytes": int,
    "sqlite_synchronous": str,
}


def _coerce(name: str, value: Any, kind: type, errors: list[str]) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
        errors.append(f"{name}: expected true/false, got {value!r}")
        return None
    if kind is int:
        try:
            return int(value)
        except (TypeError, ValueError):
            errors.append(f"{name}: expected a whole number, got {value!r}")
            return None
    return str(value)


def load_settings(
    env: Mapping[str, str] | None = None, config_file: Path | None = None
) -> Settings:
    """Read and validate settings; raises ConfigError listing every problem."""
    env = os.environ if env is None else env
    errors: list[str] = []
    file_values: dict[str, Any] = {}
    path = config_file or (
        Path(env[_ENV_PREFIX + "CONFIG"]) if env.get(_ENV_PREFIX + "CONFIG") else None
    )
    if path is None and Path("crmbot.toml").exists():
        path = Path("crmbot.toml")
    if path is not None:
        try:
            file_values = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            errors.append(f"config file {path} does not exist")
        except tomllib.TOMLDecodeError as exc:
            errors.append(f"config file {path}: {exc}")

    raw: dict[str, Any] = {k: v for k, v in file_values.items() if k in _CORE_KEYS}
    sections = {k: v for k, v in file_values.items() if isinstance(v, dict)}
    accounts = file_values.get("accounts", [])
    if not isinstance(accounts, list) or not all(isinstance(a, dict) for a in accounts):
        errors.append("accounts: expected [[accounts]] tables")
        accounts = []
    for key in _CORE_KEYS:
        if (_ENV_PREFIX + key.upper()) in env:
            raw[key] = env[_ENV_PREFIX + key.upper()]
    values = {k: _coerce(k, v, _CORE_KEYS[k], errors) for k, v in raw.items()}

    data_dir = Path(values.get("data_dir") or "var")
    host = values.get("host") or "127.0.0.1"
    port = values.get("port") or 8080
    if not 0 < int(port) < 65536:
        errors.append(f"port: {port} is not a TCP port")
    database_url = values.get("database_url") or f"sqlite+aiosqlite:///{data_dir / 'crmbot.db'}"
    if not re.match(r"^(sqlite\+aiosqlite|postgresql\+asyncpg)://", database_url):
        errors.append(
            "database_url: use sqlite+aiosqlite:///path.db or postgresql+asyncpg://user@host/db"
        )
    redis_url = values.get("redis_url") or None
    if redis_url and not redis_url.startswith(("redis://", "rediss://", "unix://")):
        errors.append("redis_url: expected redis://host:port/db")
    timezone = values.get("timezone") or "Asia/Shanghai"
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        errors.append(f"timezone: unknown time zone {timezone!r}")
    log_format = values.get("log_format") or "text"
    if log_format not in ("text", "json"):
        errors.append("log_format: expected 'text' or 'json'")
    sync = (values.get("sqlite_synchronous") or "FULL").upper()
    if sync not in ("FULL", "NORMAL"):
        errors.append("sqlite_synchronous: expected FULL or NORMAL")
    secret_key = values.get("secret_key") or _stored_secret_key(data_dir)
    if len(secret_key) < 32:
        errors.append("secret_key: must be at least 32 characters")
    if errors:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(errors))
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        host=host,
        port=int(port),
        public_url=(values.get("public_url") or f"http://{host}:{port}").rstrip("/"),
        secret_key=secret_key,
        data_dir=data_dir,
        sandbox=bool(values["sandbox"]) if values.get("sandbox") is not None else True,
        timezone=timezone,
        log_format=log_format,
        log_level=(values.get("log_level") or "INFO").upper(),
        max_body_bytes=values.get("max_body_bytes") or 1024 * 1024,
        sqlite_synchronous=sync,
        sections=sections,
        accounts=tuple(accounts),
    )


def _stored_secret_key(data_dir: Path) -> str:
    """Generate the secret key once per installation and keep it beside the data."""
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key
