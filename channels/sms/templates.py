"""Approved SMS templates (短信模板) modelled per account, validated before any send.

Chinese gateways only send templates their console approved, each with named (Aliyun
`${code}`) or numbered (Tencent `{1}`) variables. The account row lists them:

    "templates": [
      {"code": "SMS_154950909", "kind": "notification", "text": "您的订单${order}已发货"},
      {"code": "1110", "kind": "marketing", "text": "双十一全场五折，拒收请回复R"}
    ]

Problems are found here, before scheduling, so a marketer sees "营销模板不能含变量"
instead of a gateway failure after the broadcast started.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .optout_words import DEFAULT_SUFFIX

_ALIYUN_VAR = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
_TENCENT_VAR = re.compile(r"\{(\d+)\}")
_URL = re.compile(r"https?://|www\.", re.IGNORECASE)


class TemplateKind(enum.StrEnum):
    VERIFICATION = "verification"  # 验证码
    NOTIFICATION = "notification"  # 通知
    MARKETING = "marketing"  # 推广


class VariableStyle(enum.StrEnum):
    NAMED = "named"  # Aliyun ${name}
    NUMBERED = "numbered"  # Tencent {1}, sent as an ordered list


@dataclass(frozen=True)
class TemplateProblem:
    """A reason a send cannot go out; `key` is the console's translation key."""

    key: str
    message: str


@dataclass(frozen=True)
class SmsTemplate:
    code: str
    kind: TemplateKind
    text: str
    style: VariableStyle
    approved: bool = True
    name: str = ""

    @property
    def variables(self) -> tuple[str, ...]:
        pattern = _ALIYUN_VAR if self.style == VariableStyle.NAMED else _TENCENT_VAR
        seen: dict[str, None] = {}
        for match in pattern.finditer(self.text):
            seen.setdefault(match.group(1), None)
        names = tuple(seen)
        if self.style == VariableStyle.NUMBERED:
            return tuple(sorted(names, key=int))
        return names

    def render(self, params: Mapping[str, str]) -> str:
        """The text as the handset shows it (without 【签名】)."""
        pattern = _ALIYUN_VAR if self.style == VariableStyle.NAMED else _TENCENT_VAR
        return pattern.sub(lambda m: params.get(m.group(1), m.group(0)), self.text)


class TemplateError(ValueError):
    def __init__(self, problems: Sequence[TemplateProblem]) -> None:
        super().__init__("; ".join(p.message for p in problems))
        self.problems = tuple(problems)


def parse_templates(raw: Any, style: VariableStyle) -> dict[str, SmsTemplate]:
    """Read the account's `templates` list; raises ValueError naming the bad entry."""
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise ValueError("templates must be a list")
    out: dict[str, SmsTemplate] = {}
    for i, entry in enumerate(raw):
        if not isinstance(entry, Mapping) or not entry.get("code") or "text" not in entry:
            raise ValueError(f"templates[{i}] needs a code and a text")
        try:
            kind = TemplateKind(entry.get("kind", "notification"))
        except ValueError:
            raise ValueError(f"templates[{i}].kind must be one of {list(TemplateKind)}") from None
        code = str(entry["code"])
        out[code] = SmsTemplate(
            code=code,
            kind=kind,
            text=str(entry["text"]),
            style=style,
            approved=bool(entry.get("approved", True)),
            name=str(entry.get("name", "")),
        )
    return out


def check_template(template: SmsTemplate, kind: str) -> list[TemplateProblem]:
    """Problems with the template itself, whatever the parameters."""
    problems: list[TemplateProblem] = []
    if not template.approved:
        problems.append(
            TemplateProblem(
                "sms.template.unapproved", f"template {template.code} is not approved yet"
            )
        )
    if "【" in template.text or "】" in template.text:
        problems.append(
            TemplateProblem(
                "sms.template.brackets", "【】 are reserved for the signature (签名) in templates"
            )
        )
    if template.kind == TemplateKind.MARKETING:
        if kind == "sms.aliyun" and template.variables:
            problems.append(
                TemplateProblem(
                    "sms.template.marketing_variables",
                    "Aliyun marketing (推广) templates cannot contain variables: "
                    "personalised marketing texts are not possible on Aliyun",
                )
            )
        suffix = DEFAULT_SUFFIX["sms.tencent"]
        if kind == "sms.tencent" and not template.text.rstrip().endswith(suffix):
            problems.append(
                TemplateProblem(
                    "sms.template.marketing_suffix",
                    f"Tencent marketing templates must end with {suffix}",
                )
            )
    return problems


def check_params(
    template: SmsTemplate, params: Mapping[str, Any], kind: str
) -> list[TemplateProblem]:
    """Problems with these parameter values for this template."""
    problems: list[TemplateProblem] = []
    wanted = set(template.variables)
    given = set(params)
    for name in sorted(wanted - given, key=_natural):
        problems.append(
            TemplateProblem("sms.template.missing_param", f"parameter {name!r} is missing")
        )
    for name in sorted(given - wanted, key=_natural):
        problems.append(
            TemplateProblem(
                "sms.template.unknown_param",
                f"template {template.code} has no parameter {name!r}",
            )
        )
    for name in sorted(wanted & given, key=_natural):
        value = params[name]
        if not isinstance(value, str):
            # Aliyun answers isv.INVALID_JSON_PARAM for numbers; Tencent wants strings too
            problems.append(
                TemplateProblem(
                    "sms.template.param_type", f"parameter {name!r} must be text, not a number"
                )
            )
        elif not value.strip():
            problems.append(
                TemplateProblem("sms.template.empty_param", f"parameter {name!r} is empty")
            )
        elif "【" in value or "】" in value:
            problems.append(
                TemplateProblem(
                    "sms.template.brackets", f"parameter {name!r} contains 【】 (signature marks)"
                )
            )
        elif kind == "sms.aliyun" and _URL.search(value):
            problems.append(
                TemplateProblem(
                    "sms.template.param_url",
                    f"parameter {name!r} holds a link; Aliyun refuses links in variables "
                    "(isv.PARAM_NOT_SUPPORT_URL)",
                )
            )
    return problems


def _natural(name: str) -> tuple[int, str]:
    return (int(name), "") if name.isdigit() else (0, name)
