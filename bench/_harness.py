"""Shared plumbing for benchmarks: start a crmbot process on a scratch store."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bot.migrate import upgrade
from bot.secrets import SecretBox
from channels.wecom.simulator import SimApp, new_app
from conversations.db import Database, create_engine
from conversations.models import ChannelAccount


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Instance:
    proc: subprocess.Popen[bytes]
    base: str
    app: SimApp
    token: str
    database_url: str

    @property
    def callback_url(self) -> str:
        return f"{self.base}/callbacks/wecom.app/{self.token}"

    def cpu_seconds(self) -> float:
        """User+system CPU the server process used so far (robust on a busy machine)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@dataclass
class Store:
    url: str
    app: SimApp
    token: str
    secret_key: str


async def prepare_store(url: str) -> Store:
    """Migrate a scratch store and add one WeCom app account (no auto-reply rules, so
    the numbers measure ingest and the pipeline, not a provider)."""
    await asyncio.to_thread(upgrade, url)
    app = new_app()
    token = secrets.token_urlsafe(16)
    secret_key = secrets.token_urlsafe(40)
    db = Database(create_engine(url))
    async with db.transaction() as s:
        s.add(
            ChannelAccount(
                kind="wecom.app",
                name="bench",
                config={
                    "corp_id": app.corp_id,
                    "agent_id": app.agent_id,
                    "api_base": "http://127.0.0.1:9",
                },
                secrets=SecretBox(secret_key).seal(
                    {
                        "secret": app.secret,
                        "token": app.token,
                        "encoding_aes_key": app.encoding_aes_key,
                    }
                ),
                callback_token=token,
            )
        )
    await db.dispose()
    return Store(url, app, token, secret_key)


async def start_instance(
    data_dir: Path, database_url: str | None = None, extra_env: dict[str, str] | None = None
) -> Instance:
    data_dir.mkdir(parents=True, exist_ok=True)
    url = database_url or f"sqlite+aiosqlite:///{data_dir / 'bench.db'}"
    store = await prepare_store(url)
    app, token, secret_key = store.app, store.token, store.secret_key
    port = free_port()
    env = {
        **os.environ,
        "CRMBOT_DATABASE_URL": url,
        "CRMBOT_DATA_DIR": str(data_dir),
        "CRMBOT_PORT": str(port),
        "CRMBOT_SANDBOX": "false",
        "CRMBOT_SECRET_KEY": secret_key,
        "CRMBOT_LOG_LEVEL": "WARNING",
        **(extra_env or {}),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "run"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(base + "/healthz") as resp:
                    if resp.status == 200:
                        return Instance(proc, base, app, token, url)
            except aiohttp.ClientError:
                pass
            if proc.poll() is not None:
                raise RuntimeError((proc.stderr.read() if proc.stderr else b"").decode()[-2000:])
            await asyncio.sleep(0.1)
    proc.kill()
    raise TimeoutError("crmbot did not become healthy")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]
