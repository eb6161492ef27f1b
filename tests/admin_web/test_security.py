"""Two-step login for admins (RFC 6238), passwords, API tokens, CSRF and headers."""

from __future__ import annotations

import time

import aiohttp
from sqlalchemy import select

from conversations import totp
from conversations.api_tokens import ApiToken
from conversations.models import StaffUser
from tests.admin_web.people import PASSWORD, Org, api_token, bearer, csrf_of
from tests.system import System


def test_totp_matches_the_rfc_6238_vector() -> None:
    # RFC 6238 appendix B, SHA-1, T = 59 s → 94287082 (we keep the last 6 digits)
    secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # base32 of "12345678901234567890"
    assert totp.code_at(secret, 59) == "287082"
    assert totp.verify(secret, "287082", at=59)
    assert not totp.verify(secret, "287083", at=59)


async def test_admin_with_totp_needs_the_code_to_log_in(console: System, org: Org) -> None:
    secret = totp.new_secret()
    async with console.services.db.transaction() as s:
        admin = await s.get(StaffUser, org.staff["admin"])
        assert admin is not None
        admin.totp_secret = secret
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        csrf = await csrf_of(http, f"{console.base}/login")
        resp = await http.post(
            f"{console.base}/login",
            data={"_csrf": csrf, "username": "admin", "password": PASSWORD, "next": "/inbox"},
            allow_redirects=False,
        )
        assert resp.headers["Location"] == "/login/totp"
        csrf = await csrf_of(http, f"{console.base}/login/totp")
        wrong = await http.post(
            f"{console.base}/login/totp", data={"_csrf": csrf, "code": "000000"}
        )
        assert wrong.status == 401
        ok = await http.post(
            f"{console.base}/login/totp",
            data={"_csrf": csrf, "code": totp.code_at(secret, time.time())},
            allow_redirects=False,
        )
        assert ok.headers["Location"] == "/inbox"
        assert (await http.get(f"{console.base}/inbox", allow_redirects=False)).status == 200


async def test_password_alone_does_not_log_in_a_totp_admin(console: System, org: Org) -> None:
    async with console.services.db.transaction() as s:
        admin = await s.get(StaffUser, org.staff["admin"])
        assert admin is not None
        admin.totp_secret = totp.new_secret()
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        csrf = await csrf_of(http, f"{console.base}/login")
        await http.post(
            f"{console.base}/login",
            data={"_csrf": csrf, "username": "admin", "password": PASSWORD, "next": "/inbox"},
            allow_redirects=False,
        )
        resp = await http.get(f"{console.base}/inbox", allow_redirects=False)
        assert resp.status == 302 and resp.headers["Location"].startswith("/login")


async def test_password_change_checks_the_current_password(console: System, org: Org) -> None:
    http = await console.login("sales_a")
    try:
        csrf = await csrf_of(http, f"{console.base}/me")
        wrong = await http.post(
            f"{console.base}/me/password",
            data={
                "_csrf": csrf,
                "current": "nope",
                "new": "brand-new-pass-9",
                "repeat": "brand-new-pass-9",
            },
            allow_redirects=False,
        )
        assert wrong.headers["Location"] == "/me?m=wrong"
        ok = await http.post(
            f"{console.base}/me/password",
            data={
                "_csrf": csrf,
                "current": PASSWORD,
                "new": "brand-new-pass-9",
                "repeat": "brand-new-pass-9",
            },
            allow_redirects=False,
        )
        assert ok.headers["Location"] == "/me?m=password"
    finally:
        await http.close()
    again = await console.login("sales_a", "brand-new-pass-9")  # asserts the redirect
    await again.close()


async def test_api_tokens_are_stored_hashed_and_can_be_revoked(console: System, org: Org) -> None:
    plain = await api_token(console, "sales_a")
    async with console.services.db.reading() as s:
        row = (await s.scalars(select(ApiToken))).one()
    assert plain not in (row.token_hash, row.hint) and plain.startswith(row.hint)
    async with aiohttp.ClientSession() as http:
        assert (await http.get(f"{console.base}/api/v1/me", headers=bearer(plain))).status == 200
        async with console.services.db.transaction() as s:
            from conversations.api_tokens import revoke_token

            assert await revoke_token(s, org.staff["sales_a"], row.id)
        assert (await http.get(f"{console.base}/api/v1/me", headers=bearer(plain))).status == 401


async def test_api_reply_and_search(console: System, org: Org) -> None:
    token = await api_token(console, "sales_a")
    conv = org.conversations["sales_a"]
    async with aiohttp.ClientSession() as http:
        sent = await http.post(
            f"{console.base}/api/v1/conversations/{conv}/messages",
            json={"text": "API 发来的报价", "idempotency_key": "a1"},
            headers=bearer(token),
        )
        assert sent.status == 201
        again = await http.post(
            f"{console.base}/api/v1/conversations/{conv}/messages",
            json={"text": "API 发来的报价", "idempotency_key": "a1"},
            headers=bearer(token),
        )
        assert (await again.json()) == {"duplicate": True}
        found = await (
            await http.get(
                f"{console.base}/api/v1/search", params={"q": "报价"}, headers=bearer(token)
            )
        ).json()
    assert [i["text"] for i in found["items"]] == ["API 发来的报价"]


async def test_unsafe_request_without_csrf_is_refused(console: System, org: Org) -> None:
    http = await console.login("sales_a")
    try:
        resp = await http.post(
            f"{console.base}/conversations/{org.conversations['sales_a']}/notes", data={"text": "x"}
        )
        assert resp.status == 403
    finally:
        await http.close()


async def test_pages_carry_secure_headers(console: System, org: Org) -> None:
    async with aiohttp.ClientSession() as http:
        resp = await http.get(f"{console.base}/login")
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


async def test_marketer_login_lands_on_their_page_not_the_inbox(console: System, org: Org) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        csrf = await csrf_of(http, f"{console.base}/login")
        resp = await http.post(
            f"{console.base}/login",
            data={"_csrf": csrf, "username": "marketer", "password": PASSWORD},
        )
        assert resp.status == 200
        assert resp.url.path == "/me"
