"""Reply templates: variables such as {customer_name}, and content per channel
(plain text on SMS, rich/news on WeCom, HTML on email) stored as the outbox payload."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from conversations.types import MessageKind

VARIABLES = ("customer_name", "salesperson_name", "account_name", "date", "time")
# Only known names are substituted: str.format on an editor's template could reach
# attributes ("{0.__class__}"), so templates never go through it.
_PLACEHOLDER = re.compile(r"\{(" + "|".join(VARIABLES) + r")\}")


@dataclass(frozen=True)
class ChannelContent:
    kind: MessageKind
    text: str
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ReplyVariant:
    """One reply: default text plus optional content per channel kind or family."""

    text: str
    channels: Mapping[str, ChannelContent] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any) -> ReplyVariant:
        if isinstance(data, str):
            return cls(text=data)
        channels: dict[str, ChannelContent] = {}
        for key, spec in dict(data.get("channels") or {}).items():
            channels[str(key)] = ChannelContent(
                kind=MessageKind(spec.get("kind", "text")),
                text=str(spec.get("text", data.get("text", ""))),
                payload=dict(spec.get("payload") or {}),
            )
        return cls(text=str(data.get("text", "")), channels=channels)

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "channels": {
                key: {"kind": c.kind.value, "text": c.text, "payload": dict(c.payload)}
                for key, c in self.channels.items()
            },
        }

    def content_for(self, channel_kind: str) -> ChannelContent:
        """Most specific first: "wecom.kf", then the family "wecom", then plain text."""
        found = self.channels.get(channel_kind) or self.channels.get(channel_kind.split(".")[0])
        return found if found is not None else ChannelContent(MessageKind.TEXT, self.text)

    def variables(self) -> frozenset[str]:
        names = set(_PLACEHOLDER.findall(self.text))
        for content in self.channels.values():
            names.update(_PLACEHOLDER.findall(content.text))
            names.update(_PLACEHOLDER.findall(repr(dict(content.payload))))
        return frozenset(names)


def render_text(template: str, values: Mapping[str, str]) -> str:
    """Fill known placeholders; unknown ones stay visible so an editor notices."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def _render_value(value: Any, values: Mapping[str, str], escape: bool) -> Any:
    if isinstance(value, str):
        safe = {k: html.escape(v) for k, v in values.items()} if escape else values
        return render_text(value, safe)
    if isinstance(value, list):
        return [_render_value(v, values, escape) for v in value]
    if isinstance(value, dict):
        # an "html" body gets escaped values: a customer named "<b>" stays text
        return {k: _render_value(v, values, escape or k == "html") for k, v in value.items()}
    return value


def render(content: ChannelContent, values: Mapping[str, str]) -> ChannelContent:
    """The content with every placeholder filled, payload included."""
    return ChannelContent(
        kind=content.kind,
        text=render_text(content.text, values),
        payload=_render_value(dict(content.payload), values, False),
    )
