"""Settings of a `wecom.app` account, checked all at once with operator-readable messages.

config:  corp_id (ww… / wx…), agent_id (number), api_base (optional, for simulators)
secrets: secret (the app's Secret), token (≤ 32 letters/digits), encoding_aes_key (43 chars)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .crypto import IllegalAesKey, aes_key


class WeComConfigError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def check_app_config(config: Mapping[str, Any], secrets: Mapping[str, str]) -> list[str]:
    problems: list[str] = []
    if not str(config.get("corp_id") or "").strip():
        problems.append("corp_id is missing (企业ID, 我的企业 → 企业信息)")
    try:
        int(config.get("agent_id", ""))
    except (TypeError, ValueError):
        problems.append("agent_id must be the app's AgentId, a number (应用管理 → 应用 → AgentId)")
    if not secrets.get("secret"):
        problems.append("secret is missing (the app's Secret)")
    token = secrets.get("token", "")
    if not re.fullmatch(r"[A-Za-z0-9]{1,32}", token):
        problems.append("token must be 1-32 letters or digits (接收消息 → API接收 → Token)")
    key = secrets.get("encoding_aes_key", "")
    try:
        aes_key(key)
    except IllegalAesKey:
        problems.append(
            f"encoding_aes_key must be 43 letters/digits (got {len(key)} characters): "
            "copy EncodingAESKey from 接收消息 → API接收"
        )
    return problems


def require_app_config(config: Mapping[str, Any], secrets: Mapping[str, str]) -> None:
    problems = check_app_config(config, secrets)
    if problems:
        raise WeComConfigError(problems)
