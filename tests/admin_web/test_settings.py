"""Channel account settings: secrets sealed before storage, the test-connection button,
business hours."""

from __future__ import annotations

from sqlalchemy import select

from conversations.models import ChannelAccount
from tests.admin_web.people import Org, csrf_of
from tests.system import System


async def test_new_account_secrets_are_stored_encrypted(console: System, org: Org) -> None:
    http = await console.login("admin")
    try:
        csrf = await csrf_of(http, f"{console.base}/settings/accounts")
        resp = await http.post(
            f"{console.base}/settings/accounts",
            data={
                "_csrf": csrf,
                "kind": "wecom.app",
                "name": "第二个应用",
                "config": "corp_id = ww123\nagent_id = 1000005",
                "secrets": "secret = top-secret-value",
            },
            allow_redirects=False,
        )
        assert resp.status == 302
        page = await (await http.get(console.base + resp.headers["Location"])).text()
    finally:
        await http.close()
    async with console.services.db.reading() as s:
        row = (
            await s.scalars(select(ChannelAccount).where(ChannelAccount.name == "第二个应用"))
        ).one()
    assert row.config == {"corp_id": "ww123", "agent_id": "1000005"}
    assert row.secrets["secret"].startswith("enc:v1:")
    assert console.services.secrets.open(row.secrets) == {"secret": "top-secret-value"}
    assert "top-secret-value" not in page


async def test_editing_keeps_masked_secrets(console: System, org: Org) -> None:
    http = await console.login("admin")
    account = console.wecom_account_id
    async with console.services.db.reading() as s:
        before = dict((await s.get(ChannelAccount, account)).secrets)  # type: ignore[union-attr]
    try:
        url = f"{console.base}/settings/accounts/{account}"
        csrf = await csrf_of(http, url)
        page = await (await http.get(url)).text()
        assert "encoding_aes_key = ••••••" in page
        await http.post(
            url,
            data={
                "_csrf": csrf,
                "name": "销售应用",
                "enabled": "1",
                "config": "corp_id = x",
                "secrets": "secret = ••••••\ntoken = new-token",
            },
        )
    finally:
        await http.close()
    async with console.services.db.reading() as s:
        after = (await s.get(ChannelAccount, account)).secrets  # type: ignore[union-attr]
    assert after["secret"] == before["secret"]
    assert console.services.secrets.open({"token": after["token"]}) == {"token": "new-token"}


async def test_test_connection_button_reports_the_adapter_check(console: System, org: Org) -> None:
    http = await console.login("admin")
    try:
        csrf = await csrf_of(http, f"{console.base}/settings/accounts")
        page = await (
            await http.post(
                f"{console.base}/settings/accounts/{console.wecom_account_id}/test",
                data={"_csrf": csrf},
            )
        ).text()
    finally:
        await http.close()
    assert 'class="ok"' in page


async def test_business_hours_are_saved_on_the_account(console: System, org: Org) -> None:
    http = await console.login("admin")
    url = f"{console.base}/settings/accounts/{console.wecom_account_id}"
    try:
        csrf = await csrf_of(http, url)
        bad = await http.post(
            f"{url}/hours",
            data={"_csrf": csrf, "mon_start": "18:00", "mon_end": "09:00"},
            allow_redirects=False,
        )
        assert bad.headers["Location"].endswith("error=hours")
        await http.post(
            f"{url}/hours",
            data={
                "_csrf": csrf,
                "mon_start": "09:00",
                "mon_end": "18:00",
                "holidays": "2026-10-01\nxx",
            },
        )
    finally:
        await http.close()
    async with console.services.db.reading() as s:
        row = await s.get(ChannelAccount, console.wecom_account_id)
    assert row is not None
    assert row.config["business_hours"] == {
        "timezone": "Asia/Shanghai",
        "week": {"mon": ["09:00", "18:00"]},
        "holidays": ["2026-10-01"],
    }
