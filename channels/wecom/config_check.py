"""Checks an account's settings before it is saved (console form, CLI): every problem
in one list, in the operator's words, Chinese first."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from .crypto import IllegalAesKey, aes_key

_CORP = re.compile(r"^w[wx][0-9a-zA-Z]{6,30}$")
_TOKEN = re.compile(r"^[0-9a-zA-Z]{1,32}$")

REQUIRED: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # kind: (config keys, secret keys)
    "wecom.app": (("corp_id", "agent_id"), ("secret", "token", "encoding_aes_key")),
    "wecom.kf": (("corp_id", "open_kfid"), ("secret", "token", "encoding_aes_key")),
    "wecom.contact": (("corp_id",), ("secret", "token", "encoding_aes_key")),
    "wecom.archive": (("corp_id",), ("secret", "private_keys")),
}


def check_account(kind: str, config: Mapping[str, Any], secrets: Mapping[str, str]) -> list[str]:
    """Problems with a WeCom account's settings; empty when it can be saved."""
    if kind not in REQUIRED:
        return [f"未知的账号类型 (unknown account kind): {kind}"]
    problems: list[str] = []
    config_keys, secret_keys = REQUIRED[kind]
    for key in config_keys:
        if not config.get(key):
            problems.append(f"缺少 {key} (missing {key})")
    for key in secret_keys:
        if not secrets.get(key):
            problems.append(f"缺少 {key} (missing {key})")
    corp = str(config.get("corp_id") or "")
    if corp and not _CORP.match(corp):
        problems.append("企业 ID 格式不对，应以 ww 开头 (corp ID should look like ww…)")
    if kind == "wecom.app" and config.get("agent_id") and not str(config["agent_id"]).isdigit():
        problems.append("AgentId 应为数字 (AgentId must be a number)")
    token = secrets.get("token")
    if token and not _TOKEN.match(token):
        problems.append("Token 最多 32 位英文或数字 (Token: up to 32 letters or digits)")
    aes = secrets.get("encoding_aes_key")
    if aes:
        try:
            aes_key(aes)
        except IllegalAesKey:
            problems.append(
                "EncodingAESKey 应为 43 位英文或数字 (EncodingAESKey: 43 letters or digits)"
            )
    if bool(secrets.get("token")) != bool(secrets.get("encoding_aes_key")):
        problems.append(
            "Token 与 EncodingAESKey 需同时填写 (fill in both Token and EncodingAESKey)"
        )
    if kind == "wecom.archive":
        problems.extend(_archive(config, secrets))
    if kind == "wecom.contact":
        problems.extend(_contact(config))
    limit = config.get("api_rate_limit")
    if limit is not None and (
        not isinstance(limit, Mapping)
        or int(limit.get("calls", 0)) < 1
        or float(limit.get("seconds", 0)) <= 0
    ):
        problems.append(
            "api_rate_limit 需为 {calls, seconds} (api_rate_limit needs calls and seconds)"
        )
    return problems


def _archive(config: Mapping[str, Any], secrets: Mapping[str, str]) -> list[str]:
    problems = []
    if not (
        config.get("sandbox")
        or config.get("finance_sdk") == "simulator"
        or config.get("finance_sdk_path")
    ):
        problems.append(
            "请填写 finance_sdk_path：libWeWorkFinanceSdk_C.so 的路径（从企业微信下载） "
            "(set finance_sdk_path to the Finance SDK library downloaded from WeCom)"
        )
    raw = secrets.get("private_keys")
    if raw:
        try:
            keys = json.loads(raw)
            if (
                not isinstance(keys, dict)
                or not keys
                or not all(str(v).startswith("-----BEGIN") for v in keys.values())
            ):
                raise ValueError
            [int(k) for k in keys]
        except ValueError:
            problems.append(
                'private_keys 应为 {"版本号": "PEM 私钥"} (private_keys: {"<key version>": "<PEM private key>"})'
            )
    return problems


def _contact(config: Mapping[str, Any]) -> list[str]:
    problems = []
    cap = config.get("group_send_monthly_cap")
    if cap is not None and not (isinstance(cap, int) and 1 <= cap <= 31):
        problems.append("group_send_monthly_cap 应为 1–31 (monthly cap must be 1–31)")
    welcome = config.get("welcome") or {}
    texts = [welcome.get("default") or "", *(welcome.get("by_staff") or {}).values()]
    if any(len(str(t).encode()) > 4000 for t in texts):
        problems.append("欢迎语最多 4000 字节 (welcome text: at most 4000 bytes)")
    return problems
