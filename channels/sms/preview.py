"""What the console and broadcasts show before sending: the text as the handset will
see it (【签名】, opt-out wording), its segment count and its cost, or why it cannot go.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from conversations.types import Purpose

from .optout_words import APPENDED_BY, opt_out_suffix, with_suffix
from .segments import Billing, SegmentCount, count_segments
from .templates import (
    TemplateProblem,
    VariableStyle,
    check_params,
    check_template,
    parse_templates,
)

_STYLE = {"sms.aliyun": VariableStyle.NAMED, "sms.tencent": VariableStyle.NUMBERED}


@dataclass(frozen=True)
class SmsPreview:
    text: str  # exactly what the recipient sees
    count: SegmentCount
    cost: float | None  # segments × price_per_segment, when the account names a price
    currency: str
    problems: tuple[TemplateProblem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def preview_sms(
    kind: str,
    config: Mapping[str, Any],
    *,
    purpose: Purpose,
    text: str = "",
    template_code: str | None = None,
    params: Mapping[str, Any] | None = None,
    domestic: bool = True,
) -> SmsPreview:
    """Render, validate and count one SMS for an account (pure; no gateway call)."""
    problems: list[TemplateProblem] = []
    body = text
    if template_code is not None:
        templates = parse_templates(config.get("templates"), _STYLE.get(kind, VariableStyle.NAMED))
        template = templates.get(template_code)
        if template is None:
            problems.append(TemplateProblem("sms.template.unknown", f"no template {template_code}"))
        else:
            problems += check_template(template, kind) + check_params(template, params or {}, kind)
            body = template.render({k: str(v) for k, v in (params or {}).items()})
    elif kind in _STYLE and not config.get("free_text_template"):
        problems.append(
            TemplateProblem("sms.template.required", f"{kind} sends approved templates only")
        )
    if purpose == Purpose.MARKETING and APPENDED_BY.get(kind) in ("gateway", "crmbot"):
        body = with_suffix(body, opt_out_suffix(kind, config))
    china = kind in _STYLE and domestic
    sign = str(config.get("sign_name", ""))
    shown = f"【{sign}】{body}" if china and sign else body
    count = count_segments(shown, Billing.CHINA if china else Billing.GSM)
    price = config.get("price_per_segment")
    cost = None if not isinstance(price, int | float) else round(count.segments * float(price), 4)
    return SmsPreview(shown, count, cost, str(config.get("currency", "CNY")), tuple(problems))
