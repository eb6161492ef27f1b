"""Server-rendered SVG charts: round axis steps, escaped labels."""

from __future__ import annotations

from admin_web.charts import line, nice_top, stacked_bars


def test_axis_top_divides_into_round_steps() -> None:
    assert [nice_top(v) for v in (0, 4, 5, 10, 59, 101)] == [4, 4, 8, 12, 80, 120]


def test_labels_are_escaped() -> None:
    svg = stacked_bars(["<b>"], {"<script>": [1]}, "t")
    assert "<script>" not in svg and "&lt;script&gt;" in svg


def test_line_leaves_gaps_for_missing_days() -> None:
    svg = line(["a", "b", "c", "d"], [1.0, 2.0, None, 3.0], "t", "m")
    assert svg.count("<polyline") == 1 and svg.count("<circle") == 3
