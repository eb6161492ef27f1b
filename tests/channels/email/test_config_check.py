"""Account settings validation."""

from __future__ import annotations

import pytest

from channels.email.config_check import mailbox_config
from channels.email.errors import EmailConfigError
from conversations.types import AccountRef


def account(config: dict[str, object], secrets: dict[str, str] | None = None) -> AccountRef:
    return AccountRef(id=1, kind="email", name="x", config=config, secrets=secrets or {})


def test_every_problem_is_listed_at_once() -> None:
    with pytest.raises(EmailConfigError) as err:
        mailbox_config(account({"address": "not-an-address", "imap_security": "tls?"}))

    text = str(err.value)
    for expected in ("address", "imap_host", "smtp_host", "imap_security", "secrets.imap_password"):
        assert expected in text


def test_defaults_follow_the_security_mode() -> None:
    cfg = mailbox_config(
        account(
            {
                "address": "Sales@Example.com",
                "imap_host": "imap.exmail.qq.com",
                "smtp_host": "smtp.exmail.qq.com",
                "smtp_security": "starttls",
            },
            {"password": "auth-code"},
        )
    )

    assert (cfg.imap.port, cfg.smtp.port) == (993, 587)
    assert cfg.address == "sales@example.com" and cfg.imap.username == "sales@example.com"
    assert cfg.folders == ("INBOX",)


def test_idle_renewal_may_not_exceed_25_minutes() -> None:
    with pytest.raises(EmailConfigError, match="idle_renew_seconds"):
        mailbox_config(
            account(
                {
                    "address": "a@b.cn",
                    "imap_host": "h",
                    "smtp_host": "h",
                    "idle_renew_seconds": 3600,
                },
                {"password": "p"},
            )
        )
