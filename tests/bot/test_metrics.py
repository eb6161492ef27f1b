"""/metrics: Prometheus exposition of queue, handler, outbox, send and broadcast metrics."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from bot import metrics
from conversations.db import Database
from conversations.models import ChannelAccount, OutboxItem


async def _scrape(endpoint: metrics.MetricsEndpoint, **headers: str) -> tuple[int, str]:
    async with TestClient(TestServer(metrics.metrics_app(endpoint))) as client:
        resp = await client.get("/metrics", headers=headers)
        return resp.status, await resp.text()


def _sample(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


class FakeQueue:
    async def depth(self, topic: str) -> int:
        return {"inbound": 7}.get(topic, 0)

    async def lag(self, topic: str) -> float:
        return 1.5


async def test_scrape_shows_queue_depth_and_lag() -> None:
    endpoint = metrics.MetricsEndpoint([metrics.queue_refresher(FakeQueue(), ["inbound"])])
    status, text = await _scrape(endpoint)
    assert status == 200
    assert _sample(text, "crmbot_queue_depth", topic="inbound") == 7
    assert _sample(text, "crmbot_queue_lag_seconds", topic="inbound") == 1.5


async def test_send_errors_are_counted_per_provider_code() -> None:
    before = metrics.SEND_ERRORS.labels(channel="sms.aliyun", code="isv.BUSINESS_LIMIT_CONTROL")
    start = before._value.get()
    metrics.record_send("sms.aliyun", "retry", "isv.BUSINESS_LIMIT_CONTROL")
    metrics.record_send("sms.aliyun", "sent")
    _status, text = await _scrape(metrics.MetricsEndpoint())
    value = _sample(
        text, "crmbot_send_errors_total", channel="sms.aliyun", code="isv.BUSINESS_LIMIT_CONTROL"
    )
    assert value == start + 1


async def test_broadcast_progress_is_exposed_and_cleared() -> None:
    metrics.set_broadcast_progress(12, {"sent": 30, "pending": 70})
    _s, text = await _scrape(metrics.MetricsEndpoint())
    assert _sample(text, "crmbot_broadcast_recipients", broadcast="12", state="pending") == 70
    metrics.clear_broadcast_progress(12, ["sent", "pending"])
    _s, text = await _scrape(metrics.MetricsEndpoint())
    assert _sample(text, "crmbot_broadcast_recipients", broadcast="12", state="pending") is None


async def test_a_failing_refresher_does_not_hide_the_others() -> None:
    async def broken() -> None:
        raise ConnectionError("redis down")

    endpoint = metrics.MetricsEndpoint([broken, metrics.queue_refresher(FakeQueue(), ["inbound"])])
    status, text = await _scrape(endpoint)
    assert status == 200
    assert _sample(text, "crmbot_queue_depth", topic="inbound") == 7


async def test_token_protects_the_endpoint() -> None:
    endpoint = metrics.MetricsEndpoint(token="t0ken")
    assert (await _scrape(endpoint))[0] == 401
    assert (await _scrape(endpoint, Authorization="Bearer t0ken"))[0] == 200


async def test_outbox_backlog_counts_unfinished_rows_per_channel(db: Database) -> None:
    async with db.transaction() as s:
        account = ChannelAccount(kind="sms.aliyun", name="短信", config={}, callback_token="cb")
        s.add(account)
        await s.flush()
        rows: list[dict[str, Any]] = [
            {"status": "pending"},
            {"status": "pending"},
            {"status": "sent"},
            {"status": "failed"},
        ]
        for n, row in enumerate(rows):
            s.add(
                OutboxItem(
                    idempotency_key=f"k{n}",
                    account_id=account.id,
                    recipient="+8613800000000",
                    purpose="reply",
                    payload={},
                    **row,
                )
            )
    endpoint = metrics.MetricsEndpoint([metrics.outbox_refresher(db)])
    _s, text = await _scrape(endpoint)
    assert _sample(text, "crmbot_outbox_backlog", channel="sms.aliyun", status="pending") == 2
    assert _sample(text, "crmbot_outbox_backlog", channel="sms.aliyun", status="sent") is None
    oldest = _sample(text, "crmbot_outbox_oldest_seconds", channel="sms.aliyun")
    assert oldest is not None and oldest >= 0
