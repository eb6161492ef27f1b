"""Every SMTP failure maps to an outbox result kind (STYLE.md §2 conformance)."""

from __future__ import annotations

import aiosmtplib
import pytest

from channels.email.errors import send_result_for
from conversations.types import SendOutcome


@pytest.mark.parametrize(
    ("exc", "outcome"),
    [
        (
            aiosmtplib.SMTPRecipientsRefused(
                [aiosmtplib.SMTPRecipientRefused(550, "no such user", "a@b.test")]
            ),
            SendOutcome.FAILED,
        ),
        (
            aiosmtplib.SMTPRecipientsRefused(
                [aiosmtplib.SMTPRecipientRefused(450, "greylisted", "a@b.test")]
            ),
            SendOutcome.RETRY,
        ),
        (aiosmtplib.SMTPAuthenticationError(535, "bad credentials"), SendOutcome.RETRY),
        (aiosmtplib.SMTPConnectError("refused"), SendOutcome.RETRY),
        (aiosmtplib.SMTPConnectTimeoutError("slow"), SendOutcome.RETRY),
        (aiosmtplib.SMTPTimeoutError("no answer to DATA"), SendOutcome.UNKNOWN),
        (aiosmtplib.SMTPServerDisconnected("gone"), SendOutcome.UNKNOWN),
        (aiosmtplib.SMTPDataError(554, "spam"), SendOutcome.FAILED),
        (aiosmtplib.SMTPDataError(451, "try later"), SendOutcome.RETRY),
        (aiosmtplib.SMTPSenderRefused(553, "not your address", "x@y.test"), SendOutcome.FAILED),
        (ConnectionResetError("reset"), SendOutcome.RETRY),
    ],
)
def test_smtp_failure_maps_to_an_outcome(exc: Exception, outcome: SendOutcome) -> None:
    result = send_result_for(exc)

    assert result.outcome == outcome
    assert result.error_code and result.reason


def test_an_unexpected_error_is_not_hidden() -> None:
    with pytest.raises(KeyError):
        send_result_for(KeyError("bug"))
