"""Configuration is validated at start, every problem reported at once (issue 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.account_config import apply_configured_accounts
from bot.config import ConfigError, load_settings
from bot.runtime import build_services
from conversations.models import ChannelAccount

GOOD_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"


def test_every_core_problem_is_reported_at_once(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(
            env={
                "CRMBOT_PORT": "70000",
                "CRMBOT_TIMEZONE": "Mars/Olympus",
                "CRMBOT_DATABASE_URL": "mysql://x",
                "CRMBOT_DATA_DIR": str(tmp_path),
            }
        )
    text = str(err.value)
    assert "port" in text and "timezone" in text and "database_url" in text


def _toml(tmp_path: Path, key: str) -> Path:
    path = tmp_path / "crmbot.toml"
    path.write_text(
        f"""
[[accounts]]
kind = "wecom.app"
name = "销售助手"
callback_token = "0123456789abcdefXYZ"
[accounts.config]
corp_id = "ww0123456789abcdef"
agent_id = 1000002
[accounts.secrets]
secret = "env:TEST_WECOM_SECRET"
token = "QDG6eK"
encoding_aes_key = "{key}"
""",
        encoding="utf-8",
    )
    return path


async def test_configured_account_is_validated_and_stored(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_WECOM_SECRET", "s3cr3t")
    settings = load_settings(
        env={
            "CRMBOT_DATABASE_URL": sqlite_url,
            "CRMBOT_DATA_DIR": str(tmp_path),
            "CRMBOT_SECRET_KEY": "k" * 40,
        },
        config_file=_toml(tmp_path, GOOD_KEY),
    )
    services = await build_services(settings)
    try:
        urls = await apply_configured_accounts(services)
        assert urls == [
            (
                "wecom.app",
                "销售助手",
                "http://127.0.0.1:8080/callbacks/wecom.app/0123456789abcdefXYZ",
            )
        ]
        async with services.db.reading() as s:
            row = (await s.scalars(select(ChannelAccount))).one()
        assert row.secrets["secret"] != "s3cr3t"  # sealed at rest
        assert services.secrets.open(row.secrets)["secret"] == "s3cr3t"
    finally:
        await services.close()


def test_wrong_encoding_aes_key_stops_the_start_with_a_clear_message(
    tmp_path: Path, sqlite_url: str
) -> None:
    config = _toml(tmp_path, "tooshort")
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "--config", str(config), "run"],
        env={
            "PATH": "/usr/bin:/bin",
            "CRMBOT_DATABASE_URL": sqlite_url,
            "CRMBOT_DATA_DIR": str(tmp_path),
            "TEST_WECOM_SECRET": "x",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "encoding_aes_key must be 43" in result.stderr
    assert "销售助手" in result.stderr
