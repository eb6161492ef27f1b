"""SMS channel: Aliyun, Tencent Cloud and Twilio gateways behind one adapter contract.

Shared pieces: E.164 numbers (`phone`), segment counting (`segments`), approved templates
(`templates`), opt-out wording (`optout_words`), the marketing window (`window`), the
console's preview (`preview`) and the send flow every gateway inherits (`gateway`).
"""

from __future__ import annotations

from channels.registry import AdapterSpec


def specs() -> list[AdapterSpec]:
    """Every SMS gateway's adapter spec, for `channels.registry.default_registry`."""
    from channels.sms.aliyun.adapter import SPECS as ALIYUN
    from channels.sms.tencent.adapter import SPECS as TENCENT
    from channels.sms.twilio.adapter import SPECS as TWILIO

    return [*ALIYUN, *TENCENT, *TWILIO]


def __getattr__(name: str) -> list[AdapterSpec]:
    # `SPECS` is built lazily: the gateway modules import this package's shared modules
    if name == "SPECS":
        return specs()
    raise AttributeError(name)
