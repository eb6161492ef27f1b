"""A throwaway redis-server on a loopback port."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from .ports import free_port, wait_for_port


def available() -> str | None:
    return (
        None
        if shutil.which("redis-server")
        else "redis-server not installed: apt-get install redis-server"
    )


@dataclass
class RedisServer:
    root: Path
    port: int
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.root),
                "--appendonly",
                "yes",
                "--save",
                "",
                "--protected-mode",
                "no",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port, self.proc)

    def stop(self, kill: bool = False) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill() if kill else self.proc.terminate()
            self.proc.wait(timeout=10)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()  # else a ResourceWarning (an error in this suite)
        self.proc = None


def start(root: Path) -> RedisServer:
    root.mkdir(parents=True, exist_ok=True)
    server = RedisServer(root=root, port=free_port())
    server.start()
    return server
