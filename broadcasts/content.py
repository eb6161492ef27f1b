"""Per-recipient content: variables ({customer_name}, {salesperson}, …) and tracked links."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from .policy import CustomerView

VARIABLES = ("customer_name", "salesperson", "phone", "email")
_VARIABLE = re.compile(r"\{([a-z_]+)\}")
# stops at whitespace, quotes, angle brackets and Chinese punctuation that ends a sentence
URL = re.compile(r"https?://[^\s<>\"'，。；！？）]+")


def variables_of(customer: CustomerView) -> dict[str, str]:
    return {
        "customer_name": customer.display_name or "",
        "salesperson": customer.owner_name or "",
        "phone": customer.phone or "",
        "email": customer.email or "",
    }


def unknown_variables(text: str) -> list[str]:
    """Variables the marketer typed that we cannot fill (shown before scheduling)."""
    return sorted({m.group(1) for m in _VARIABLE.finditer(text)} - set(VARIABLES))


def fill(text: str, values: Mapping[str, str]) -> str:
    """Replace known {variables}; anything else is left as typed."""
    return _VARIABLE.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def urls_in(variant: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    for key in ("text", "html", "url"):
        found.extend(URL.findall(str(variant.get(key, ""))))
    return list(dict.fromkeys(found))


def track_links(text: str, link_for: Callable[[str], str | None]) -> str:
    """Rewrite each URL that has a tracked link to its redirect."""

    def swap(match: re.Match[str]) -> str:
        return link_for(match.group(0)) or match.group(0)

    return URL.sub(swap, text)


def render_variant(
    variant: Mapping[str, Any],
    customer: CustomerView,
    link_for: Callable[[str], str | None] | None = None,
) -> dict[str, Any]:
    """The variant with variables filled and links tracked, ready for the policy."""
    values = variables_of(customer)
    out = dict(variant)
    for key in ("text", "subject", "html", "title", "description"):
        if key in out and isinstance(out[key], str):
            out[key] = fill(out[key], values)
            if link_for is not None and key in ("text", "html"):
                out[key] = track_links(out[key], link_for)
    if link_for is not None and isinstance(out.get("url"), str):
        out["url"] = link_for(out["url"]) or out["url"]
    if "html" in out:
        out["html_rendered"] = out["html"]
    if "params" in out and isinstance(out["params"], Mapping):
        out["params"] = {k: fill(str(v), values) for k, v in out["params"].items()}
    return out
