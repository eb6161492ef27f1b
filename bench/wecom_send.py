"""WeCom send benchmark (issue 3): the simulator enforces a per-account API limit (calls
per window, answered with 45009 beyond it); crmbot's app adapter sends as fast as its
token bucket allows from `--concurrency` workers (the outbox dispatcher's default).

Prints JSON: the sustained send rate after the first window, its ratio to the limit
(target ≥ 0.95 and ≤ 1.0) and how many 45009 answers were provoked (target 0).

    python -m bench.wecom_send --limit 1200 --window 10 --duration 25

WeCom counts per minute; a shorter window keeps the run short. The bucket's burst (1 %
of a window's calls) is what absorbs the event loop's wake-up latency, so very short
windows on a CPU-starved machine under-use the limit a little; never exceed it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

from channels.base import ChannelContext
from channels.media import MediaStore
from channels.state import MemoryState
from channels.wecom.adapter import WeComAppAdapter
from channels.wecom.simulator import WeComSimulator, new_app
from conversations.types import AccountRef, MessageKind, Outbound, Purpose, SendOutcome


async def run(limit: int, window: float, duration: float, concurrency: int) -> dict[str, object]:
    sim = WeComSimulator(api_rate_per_minute=limit, api_rate_window=window)
    app = sim.add_app(new_app("wwbenchcorp0001"))
    members = [f"member{i:05d}" for i in range(int(limit / window * duration) + 1000)]
    for member in members:
        sim.add_member(app.corp_id, member)
    server = TestServer(sim.app(), host="127.0.0.1")
    await server.start_server()
    sent_at: list[float] = []
    outcomes: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="crmbot-bench-") as tmp:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as http:
            ctx = ChannelContext(
                http=http,
                state=MemoryState(),
                media=MediaStore(Path(tmp)),
                public_url="http://127.0.0.1",
            )
            account = AccountRef(
                id=1,
                kind="wecom.app",
                name="bench",
                config={
                    "corp_id": app.corp_id,
                    "agent_id": app.agent_id,
                    "api_base": str(server.make_url("")).rstrip("/"),
                    "api_rate_limit": {"calls": limit, "seconds": window},
                },
                secrets={
                    "secret": app.secret,
                    "token": app.token,
                    "encoding_aes_key": app.encoding_aes_key,
                },
            )
            adapter = WeComAppAdapter(account, ctx)
            await adapter.api.access_token()
            queue = iter(range(len(members)))
            t0 = time.monotonic()

            async def worker() -> None:
                for i in queue:
                    if time.monotonic() - t0 >= duration:
                        return
                    result = await adapter.send(
                        Outbound(
                            key=f"bench-{i}",
                            account=account,
                            recipient=members[i],
                            kind=MessageKind.TEXT,
                            text=f"新线索 #{i}",
                            purpose=Purpose.NOTIFICATION,
                        )
                    )
                    outcomes[result.outcome.value] = outcomes.get(result.outcome.value, 0) + 1
                    if result.outcome == SendOutcome.SENT:
                        sent_at.append(time.monotonic() - t0)

            await asyncio.gather(*(worker() for _ in range(concurrency)))
            elapsed = time.monotonic() - t0
    await server.close()
    # from the end of the first window (no burst credit left) to the end of the run
    steady = [t for t in sent_at if window <= t < duration]
    steady_rate = len(steady) / max(duration - window, 1e-9)
    limit_rate = limit / window
    return {
        "benchmark": "wecom_send",
        "limit": f"{limit} calls / {window:g} s",
        "limit_per_s": round(limit_rate, 2),
        "concurrency": concurrency,
        "elapsed_s": round(elapsed, 2),
        "sent": len(sent_at),
        "outcomes": outcomes,
        "sustained_per_s": round(steady_rate, 2),
        "ratio_to_limit": round(steady_rate / limit_rate, 4),
        "errors_45009": sim.errors.get(45009, 0),
        "dropped_by_wecom": len(sim.dropped),
        "targets": {"ratio_to_limit": ">= 0.95 and <= 1.0", "errors_45009": 0},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--limit", type=int, default=1200, help="calls the simulator allows per window"
    )
    parser.add_argument("--window", type=float, default=10.0, help="seconds (WeCom counts per 60)")
    parser.add_argument("--duration", type=float, default=25.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    result = asyncio.run(run(args.limit, args.window, args.duration, args.concurrency))
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
