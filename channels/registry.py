"""Typed registry of adapter kinds: kind string → factory and rules (no string dispatch)."""

from __future__ import annotations

from dataclasses import dataclass

from conversations.types import AccountRef, ChannelRules

from .base import AdapterFactory, ChannelAdapter, ChannelContext


@dataclass(frozen=True)
class AdapterSpec:
    kind: str
    factory: AdapterFactory
    rules: ChannelRules
    label_zh: str
    label_en: str


class AdapterRegistry:
    def __init__(self) -> None:
        self._specs: dict[str, AdapterSpec] = {}

    def register(self, spec: AdapterSpec) -> None:
        if spec.kind in self._specs:
            raise ValueError(f"adapter kind registered twice: {spec.kind}")
        self._specs[spec.kind] = spec

    def spec(self, kind: str) -> AdapterSpec:
        try:
            return self._specs[kind]
        except KeyError:
            raise KeyError(f"no adapter registered for kind {kind!r}") from None

    def kinds(self) -> list[str]:
        return sorted(self._specs)

    def rules(self, kind: str) -> ChannelRules:
        spec = self._specs.get(kind)
        return spec.rules if spec else ChannelRules()

    def build(self, account: AccountRef, ctx: ChannelContext) -> ChannelAdapter:
        return self.spec(account.kind).factory(account, ctx)


def default_registry() -> AdapterRegistry:
    """Every adapter shipped with crmbot. Each channel package exposes `SPECS`."""
    from channels.email.adapter import SPECS as EMAIL
    from channels.sms import SPECS as SMS
    from channels.wecom.adapter import SPECS as WECOM

    registry = AdapterRegistry()
    for spec in [*WECOM, *SMS, *EMAIL]:
        registry.register(spec)
    return registry
