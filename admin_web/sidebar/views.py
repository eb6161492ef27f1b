"""The WeCom chat sidebar (聊天工具栏): a mobile page inside the WeCom client beside a
chat with a customer or a customer group.

Sign-in is WeCom OAuth (code → userid → the staff user whose `wecom_userid` it is),
kept under its own session key: a sidebar sign-in opens the sidebar only, never the
console (whose admins may need a TOTP code). A console session opens the sidebar too.
The page signs `wx.agentConfig` server-side, asks the JS bridge who the chat is with,
and reads and writes the customer card over JSON.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import aiohttp
import jinja2
from aiohttp import web
from aiohttp_session import get_session, new_session
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from admin_web.deps import DEPS_KEY
from admin_web.i18n import current_locale, gettext, negotiate, ngettext
from admin_web.policy import PUBLIC, STAFF, allow
from admin_web.security import USER_KEY, VIEWER_KEY, csrf_token_for
from autoreply.cache import EngineCache
from channels.wecom.errors import WeComApiError
from channels.wecom.jsapi import GroupChat, OAuthIdentity, SignedConfig, TicketKind
from conversations.access import AccessDenied, Role, Viewer
from conversations.actions import audit
from conversations.models import Customer, StaffUser
from conversations.notes import add_note
from tagging.dimensions import normalise_intent
from tagging.profiles import ensure_profile
from tagging.tags import TagError, Why, tag_customer, untag_customer

from .card import SidebarUser, customer_card, customer_for_external, sidebar_customer, tag_catalogue
from .materials import MaterialKind, library, save_material, visible_material

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
SESSION_KEY = "sidebar_uid"  # the sidebar's own sign-in (WeCom OAuth)
STATE_KEY = "sidebar_oauth_state"
MEDIA_TTL = 2.5 * 24 * 3600  # WeCom temporary media live 3 days
# the JS-SDK files the WeCom client loads the sidebar with (doc 90514 / 94325)
WECOM_SDK_SCRIPTS = (
    "https://res.wx.qq.com/open/js/jweixin-1.2.0.js",
    "https://open.work.weixin.qq.com/wwopen/js/jwxwork-1.0.0.js",
)
JS_API_LIST = (
    "getContext",
    "getCurExternalContact",
    "getCurExternalChat",
    "sendChatMessage",
)


class SidebarJsApi(Protocol):
    """What the sidebar needs of the WeCom app (channels.wecom.jsapi.JsApi)."""

    corp_id: str
    agent_id: int

    async def sign(self, kind: TicketKind, url: str) -> SignedConfig: ...

    def authorize_url(self, redirect_uri: str, state: str) -> str: ...

    async def identity_for_code(self, code: str) -> OAuthIdentity: ...

    async def group_chat(self, chat_id: str) -> GroupChat: ...

    async def upload_media(self, kind: str, data: bytes, filename: str, mime: str) -> str: ...


class FollowUpScheduler(Protocol):
    """Schedules a follow-up message to one customer (broadcasts.reminders)."""

    async def __call__(
        self,
        session: AsyncSession,
        *,
        customer_id: int,
        at_local: str,
        text: str,
        actor_id: int,
    ) -> int: ...


@dataclass
class SidebarServices:
    # the self-built app the sidebar page is registered on; None = not configured
    jsapi: Callable[[], Awaitable[SidebarJsApi | None]]
    faq: EngineCache | None = None
    follow_ups: FollowUpScheduler | None = None
    sdk_scripts: tuple[str, ...] = WECOM_SDK_SCRIPTS
    faq_suggestions: int = 3


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(HERE / "templates")),
        extensions=["jinja2.ext.i18n"],
        autoescape=jinja2.select_autoescape(["html"]),
    )
    env.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]  # added by the i18n extension
    return env


_ENV = _environment()


def _csp(scripts: tuple[str, ...]) -> str:
    hosts = " ".join(dict.fromkeys("/".join(s.split("/")[:3]) for s in scripts))
    return (
        "default-src 'self'; img-src 'self' data: https:; style-src 'self' 'unsafe-inline'; "
        f"script-src 'self' {hosts}".rstrip()
        + "; frame-ancestors 'none'"
    )


async def _signed_in(request: web.Request) -> StaffUser | None:
    session = await get_session(request)
    uid = session.get(SESSION_KEY)
    if not isinstance(uid, int):
        uid = session.get("uid")  # a console sign-in opens the sidebar too
    if not isinstance(uid, int):
        return None
    async with request.app[DEPS_KEY].db.reading() as s:
        user = await s.get(StaffUser, uid)
    return user if user is not None and user.active else None


async def _user(request: web.Request, handler: object) -> SidebarUser:
    """The signed-in salesperson, checked against the handler's declared roles."""
    staff = await _signed_in(request)
    if staff is None:
        raise web.HTTPUnauthorized(text="sign in through WeCom")
    viewer = Viewer(staff_id=staff.id, role=Role(staff.role), team_id=staff.team_id)
    # the console's middlewares skip /sidebar/ (its own sign-in): set what they would
    request[USER_KEY] = staff
    request[VIEWER_KEY] = viewer
    current_locale.set(negotiate(staff.locale, request.headers.get("Accept-Language")))
    roles = getattr(handler, "__crmbot_roles__", STAFF)
    if viewer.role not in roles:
        raise web.HTTPForbidden(text=gettext("Your role may not use the sidebar."))
    return SidebarUser(viewer, staff.wecom_userid)


async def _body(request: web.Request) -> Mapping[str, Any]:
    if request.content_type == "application/json":
        try:
            data = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text="invalid JSON") from None
        if not isinstance(data, dict):
            raise web.HTTPBadRequest(text="a JSON object is expected")
        return data
    return dict(await request.post())


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        raise web.HTTPBadRequest(text="a number is expected") from None


def _own_sidebar_url(url: str, request: web.Request) -> bool:
    """Only our own sidebar pages get signed: the endpoint is no signing oracle."""
    parts = urlsplit(url)
    public = urlsplit(request.app[DEPS_KEY].public_url)
    return (
        parts.scheme in ("https", "http")
        and parts.netloc in (public.netloc, request.host)
        and parts.path.startswith("/sidebar/")
    )


def _json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def build_routes(services: SidebarServices) -> web.RouteTableDef:
    """The sidebar's page, sign-in and JSON API (mounted through ConsoleDeps.extra_routes)."""
    routes = web.RouteTableDef()

    async def jsapi_or_503() -> SidebarJsApi:
        jsapi = await services.jsapi()
        if jsapi is None:
            raise web.HTTPServiceUnavailable(
                text=gettext("No WeCom self-built app is configured for the sidebar.")
            )
        return jsapi

    async def visible(s: AsyncSession, user: SidebarUser, customer_id: int) -> Customer:
        try:
            return await sidebar_customer(s, user, customer_id)
        except LookupError:
            raise web.HTTPNotFound(text=gettext("No such customer.")) from None
        except AccessDenied:
            raise web.HTTPForbidden(text=gettext("You may not see this customer.")) from None

    @routes.get("/sidebar/")
    @allow(STAFF)
    async def page(request: web.Request) -> web.StreamResponse:
        staff = await _signed_in(request)
        if staff is None:
            jsapi = await jsapi_or_503()
            session = await get_session(request)
            state = secrets.token_urlsafe(16)
            session[STATE_KEY] = state
            deps = request.app[DEPS_KEY]
            redirect = f"{deps.public_url.rstrip('/')}/sidebar/oauth?next={quote(request.path_qs)}"
            raise web.HTTPFound(jsapi.authorize_url(redirect, state))
        await _user(request, page)
        session = await get_session(request)
        html = _ENV.get_template("sidebar.html").render(
            csrf=csrf_token_for(session),
            scripts=services.sdk_scripts,
            user=staff,
            lang=current_locale.get(),
        )
        response = web.Response(text=html, content_type="text/html")
        response.headers["Content-Security-Policy"] = _csp(services.sdk_scripts)
        return response

    @routes.get("/sidebar/oauth")
    @allow(PUBLIC)
    async def oauth(request: web.Request) -> web.StreamResponse:
        """WeCom's redirect with ?code=: the member's userid becomes a sidebar sign-in."""
        session = await get_session(request)
        expected = session.get(STATE_KEY)
        code = request.query.get("code", "")
        if not code or not isinstance(expected, str) or request.query.get("state") != expected:
            raise web.HTTPBadRequest(
                text=gettext("This sign-in link is not valid; reopen the sidebar.")
            )
        jsapi = await jsapi_or_503()
        try:
            identity = await jsapi.identity_for_code(code)
        except WeComApiError as exc:
            log.info("sidebar oauth refused: %s", exc)
            raise web.HTTPBadRequest(
                text=gettext("WeCom did not accept the sign-in; reopen the sidebar.")
            ) from None
        deps = request.app[DEPS_KEY]
        async with deps.db.transaction() as s:
            staff = (
                list(
                    await s.scalars(
                        select(StaffUser).where(
                            StaffUser.wecom_userid == identity.userid, StaffUser.active.is_(True)
                        )
                    )
                )
                if identity.userid
                else []
            )
            ok = len(staff) == 1
            await audit(
                s,
                "sidebar_login" if ok else "sidebar_login_failed",
                actor_id=staff[0].id if ok else None,
                detail={"wecom_userid": identity.userid or "", "matches": len(staff)},
                ip=request.remote,
            )
        if not ok:
            raise web.HTTPForbidden(
                text=gettext("Your WeCom account is not linked to a crmbot user; ask an admin.")
            )
        fresh = await new_session(request)  # a fresh session id: no fixation
        fresh[SESSION_KEY] = staff[0].id
        target = request.query.get("next", "/sidebar/")
        if not target.startswith("/sidebar/") or target.startswith("//"):
            target = "/sidebar/"
        raise web.HTTPFound(target)

    @routes.get("/sidebar/api/config")
    @allow(STAFF)
    async def config(request: web.Request) -> web.Response:
        """wx.config and wx.agentConfig arguments signed for the page's URL."""
        await _user(request, config)
        url = request.query.get("url", "")
        if not _own_sidebar_url(url, request):
            return _json_error(400, "url must be a sidebar page of this site")
        jsapi = await jsapi_or_503()
        try:
            corp = await jsapi.sign("corp", url)
            agent = await jsapi.sign("agent", url)
        except (WeComApiError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("sidebar could not sign the JS-SDK config: %s", exc)
            return _json_error(502, gettext("WeCom did not answer; try again."))
        return web.json_response(
            {
                "config": {**corp.as_wx_config(), "beta": True, "jsApiList": list(JS_API_LIST)},
                "agentConfig": {**agent.as_agent_config(), "jsApiList": list(JS_API_LIST)},
            }
        )

    @routes.get("/sidebar/api/contact")
    @allow(STAFF)
    async def contact(request: web.Request) -> web.Response:
        """The customer card for the chat's external_userid (getCurExternalContact)."""
        user = await _user(request, contact)
        external = request.query.get("external_userid", "")
        deps = request.app[DEPS_KEY]
        async with deps.db.reading() as s:
            customer_id = await customer_for_external(s, external) if external else None
            if customer_id is None:
                return _json_error(404, gettext("This contact is not a known customer yet."))
            try:
                card = await customer_card(s, user, customer_id, deps.channel_labels)
            except AccessDenied:
                return _json_error(403, gettext("You may not see this customer."))
            card["tag_catalogue"] = await tag_catalogue(s)
            card["faq"] = await _faq(s, card.get("last_question"))
        return web.json_response(card)

    async def _faq(s: AsyncSession, question: str | None) -> list[dict[str, Any]]:
        """autoreply's FAQ index: the best answers to the customer's last question."""
        if services.faq is None or not question:
            return []
        snapshot = await services.faq.current(s)
        return [
            {"question": m.entry.question, "answer": m.entry.reply.text, "confidence": m.confidence}
            for m in snapshot.engine.faq.search(question, limit=services.faq_suggestions)
        ]

    @routes.get("/sidebar/api/group")
    @allow(STAFF)
    async def group(request: web.Request) -> web.Response:
        """A customer group (getCurExternalChat): its members and the known customers."""
        user = await _user(request, group)
        chat_id = request.query.get("chat_id", "")
        if not chat_id:
            return _json_error(400, "chat_id is required")
        jsapi = await jsapi_or_503()
        try:
            chat = await jsapi.group_chat(chat_id)
        except (WeComApiError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("sidebar groupchat/get %s failed: %s", chat_id, exc)
            return _json_error(502, gettext("WeCom did not answer; try again."))
        members = []
        async with request.app[DEPS_KEY].db.reading() as s:
            for m in chat.members:
                customer_id = await customer_for_external(s, m.userid) if m.external else None
                if customer_id is not None:
                    try:
                        await sidebar_customer(s, user, customer_id)
                    except (AccessDenied, LookupError):
                        customer_id = None  # a customer of someone else: name only
                members.append(
                    {
                        "userid": m.userid,
                        "name": m.name,
                        "external": m.external,
                        "customer_id": customer_id,
                    }
                )
        return web.json_response(
            {"chat_id": chat.chat_id, "name": chat.name, "owner": chat.owner, "members": members}
        )

    @routes.get("/sidebar/api/customer")
    @allow(STAFF)
    async def customer(request: web.Request) -> web.Response:
        """The card of a customer by id (a group member the salesperson may see)."""
        user = await _user(request, customer)
        customer_id = _int(request.query.get("id", ""))
        deps = request.app[DEPS_KEY]
        async with deps.db.reading() as s:
            await visible(s, user, customer_id)
            card = await customer_card(s, user, customer_id, deps.channel_labels)
            card["tag_catalogue"] = await tag_catalogue(s)
            card["faq"] = await _faq(s, card.get("last_question"))
        return web.json_response(card)

    @routes.post("/sidebar/api/tags")
    @allow(STAFF)
    async def tags(request: web.Request) -> web.Response:
        """Put a tag on or take it off; tagging's functions record it for the corp-tag sync."""
        user = await _user(request, tags)
        body = await _body(request)
        customer_id, tag_id = _int(body.get("customer_id")), _int(body.get("tag_id"))
        why = Why("manual", actor_id=user.viewer.staff_id, reason="sidebar")
        async with request.app[DEPS_KEY].db.transaction() as s:
            await visible(s, user, customer_id)
            try:
                if body.get("remove") in (True, "1", 1):
                    changed = await untag_customer(s, customer_id, tag_id, why)
                else:
                    changed = await tag_customer(s, customer_id, tag_id, why)
            except TagError as exc:
                return _json_error(400, str(exc))
        return web.json_response({"changed": changed})

    @routes.post("/sidebar/api/notes")
    @allow(STAFF)
    async def notes(request: web.Request) -> web.Response:
        """An internal note on the customer's latest conversation the salesperson sees."""
        user = await _user(request, notes)
        body = await _body(request)
        customer_id = _int(body.get("customer_id"))
        deps = request.app[DEPS_KEY]
        async with deps.db.transaction() as s:
            await visible(s, user, customer_id)
            card = await customer_card(s, user, customer_id, deps.channel_labels)
            if card["conversation_id"] is None:
                return _json_error(
                    409, gettext("This customer has no conversation to note on yet.")
                )
            try:
                note = await add_note(
                    s, card["conversation_id"], user.viewer.staff_id, str(body.get("text", ""))
                )
            except ValueError as exc:
                return _json_error(400, str(exc))
        return web.json_response({"id": note.id})

    @routes.post("/sidebar/api/intent")
    @allow(STAFF)
    async def intent(request: web.Request) -> web.Response:
        """Mark the intent level (意向: 高/中/低/无) on the customer's profile."""
        user = await _user(request, intent)
        body = await _body(request)
        customer_id = _int(body.get("customer_id"))
        try:
            level = normalise_intent(str(body.get("level", "")))
        except ValueError as exc:
            return _json_error(400, str(exc))
        async with request.app[DEPS_KEY].db.transaction() as s:
            await visible(s, user, customer_id)
            profile = await ensure_profile(s, customer_id)
            before = profile.intent_level
            profile.intent_level = level
            profile.updated_at = datetime.now(UTC)
            await audit(
                s,
                "intent_marked",
                actor_id=user.viewer.staff_id,
                target_type="customer",
                target_id=customer_id,
                detail={"before": before, "after": level, "via": "sidebar"},
            )
        return web.json_response({"intent_level": level})

    @routes.post("/sidebar/api/follow-ups")
    @allow(STAFF)
    async def follow_ups(request: web.Request) -> web.Response:
        """A follow-up message to the customer at a local time (broadcasts reminders)."""
        user = await _user(request, follow_ups)
        body = await _body(request)
        customer_id = _int(body.get("customer_id"))
        at_local, text = str(body.get("at", "")), str(body.get("text", "")).strip()
        if services.follow_ups is None:
            return _json_error(503, gettext("Follow-up reminders are not available."))
        try:
            datetime.fromisoformat(at_local)
        except ValueError:
            return _json_error(400, "at must be a local date and time, e.g. 2026-03-02T15:00")
        if not text:
            return _json_error(400, "text is required")
        async with request.app[DEPS_KEY].db.transaction() as s:
            await visible(s, user, customer_id)
            try:
                broadcast_id = await services.follow_ups(
                    s,
                    customer_id=customer_id,
                    at_local=at_local,
                    text=text,
                    actor_id=user.viewer.staff_id,
                )
            except ValueError as exc:
                return _json_error(400, str(exc))
        return web.json_response({"broadcast_id": broadcast_id})

    @routes.get("/sidebar/api/materials")
    @allow(STAFF)
    async def materials(request: web.Request) -> web.Response:
        """Quick replies and materials, shared and personal; ?q= searches (jieba)."""
        user = await _user(request, materials)
        async with request.app[DEPS_KEY].db.reading() as s:
            items = await library(s, user.viewer, request.query.get("q", ""))
        return web.json_response({"items": [i.as_json() for i in items]})

    @routes.post("/sidebar/api/materials")
    @allow(STAFF)
    async def add_material(request: web.Request) -> web.Response:
        """A new material: text or link (JSON or form), image or file (multipart)."""
        user = await _user(request, add_material)
        body = await _body(request)
        deps = request.app[DEPS_KEY]
        try:
            kind = MaterialKind(str(body.get("kind", "")))
        except ValueError:
            return _json_error(400, "kind must be text, image, link or file")
        sha256, filename = None, ""
        upload = body.get("file")
        if isinstance(upload, web.FileField):
            if deps.media is None:
                return _json_error(503, "no media store")
            stored = deps.media.put(upload.file.read(), upload.filename)
            sha256, filename = stored.sha256, upload.filename
        async with deps.db.transaction() as s:
            try:
                material = await save_material(
                    s,
                    user.viewer,
                    kind=kind,
                    title=str(body.get("title", "")),
                    body=str(body.get("body", "")),
                    url=str(body.get("url", "")),
                    image_url=str(body.get("image_url", "")),
                    media_sha256=sha256,
                    filename=filename,
                    shared=body.get("shared") in (True, "1", 1),
                )
            except AccessDenied as exc:
                return _json_error(403, str(exc))
            except ValueError as exc:
                return _json_error(400, str(exc))
        return web.json_response({"key": f"m{material.id}"})

    @routes.get("/sidebar/api/media")
    @allow(STAFF)
    async def media(request: web.Request) -> web.Response:
        """A WeCom media id for an image or file material (sendChatMessage needs one);
        uploaded once and reused while WeCom keeps it (3 days)."""
        user = await _user(request, media)
        material_id = _int(request.query.get("material", ""))
        deps = request.app[DEPS_KEY]
        async with deps.db.reading() as s:
            try:
                material = await visible_material(s, user.viewer, material_id)
            except LookupError:
                return _json_error(404, gettext("No such material."))
            except AccessDenied:
                return _json_error(403, gettext("No such material."))
        if not material.media_sha256 or deps.media is None:
            return _json_error(400, "this material has no file")
        key = f"sidebar:media:{material.media_sha256}"
        media_id = await deps.state.get(key)
        if not media_id:
            jsapi = await jsapi_or_503()
            data = deps.media.read(material.media_sha256)
            kind = "image" if material.kind == MaterialKind.IMAGE else "file"
            try:
                media_id = await jsapi.upload_media(
                    kind, data, material.filename or kind, "application/octet-stream"
                )
            except (WeComApiError, aiohttp.ClientError, TimeoutError) as exc:
                log.warning("sidebar media upload failed: %s", exc)
                return _json_error(502, gettext("WeCom did not answer; try again."))
            await deps.state.set(key, media_id, ttl=MEDIA_TTL)
        return web.json_response({"media_id": media_id})

    routes.static("/sidebar/static", HERE / "static")
    return routes
