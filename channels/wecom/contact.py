"""客户联系 (customer contact) account adapter: change_external_contact /
change_external_tag / change_external_chat callbacks in; welcome messages and group-send
tasks out (the only automatic sends toward customers besides 微信客服, issue 11).

The events are stored by the callback route and handled by channels.wecom.handlers.
"""

from __future__ import annotations

from typing import ClassVar

from channels.base import ChannelContext, ConnectionCheck
from conversations.types import AccountRef, ChannelRules, Outbound, SendResult

from . import group_send
from .account import build_api, build_crypto
from .callback import CallbackEndpoint
from .codes import service as codes
from .media import download_via_api
from .outbound import check_api, failed
from .tags import MARK_TAG_OPERATION, mark_from_outbox
from .welcome import send_welcome


class WeComContactAdapter(CallbackEndpoint):
    kind: ClassVar[str] = "wecom.contact"
    # no free-form replies exist on this path: welcome once, group sends need confirmation
    rules: ClassVar[ChannelRules] = ChannelRules(auto_reply=False, marketing=True)

    def __init__(self, account: AccountRef, ctx: ChannelContext) -> None:
        self.account = account
        self.ctx = ctx
        self.crypto = build_crypto(account)  # validates the settings first
        self.corp_id = str(account.config["corp_id"])
        self.api = build_api(account, ctx)

    async def send(self, message: Outbound) -> SendResult:
        operation = message.payload.get("operation")
        if operation == "welcome":
            return await send_welcome(self.api, message)
        if operation == group_send.OPERATION:
            return await group_send.create_on_wecom(self.api, message)
        if operation == MARK_TAG_OPERATION:
            return await mark_from_outbox(self.api, message)
        if operation == codes.OPERATION:  # a channel QR code's rota moved on
            return await codes.update_on_wecom(self.api, message)
        return failed(
            "unsupported_operation",
            "客户联系账号只能发送欢迎语和群发任务 (this account sends welcome messages and "
            "group-send tasks only)",
        )

    async def reconcile(self, message: Outbound) -> SendResult | None:
        if message.payload.get("operation") == group_send.OPERATION:
            return await group_send.find_on_wecom(self.api, message)
        return await self.send(message)

    async def download_media(self, ref: str) -> tuple[bytes, str]:
        """media/get for a received message's MediaId (media.MediaSource)."""
        return await download_via_api(self.api, ref)

    async def check_connection(self) -> ConnectionCheck:
        return await check_api(
            self.api, ("GET", "/cgi-bin/externalcontact/get_follow_user_list", None)
        )
