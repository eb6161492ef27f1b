"""Opt-out (退订) and re-subscribe keywords, and the pipeline handler that honours them.

A reply opts out only when the **whole message** is a keyword, after trimming and
full-width → half-width normalisation (NFKC): "ＴＤ" and " td。" opt out, "T恤多少钱"
is a question. START/UNSTOP lift the suppression. Suppression is per (channel,
address, scope), where scope is the sender the customer refused (an SMS 【签名】), so
broadcasts must derive the same scope with `consent_target` (DESIGN.md invariant 7).

Account config may override the lists and the confirmation:

    "opt_out": {"keywords": ["T", "TD", "退订"], "resubscribe_keywords": ["START"],
                "confirm": true, "confirmation_text": "您已退订", "confirmation_template": "SMS_1",
                "resubscribe_text": "您已重新订阅"}
"""

from __future__ import annotations

import enum
import logging
import string
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .actions import queue_outbound
from .consent import ANY_SCOPE, opt_in, opt_out
from .handlers import MessageContext
from .models import ChannelAccount, Identity
from .types import Direction, MessageKind, Purpose, SenderType

log = logging.getLogger(__name__)

# issue 12: T, TD, N, R are what Chinese gateways print (回T退订, 拒收请回复R);
# the English words are the CTIA / Twilio defaults
DEFAULT_OPT_OUT = (
    "T", "TD", "N", "R", "退订", "取消", "拒收",
    "STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE",
)  # fmt: skip
DEFAULT_RESUBSCRIBE = ("START", "UNSTOP")

_EDGE_PUNCTUATION = string.punctuation + "。，、！？；：“”‘’（）《》…～·\u3000 \t\r\n"


class KeywordAction(enum.StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"


def normalise_reply(text: str) -> str:
    """NFKC (ＴＤ → TD), trimmed of spaces and edge punctuation, upper-case."""
    return unicodedata.normalize("NFKC", text).strip(_EDGE_PUNCTUATION).upper()


def classify_reply(
    text: str,
    opt_out_words: Iterable[str] = DEFAULT_OPT_OUT,
    resubscribe_words: Iterable[str] = DEFAULT_RESUBSCRIBE,
) -> KeywordAction | None:
    """OPT_OUT / OPT_IN when the whole reply is a keyword, else None (never a substring)."""
    reply = normalise_reply(text)
    if not reply:
        return None
    if reply in {normalise_reply(w) for w in opt_out_words}:
        return KeywordAction.OPT_OUT
    if reply in {normalise_reply(w) for w in resubscribe_words}:
        return KeywordAction.OPT_IN
    return None


@dataclass(frozen=True)
class ConsentTarget:
    """Where a kind of account keeps its do-not-contact entries."""

    channel: str
    scope: str
    confirm_by_default: bool


# per account kind: which config key names the sender the customer refuses, and whether
# crmbot sends the confirmation (Twilio answers STOP itself and then blocks our sends)
_TARGETS: dict[str, tuple[str, tuple[str, ...], bool]] = {
    "sms.aliyun": ("sms", ("sign_name",), True),
    "sms.tencent": ("sms", ("sign_name",), True),
    "sms.twilio": ("sms", ("messaging_service_sid", "from_number"), False),
}


def consent_target(account: ChannelAccount) -> ConsentTarget | None:
    """The (channel, scope) an account's opt-outs are recorded under; None = no keywords."""
    return consent_target_of(account.kind, account.config or {})


def consent_target_of(kind: str, config: Mapping[str, Any]) -> ConsentTarget | None:
    """The same, from an account's kind and config (broadcasts check suppressions with it)."""
    entry = _TARGETS.get(kind)
    if entry is None:
        return None
    channel, scope_keys, confirm = entry
    scope = next((str(config[k]) for k in scope_keys if config.get(k)), ANY_SCOPE)
    return ConsentTarget(channel, scope, confirm)


def _words(config: Mapping[str, Any], key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    value = config.get(key)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return default


async def handle_opt_out(ctx: MessageContext) -> None:
    """Pipeline handler: a keyword reply suppresses (or lifts) the sender's number,
    queues ONE confirmation and claims the message so auto-reply stays quiet."""
    message = ctx.message
    if (
        message.direction != Direction.INBOUND.value
        or message.sender_type != SenderType.CUSTOMER.value
        or message.kind != MessageKind.TEXT.value
    ):
        return
    target = consent_target(ctx.account)
    if target is None:
        return
    settings: Mapping[str, Any] = (ctx.account.config or {}).get("opt_out") or {}
    action = classify_reply(
        message.text,
        _words(settings, "keywords", DEFAULT_OPT_OUT),
        _words(settings, "resubscribe_keywords", DEFAULT_RESUBSCRIBE),
    )
    if action is None:
        return
    identity = await ctx.session.get(Identity, ctx.conversation.identity_id)
    assert identity is not None
    address = identity.external_id
    record = opt_out if action == KeywordAction.OPT_OUT else opt_in
    changed = await record(
        ctx.session,
        channel=target.channel,
        address=address,
        scope=target.scope,
        source="reply",
        evidence=message.text,
        message_id=message.id,
    )
    ctx.claim("opt_out")
    ctx.notes.append(f"{action.value} scope={target.scope} changed={changed}")
    log.info(
        "consent %s account=%s message=%s changed=%s", action, ctx.account.id, message.id, changed
    )
    if not changed or not bool(settings.get("confirm", target.confirm_by_default)):
        return
    prefix = "confirmation" if action == KeywordAction.OPT_OUT else "resubscribe"
    default_text = (
        "您已成功退订，将不再收到此类短信。"
        if action == KeywordAction.OPT_OUT
        else "您已重新订阅。"
    )
    payload: dict[str, Any] = {}
    template = settings.get(f"{prefix}_template")
    if template:
        payload = {"template": str(template), "params": {}}
    await queue_outbound(
        ctx.session,
        ctx.conversation,
        text=str(settings.get(f"{prefix}_text") or default_text),
        purpose=Purpose.NOTIFICATION,  # transactional: never held by quiet hours or opt-out
        idempotency_key=f"{action.value}:{message.id}",
        payload=payload,
        sender_type=SenderType.BOT,
    )
