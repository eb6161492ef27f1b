"""A throwaway Dovecot (IMAP + LMTP) in a temp dir, run in the foreground on loopback ports.

Recipe from the channels research note §4.1: a self-contained config, a passwd-file passdb
that tests append users to (Dovecot re-reads it when it changes), maildirs under the dir.
As root Dovecot refuses to run its login/internal processes as root, so it uses the
package's `dovecot`/`dovenull` users and the dir must be 0755 for the auth process.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .ports import free_port, wait_for_port


def available() -> str | None:
    """None if Dovecot can be started here, else the reason it cannot."""
    if not shutil.which("dovecot") or not shutil.which("doveadm"):
        return "dovecot not installed: apt-get install dovecot-imapd dovecot-lmtpd"
    if not Path("/usr/lib/dovecot/lmtp").exists():
        return "dovecot LMTP not installed: apt-get install dovecot-lmtpd"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("dovecot")
            pwd.getpwnam("dovenull")
        except KeyError:
            return "running as root without the dovecot/dovenull users of the Debian package"
    return None


_CONF = """\
protocols = imap lmtp
listen = 127.0.0.1
base_dir = {dir}/run
state_dir = {dir}/run
instance_name = test-dovecot-{imap_port}
log_path = {dir}/dovecot.log
ssl = yes
ssl_cert = <{dir}/cert.pem
ssl_key = <{dir}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login{oauth_mechanisms}
auth_username_format = %Ln
auth_failure_delay = 0
default_internal_user = {iuser}
default_internal_group = {igroup}
default_login_user = {luser}
first_valid_uid = 1
mail_location = maildir:~/Maildir
mail_fsync = never
lmtp_save_to_detail_mailbox = no
namespace inbox {{
  inbox = yes
  mailbox Sent {{
    special_use = \\Sent
    auto = create
  }}
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp_port}
  }}
}}
service anvil {{
  chroot =
  # no auth penalty: Dovecot delays logins from an IP after failures (up to 15 s), and
  # every test logs in from 127.0.0.1; an unreachable socket switches the penalty off
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
passdb {{
  driver = passwd-file
  args = {dir}/passwd
}}
{oauth_passdb}userdb {{
  driver = passwd-file
  args = {dir}/passwd
}}
"""


# Dovecot's oauth2 passdb asks an RFC 7662 introspection endpoint about each bearer token
# (XOAUTH2 / OAUTHBEARER logins); the mailbox user must match the "username" it returns
_OAUTH_PASSDB = """\
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {dir}/dovecot-oauth2.conf.ext
}}
"""
_OAUTH_CONF = """\
introspection_mode = post
introspection_url = {url}
force_introspection = yes
username_attribute = username
active_attribute = active
active_value = true
"""


@dataclass
class DovecotServer:
    root: Path
    imap_port: int  # plain, STARTTLS offered
    imaps_port: int  # implicit TLS
    lmtp_port: int
    uid: int
    gid: int
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _users_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _spare: list[tuple[str, str]] = field(default_factory=list, repr=False)

    @property
    def config(self) -> Path:
        return self.root / "dovecot.conf"

    @property
    def ca_file(self) -> Path:
        """The self-signed certificate clients must trust to talk TLS to this server."""
        return self.root / "cert.pem"

    def add_users(self, count: int) -> None:
        """Create `count` spare mailbox users. Dovecot re-reads the passwd file at most once
        a second, so users are made ahead of time rather than on demand."""
        lines = []
        for _ in range(count):
            user, password = f"u{uuid.uuid4().hex[:12]}", uuid.uuid4().hex
            home = self.root / "mail" / user
            home.mkdir(parents=True, exist_ok=True)
            os.chown(home, self.uid, self.gid)
            lines.append(f"{user}:{{PLAIN}}{password}:{self.uid}:{self.gid}::{home}\n")
            self._spare.append((user, password))
        with self._users_lock, open(self.root / "passwd", "a") as passwd:
            passwd.write("".join(lines))

    def take_user(self) -> tuple[str, str]:
        """A fresh (user, password) with an empty maildir."""
        with self._users_lock:
            if self._spare:
                return self._spare.pop()
        raise RuntimeError("no spare Dovecot users left: raise the pool size in start()")

    def doveadm(self, *args: str) -> str:
        result = subprocess.run(
            ["doveadm", "-c", str(self.config), *args], check=True, capture_output=True
        )
        return result.stdout.decode()

    def set_uidvalidity(self, user: str, mailbox: str, value: int) -> None:
        """Change a mailbox's UIDVALIDITY, as a server migration or restore would."""
        self.doveadm("mailbox", "update", "-u", user, "--uid-validity", str(value), mailbox)

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["dovecot", "-F", "-c", str(self.config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.imap_port, self.proc)
        wait_for_port(self.imaps_port, self.proc)
        wait_for_port(self.lmtp_port, self.proc)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None


def start(
    root: Path, users: int = 200, oauth_introspection_url: str | None = None
) -> DovecotServer:
    """Start Dovecot; with `oauth_introspection_url` it also accepts XOAUTH2/OAUTHBEARER."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "run").mkdir(exist_ok=True)
    (root / "mail").mkdir(exist_ok=True)
    os.chmod(root, 0o755)  # the auth process runs as the internal user and reads passwd
    if os.geteuid() == 0:
        iuser, igroup, luser = "dovecot", "dovecot", "dovenull"
        uid, gid = pwd.getpwnam("dovecot").pw_uid, pwd.getpwnam("dovecot").pw_gid
    else:
        me = pwd.getpwuid(os.geteuid())
        iuser = luser = me.pw_name
        igroup = subprocess.run(["id", "-gn"], capture_output=True, check=True).stdout.decode()
        igroup = igroup.strip()
        uid, gid = os.geteuid(), os.getegid()
    os.chown(root / "mail", uid, gid)
    (root / "passwd").touch()
    imap_port, imaps_port, lmtp_port = free_port(), free_port(), free_port()
    write_self_signed_cert(root / "cert.pem", root / "key.pem")
    if oauth_introspection_url:
        (root / "dovecot-oauth2.conf.ext").write_text(
            _OAUTH_CONF.format(url=oauth_introspection_url)
        )
    (root / "dovecot.conf").write_text(
        _CONF.format(
            dir=root,
            imap_port=imap_port,
            imaps_port=imaps_port,
            lmtp_port=lmtp_port,
            iuser=iuser,
            igroup=igroup,
            luser=luser,
            oauth_mechanisms=" xoauth2 oauthbearer" if oauth_introspection_url else "",
            oauth_passdb=_OAUTH_PASSDB.format(dir=root) if oauth_introspection_url else "",
        )
    )
    server = DovecotServer(
        root=root,
        imap_port=imap_port,
        imaps_port=imaps_port,
        lmtp_port=lmtp_port,
        uid=uid,
        gid=gid,
    )
    server.add_users(users)
    server.start()
    return server


def write_self_signed_cert(cert_path: Path, key_path: Path) -> None:
    """A CA-flagged self-signed certificate for 127.0.0.1/localhost (tests trust it)."""
    from datetime import UTC, datetime, timedelta
    from ipaddress import IPv4Address

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "crmbot test mail server")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(IPv4Address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
