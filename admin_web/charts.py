"""Server-rendered SVG charts: no script, nothing fetched at run time."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from markupsafe import Markup, escape

PALETTE = ("#2563eb", "#16a34a", "#ea580c", "#9333ea", "#0891b2", "#dc2626", "#ca8a04")
W, H, PAD_L, PAD_R, PAD_B, PAD_T = 640, 220, 44, 24, 28, 12
TICKS = 4


def nice_top(value: float) -> float:
    """An axis top of TICKS round steps (1, 2, 3 or 5 × 10^k each) at or above `value`,
    so the axis reads 0, 3, 6, 9, 12 and never 0, 2.5, 5 …"""
    raw = max(value, 1.0) / TICKS
    magnitude = 10 ** math.floor(math.log10(raw))
    for step in (1, 2, 3, 5, 10):
        if step * magnitude >= raw:
            return float(step * magnitude * TICKS) if step * magnitude >= 1 else float(TICKS)
    return float(10 * magnitude * TICKS)


def _axis(top: float) -> list[str]:
    parts = []
    for i in range(TICKS + 1):
        value = top * i / TICKS
        y = H - PAD_B - (H - PAD_B - PAD_T) * i / TICKS
        parts.append(
            f'<line x1="{PAD_L}" x2="{W - PAD_R}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{PAD_L - 6}" y="{y + 4:.1f}" text-anchor="end">{value:g}</text>'
        )
    return parts


def stacked_bars(labels: Sequence[str], series: Mapping[str, Sequence[int]], title: str) -> Markup:
    """Stacked bars: one bar per label, one colour per series (e.g. channel)."""
    totals = [sum(values[i] for values in series.values()) for i in range(len(labels))]
    top = nice_top(max([*totals, 1]))
    n = max(len(labels), 1)
    slot = (W - PAD_L - PAD_R) / n
    bar = max(slot * 0.7, 1)
    parts = [
        f'<svg viewBox="0 0 {W} {H + 24}" class="chart" role="img" aria-label="{escape(title)}">'
    ]
    parts += _axis(top)
    for i, label in enumerate(labels):
        x = PAD_L + 4 + i * slot
        y: float = H - PAD_B
        for s, (name, values) in enumerate(series.items()):
            h = (H - PAD_B - PAD_T) * values[i] / top
            if h > 0:
                y -= h
                parts.append(
                    f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                    f'fill="{PALETTE[s % len(PALETTE)]}"><title>{escape(name)} {escape(label)}: '
                    f"{values[i]}</title></rect>"
                )
        if n <= 16 or i % max(1, n // 8) == 0:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{H - 10}" text-anchor="middle">{escape(label)}</text>'
            )
    for s, name in enumerate(series):
        parts.append(
            f'<rect x="{PAD_L + s * 120}" y="{H + 6}" width="10" height="10" '
            f'fill="{PALETTE[s % len(PALETTE)]}"/><text x="{PAD_L + 14 + s * 120}" '
            f'y="{H + 15}">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704  (every value above is escaped)


def line(labels: Sequence[str], values: Sequence[float | None], title: str, unit: str) -> Markup:
    """A line over days; gaps where there is no value."""
    known = [v for v in values if v is not None]
    top = nice_top(max([*known, 1.0]))
    n = max(len(labels) - 1, 1)
    span = W - PAD_L - PAD_R - 8
    parts = [f'<svg viewBox="0 0 {W} {H}" class="chart" role="img" aria-label="{escape(title)}">']
    parts += _axis(top)
    points: list[str] = []
    for i, v in enumerate(values):
        x = PAD_L + 4 + span * i / n
        if v is None:
            if len(points) > 1:
                parts.append(f'<polyline points="{" ".join(points)}" class="line"/>')
            points = []
            continue
        y = H - PAD_B - (H - PAD_B - PAD_T) * v / top
        points.append(f"{x:.1f},{y:.1f}")
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" class="dot"><title>{escape(labels[i])}: '
            f"{v:.0f}{escape(unit)}</title></circle>"
        )
    if len(points) > 1:
        parts.append(f'<polyline points="{" ".join(points)}" class="line"/>')
    for i, label in enumerate(labels):
        if len(labels) <= 16 or i % max(1, len(labels) // 8) == 0:
            x = PAD_L + 4 + span * i / n
            parts.append(
                f'<text x="{x:.1f}" y="{H - 10}" text-anchor="middle">{escape(label)}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704  (every value above is escaped)
