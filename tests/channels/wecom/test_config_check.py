"""Account settings are checked before saving, every problem at once."""

from __future__ import annotations

import json

from channels.wecom.config_check import check_account

GOOD = {
    "secret": "s3cr3t",
    "token": "QDG6eK",
    "encoding_aes_key": "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
}


def test_complete_app_account_passes() -> None:
    assert (
        check_account("wecom.app", {"corp_id": "ww5823bf96d3bd56c7", "agent_id": 1000002}, GOOD)
        == []
    )


def test_every_problem_is_listed() -> None:
    problems = check_account(
        "wecom.kf", {"corp_id": "corp"}, {"secret": "x", "token": "bad token!"}
    )
    text = "\n".join(problems)
    assert "open_kfid" in text and "ww" in text and "Token" in text and "EncodingAESKey" in text


def test_archive_needs_sdk_path_and_pem_keys() -> None:
    problems = check_account(
        "wecom.archive",
        {"corp_id": "ww5823bf96d3bd56c7"},
        {"secret": "x", "private_keys": json.dumps({"v1": "nope"})},
    )
    assert any("finance_sdk_path" in p for p in problems)
    assert any("private_keys" in p for p in problems)


def test_contact_monthly_cap_range() -> None:
    problems = check_account(
        "wecom.contact", {"corp_id": "ww5823bf96d3bd56c7", "group_send_monthly_cap": 40}, GOOD
    )
    assert problems == ["group_send_monthly_cap 应为 1–31 (monthly cap must be 1–31)"]
