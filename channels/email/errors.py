"""Email errors, translated once at the channel boundary into crmbot's kinds."""

from __future__ import annotations

from datetime import timedelta

import aiosmtplib

from conversations.types import SendOutcome, SendResult


class EmailConfigError(ValueError):
    """An email account's settings are unusable; lists every problem, one per line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("email account settings:\n  " + "\n  ".join(problems))
        self.problems = problems


class ImapError(Exception):
    """The IMAP server refused a command or answered something we cannot use."""

    def __init__(self, message: str, *, translation_key: str = "email.imap_error") -> None:
        super().__init__(message)
        self.translation_key = translation_key


class OAuthError(Exception):
    """The token endpoint gave no access token; `permanent` when only re-consent helps."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.translation_key = (
            "email.oauth_reauthorise" if permanent else "email.oauth_token_endpoint"
        )


def send_result_for(exc: Exception) -> SendResult:
    """Map an aiosmtplib/network failure to the outbox's result kinds.

    Before the server has the message (connect, auth, MAIL/RCPT) a retry is safe; once
    DATA may have been accepted (a timeout or disconnect after it) the outcome is unknown
    and the dispatcher must reconcile first (DESIGN.md invariant 3).
    """
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        permanent = all(500 <= c < 600 for c in codes)
        return _result(
            SendOutcome.FAILED if permanent else SendOutcome.RETRY,
            f"smtp.{codes[0] if codes else 'rcpt'}",
            "; ".join(f"{r.code} {r.message}" for r in exc.recipients)[:400],
        )
    if isinstance(exc, OAuthError):
        # a revoked refresh token waits for the operator like a wrong app password does
        return _result(
            SendOutcome.RETRY,
            "email.oauth_reauthorise" if exc.permanent else "email.oauth_token",
            f"OAuth: {exc}"[:400],
            retry_after=timedelta(minutes=10) if exc.permanent else None,
        )
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        # the operator fixes the app password (授权码); retrying later then succeeds
        return _result(
            SendOutcome.RETRY,
            "smtp.auth",
            f"login refused: {exc.code} {exc.message}",
            retry_after=timedelta(minutes=10),
        )
    if isinstance(exc, aiosmtplib.SMTPConnectError | aiosmtplib.SMTPConnectTimeoutError):
        return _result(SendOutcome.RETRY, "smtp.connect", str(exc))
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | aiosmtplib.SMTPServerDisconnected):
        return _result(SendOutcome.UNKNOWN, "smtp.timeout", str(exc) or type(exc).__name__)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        outcome = SendOutcome.FAILED if 500 <= exc.code < 600 else SendOutcome.RETRY
        return _result(outcome, f"smtp.{exc.code}", f"{exc.code} {exc.message}"[:400])
    if isinstance(exc, aiosmtplib.SMTPException | OSError | TimeoutError):
        return _result(SendOutcome.RETRY, "smtp.network", str(exc) or type(exc).__name__)
    raise exc


def _result(
    outcome: SendOutcome, code: str, reason: str, retry_after: timedelta | None = None
) -> SendResult:
    return SendResult(outcome, error_code=code, reason=reason, retry_after=retry_after)
