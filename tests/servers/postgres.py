"""A throwaway PostgreSQL cluster (initdb + pg_ctl in a temp dir) for the suite."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .ports import free_port, wait_for_port


def _pg_bin(name: str) -> str | None:
    for candidate in sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True):
        return candidate
    return shutil.which(name)


def available() -> str | None:
    """None if PostgreSQL can be started here, else the reason it cannot."""
    if not _pg_bin("initdb") or not _pg_bin("pg_ctl"):
        return (
            "PostgreSQL server binaries (initdb, pg_ctl) not installed: apt-get install postgresql"
        )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root without a 'postgres' user to run the server"
    return None


@dataclass
class PostgresServer:
    root: Path
    port: int
    user: str

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://{self.user}@127.0.0.1:{self.port}/{database}"

    def admin_url(self) -> str:
        return self.url("postgres")

    def stop(self, mode: str = "immediate") -> None:
        # "fast" flushes the WAL first: with fsync and synchronous_commit off (set below
        # for speed) an immediate stop forgets the last commits, which a fault test
        # stopping the server mid-run would misread as crmbot losing data
        self._run(
            [
                _pg_bin("pg_ctl") or "pg_ctl",
                "-D",
                str(self.root / "data"),
                "-m",
                mode,
                "stop",
            ],
            check=False,
        )

    def start(self) -> None:
        self._run(
            [
                _pg_bin("pg_ctl") or "pg_ctl",
                "-D",
                str(self.root / "data"),
                "-l",
                str(self.root / "log"),
                "-w",
                "start",
            ]
        )
        wait_for_port(self.port)

    def _run(self, cmd: list[str], check: bool = True) -> None:
        subprocess.run(_as_user(cmd), check=check, capture_output=True)


def _as_user(cmd: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root: drop to the package's postgres user
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def start(root: Path) -> PostgresServer:
    root.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        os.chmod(root, 0o755)
    user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    port = free_port()
    data = root / "data"
    subprocess.run(
        _as_user(
            [
                _pg_bin("initdb") or "initdb",
                "-D",
                str(data),
                "-U",
                user,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
            ]
        ),
        check=True,
        capture_output=True,
    )
    with open(data / "postgresql.conf", "a") as conf:
        conf.write(
            f"\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{root}'\n"
            "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 200\n"
        )
    server = PostgresServer(root=root, port=port, user=user)
    server.start()
    return server
