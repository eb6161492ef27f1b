"""One-click unsubscribe for marketing mail (RFC 2369 List-Unsubscribe, RFC 8058).

The URL carries a signed token naming the account and the recipient, so the POST needs
no cookie or login (RFC 8058 §3.2). A GET only shows a confirmation page: link
prefetchers and virus scanners must not unsubscribe anyone. Both paths land on the
shared do-not-contact list (conversations.consent), like SMS opt-outs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import logging
from dataclasses import dataclass
from urllib.parse import quote

from aiohttp import web

from conversations.consent import opt_out
from conversations.db import Database

log = logging.getLogger(__name__)

PATH = "/email/unsubscribe"
_KEY_LABEL = b"crmbot.email.unsubscribe.v1"


def derive_key(secret_key: str) -> bytes:
    """The unsubscribe signing key, derived from the installation's secret_key."""
    return hmac.new(secret_key.encode(), _KEY_LABEL, hashlib.sha256).digest()


@dataclass(frozen=True)
class UnsubscribeRequest:
    account_id: int
    address: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_token(key: bytes, account_id: int, address: str) -> str:
    body = f"{account_id}:{address.lower()}".encode()
    sig = hmac.new(key, body, hashlib.sha256).digest()[:16]
    return f"{_b64(body)}.{_b64(sig)}"


def read_token(key: bytes, token: str) -> UnsubscribeRequest | None:
    """The request a token stands for, or None if it is forged or mangled."""
    try:
        body_b64, sig_b64 = token.split(".", 1)
        body, sig = _unb64(body_b64), _unb64(sig_b64)
    except (ValueError, TypeError):
        return None
    expected = hmac.new(key, body, hashlib.sha256).digest()[:16]
    if not hmac.compare_digest(sig, expected):
        return None
    try:
        account, address = body.decode().split(":", 1)
        return UnsubscribeRequest(int(account), address)
    except (UnicodeDecodeError, ValueError):
        return None


def list_unsubscribe_headers(
    key: bytes, account_id: int, recipient: str, base_url: str, mailto: str | None
) -> dict[str, str]:
    """List-Unsubscribe (https + mailto) and List-Unsubscribe-Post for one recipient."""
    token = make_token(key, account_id, recipient)
    links = [f"<{base_url.rstrip('/')}/{token}>"]
    if mailto:
        links.append(f"<mailto:{mailto}?subject={quote('unsubscribe ' + token)}>")
    return {
        "List-Unsubscribe": ", ".join(links),
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


_PAGE = """<!doctype html>
<html lang="zh"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{title}</title></head>
<body style="font-family:sans-serif;max-width:32em;margin:3em auto;padding:0 1em">
<h1 style="font-size:1.3em">{title}</h1>{body}</body></html>"""


def _page(title: str, body: str, status: int = 200) -> web.Response:
    return web.Response(
        text=_PAGE.format(title=title, body=body), status=status, content_type="text/html"
    )


def routes(db: Database, key: bytes, path: str = PATH) -> list[web.RouteDef]:
    """aiohttp routes to mount on the public app: GET confirm page, POST unsubscribe."""

    async def confirm(request: web.Request) -> web.Response:
        token = request.match_info["token"]
        found = read_token(key, token)
        if found is None:
            return _page(
                "链接无效 / Invalid link",
                "<p>这个退订链接无效。This unsubscribe link is not valid.</p>",
                404,
            )
        address = html.escape(found.address)
        return _page(
            "退订邮件 / Unsubscribe",
            f"<p>不再向 <b>{address}</b> 发送营销邮件？<br>Stop marketing email to <b>{address}</b>?</p>"
            f'<form method="post"><button type="submit">确认退订 / Unsubscribe</button></form>',
        )

    async def unsubscribe(request: web.Request) -> web.Response:
        token = request.match_info["token"]
        found = read_token(key, token)
        if found is None:
            return _page(
                "链接无效 / Invalid link",
                "<p>这个退订链接无效。This unsubscribe link is not valid.</p>",
                404,
            )
        form = await request.post()
        one_click = form.get("List-Unsubscribe") == "One-Click"
        source = "one_click" if one_click else "unsubscribe_page"
        async with db.transaction() as session:
            new = await opt_out(
                session,
                channel="email",
                address=found.address,
                source=source,
                evidence=(
                    f"account={found.account_id} via={source} ip={request.remote or ''} "
                    f"ua={request.headers.get('User-Agent', '')[:200]}"
                ),
            )
        log.info("email unsubscribe account=%s via=%s new=%s", found.account_id, source, new)
        return _page(
            "已退订 / Unsubscribed",
            "<p>已退订，您将不再收到营销邮件。You will no longer receive marketing email.</p>",
        )

    return [
        web.get(f"{path}/{{token}}", confirm),
        web.post(f"{path}/{{token}}", unsubscribe),
    ]
