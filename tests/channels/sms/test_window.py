"""The marketing window: default 08:00–21:00 Asia/Shanghai, Tencent clipped to 08–22."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from channels.sms.window import marketing_window


def test_default_window_is_eight_to_nine_beijing_time() -> None:
    window = marketing_window({})
    assert window.allows(datetime(2026, 11, 23, 0, 0, tzinfo=UTC))  # 08:00 in Shanghai
    assert not window.allows(datetime(2026, 11, 23, 13, 0, tzinfo=UTC))  # 21:00
    assert window.next_open(datetime(2026, 11, 23, 14, 0, tzinfo=UTC)) == datetime(
        2026, 11, 24, 0, 0, tzinfo=UTC
    )


def test_tencent_cannot_be_widened_past_its_own_window() -> None:
    window = marketing_window(
        {"marketing_window": {"start": "07:00", "end": "23:00"}}, "sms.tencent"
    )
    assert (window.start, window.end) == (time(8), time(22))


def test_bad_window_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="before end"):
        marketing_window({"marketing_window": {"start": "21:00", "end": "08:00"}})
