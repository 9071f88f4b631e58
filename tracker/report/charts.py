"""Charts of report views: inline SVG (no script, no network) and PNG through matplotlib.

A :class:`Chart` is data only; :func:`svg` draws it as a self-contained ``<svg>`` element
whose every label is escaped (labels are tag values, which come from users), and
:func:`png` draws the same chart with matplotlib, imported only when a PNG is wanted.
"""

from __future__ import annotations

import html
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from tracker.errors import InputError

KINDS = ("bar", "stacked", "hbar", "line")
PALETTE = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
)  # fmt: skip
MAX_SERIES = 8
OTHER = "other"


@dataclass(frozen=True)
class Series:
    """One named line or set of bars; values line up with the chart's labels."""

    name: str
    values: tuple[Decimal, ...]


@dataclass(frozen=True)
class Chart:
    """What to draw: ``kind`` is bar, stacked (bars per label, one segment per series),
    hbar (horizontal bars, for long labels such as job names) or line."""

    kind: str
    title: str
    labels: tuple[str, ...]
    series: tuple[Series, ...]
    unit: str = "USD"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"chart kind {self.kind!r}: expected one of {', '.join(KINDS)}")
        for one in self.series:
            if len(one.values) != len(self.labels):
                raise ValueError(
                    f"series {one.name!r} has {len(one.values)} values for {len(self.labels)} labels"
                )

    @property
    def empty(self) -> bool:
        return not self.labels or not any(v for s in self.series for v in s.values)


def keep_largest(series: Sequence[Series], limit: int = MAX_SERIES) -> tuple[Series, ...]:
    """The ``limit - 1`` largest series by total and one ``other`` series summing the rest."""
    ranked = sorted(series, key=lambda s: (-sum(s.values, Decimal(0)), s.name))
    if len(ranked) <= limit:
        return tuple(ranked)
    kept, rest = ranked[: limit - 1], ranked[limit - 1 :]
    summed = tuple(
        sum(values, Decimal(0)) for values in zip(*(s.values for s in rest), strict=True)
    )
    return (*kept, Series(OTHER, summed))


# -- SVG -----------------------------------------------------------------------------------
def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def nice_ceiling(value: float) -> tuple[float, float]:
    """(axis maximum, tick step) with a 1-2-5 step and about five ticks."""
    if value <= 0:
        return 1.0, 0.2
    raw = value / 5
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return step * math.ceil(value / step - 1e-9), step


def _money_label(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:,.1f}M"
    if value >= 10_000:
        return f"{value / 1000:,.0f}k"
    if value >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def svg(chart: Chart, width: int = 760, height: int = 320) -> str:
    """The chart as an inline ``<svg>`` element (empty charts say so in words)."""
    title = _esc(chart.title)
    if chart.empty:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{title}" '
            f'width="{width}" height="60" viewBox="0 0 {width} 60"><title>{title}</title>'
            f'<text x="8" y="34" font-size="13" fill="#555">{title}: nothing to chart in this window.</text></svg>'
        )
    if chart.kind == "hbar":
        return _svg_hbar(chart, width)
    return _svg_vertical(chart, width, height)


def _legend(chart: Chart, x: int, y: int) -> list[str]:
    out = []
    for i, one in enumerate(chart.series):
        if len(chart.series) == 1 and chart.kind != "line":
            break
        colour = PALETTE[i % len(PALETTE)]
        row_y = y + i * 16
        out.append(f'<rect x="{x}" y="{row_y}" width="10" height="10" fill="{colour}"/>')
        out.append(
            f'<text x="{x + 14}" y="{row_y + 9}" font-size="11">{_esc(_short(one.name, 22))}'
            f"<title>{_esc(one.name)}</title></text>"
        )
    return out


def _svg_vertical(chart: Chart, width: int, height: int) -> str:
    left, right, top, bottom = 64, 170, 28, 56
    plot_w, plot_h = width - left - right, height - top - bottom
    if chart.kind == "stacked":
        peak = max(
            float(sum(col, Decimal(0)))
            for col in zip(*(s.values for s in chart.series), strict=True)
        )
    else:
        peak = max(float(v) for s in chart.series for v in s.values)
    top_value, step = nice_ceiling(peak)

    def y_of(value: float) -> float:
        return top + plot_h - plot_h * value / top_value

    parts = _frame(chart, width, height, left, top, plot_w, plot_h, top_value, step, y_of)
    slot = plot_w / len(chart.labels)
    if chart.kind == "line":
        parts += _lines(chart, left, slot, y_of)
    else:
        parts += _bars(chart, left, slot, y_of)
    every = max(1, math.ceil(len(chart.labels) / max(1, plot_w // 70)))
    for i, label in enumerate(chart.labels):
        if i % every:
            continue
        x = left + slot * (i + 0.5)
        parts.append(
            f'<text x="{x:.1f}" y="{top + plot_h + 16}" font-size="10" text-anchor="middle">'
            f"{_esc(_short(label, 12))}<title>{_esc(label)}</title></text>"
        )
    parts += _legend(chart, width - right + 12, top)
    return "".join(parts) + "</svg>"


def _frame(chart, width, height, left, top, plot_w, plot_h, top_value, step, y_of) -> list[str]:  # noqa: ANN001
    title = _esc(chart.title)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{title}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif">',
        f"<title>{title}</title>",
        f'<text x="{left}" y="16" font-size="13" font-weight="bold">{title}</text>',
    ]
    ticks = int(round(top_value / step))
    for k in range(ticks + 1):
        value = step * k
        y = y_of(value)
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e3e3"/>'
        )
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{_money_label(value)}</text>'
        )
    parts.append(
        f'<text x="12" y="{top + plot_h / 2:.0f}" font-size="10" transform="rotate(-90 12 {top + plot_h / 2:.0f})" '
        f'text-anchor="middle">{_esc(chart.unit)}</text>'
    )
    parts.append(
        f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#888"/>'
    )
    return parts


def _bars(chart: Chart, left: int, slot: float, y_of) -> list[str]:  # noqa: ANN001
    parts = []
    base = y_of(0)
    stacked = chart.kind == "stacked"
    groups = 1 if stacked else len(chart.series)
    bar_w = slot * 0.7 / groups
    for i, label in enumerate(chart.labels):
        running = 0.0
        for j, one in enumerate(chart.series):
            value = float(one.values[i])
            if value <= 0:
                continue
            colour = PALETTE[j % len(PALETTE)]
            x = left + slot * i + slot * 0.15 + (0 if stacked else j * bar_w)
            y_top = y_of(running + value) if stacked else y_of(value)
            y_bottom = y_of(running) if stacked else base
            running += value if stacked else 0
            parts.append(
                f'<rect x="{x:.1f}" y="{y_top:.1f}" width="{bar_w:.1f}" height="{max(0.5, y_bottom - y_top):.1f}" '
                f'fill="{colour}"><title>{_esc(label)} \u00b7 {_esc(one.name)}: {one.values[i]:,.2f} {_esc(chart.unit)}</title></rect>'
            )
    return parts


def _lines(chart: Chart, left: int, slot: float, y_of) -> list[str]:  # noqa: ANN001
    parts = []
    for j, one in enumerate(chart.series):
        colour = PALETTE[j % len(PALETTE)]
        points = [(left + slot * (i + 0.5), y_of(float(v))) for i, v in enumerate(one.values)]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        for (x, y), label, value in zip(points, chart.labels, one.values, strict=True):
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colour}"><title>{_esc(label)} \u00b7 '
                f"{_esc(one.name)}: {value:,.2f} {_esc(chart.unit)}</title></circle>"
            )
    return parts


def _svg_hbar(chart: Chart, width: int) -> str:
    left, right, top, row_h = 230, 90, 28, 22
    height = top + row_h * len(chart.labels) + 12
    values = chart.series[0].values
    peak = max(float(v) for v in values)
    top_value, _ = nice_ceiling(peak)
    plot_w = width - left - right
    title = _esc(chart.title)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{title}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif">',
        f"<title>{title}</title>",
        f'<text x="8" y="16" font-size="13" font-weight="bold">{title}</text>',
    ]
    for i, (label, value) in enumerate(zip(chart.labels, values, strict=True)):
        y = top + i * row_h
        bar = plot_w * float(value) / top_value if value > 0 else 0
        parts.append(
            f'<text x="{left - 6}" y="{y + 14}" font-size="11" text-anchor="end">{_esc(_short(label, 34))}'
            f"<title>{_esc(label)}</title></text>"
        )
        parts.append(
            f'<rect x="{left}" y="{y + 3}" width="{max(0.5, bar):.1f}" height="{row_h - 6}" fill="{PALETTE[0]}">'
            f"<title>{_esc(label)}: {value:,.2f} {_esc(chart.unit)}</title></rect>"
        )
        parts.append(
            f'<text x="{left + bar + 4:.1f}" y="{y + 14}" font-size="10">{value:,.2f}</text>'
        )
    return "".join(parts) + "</svg>"


# -- PNG -----------------------------------------------------------------------------------
def png(chart: Chart, width_in: float = 10.0, height_in: float = 4.8, dpi: int = 100) -> bytes:
    """The chart as PNG bytes, drawn by matplotlib (imported here, on first use)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError(
            "--format png: matplotlib is not installed; pip install matplotlib"
        ) from None
    if chart.kind == "hbar":
        height_in = max(height_in, 0.35 * len(chart.labels) + 1.2)
    fig, ax = plt.subplots(figsize=(width_in, height_in), dpi=dpi)
    try:
        _draw(ax, chart)
        ax.set_title(chart.title)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", metadata={"Software": None})
        return buffer.getvalue()
    finally:
        plt.close(fig)


def _draw(ax, chart: Chart) -> None:  # noqa: ANN001
    # Text is set with usetex off and "$" escaped so a tag value is never parsed as mathtext.
    labels = [_plain(_short(label, 40)) for label in chart.labels]
    if chart.empty:
        ax.text(
            0.5,
            0.5,
            "nothing to chart in this window",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
        ax.set_axis_off()
        return
    positions = range(len(labels))
    if chart.kind == "hbar":
        values = [float(v) for v in chart.series[0].values]
        ax.barh(list(positions), values, color=PALETTE[0])
        ax.set_yticks(list(positions), labels)
        ax.invert_yaxis()
        ax.set_xlabel(chart.unit)
        return
    if chart.kind == "line":
        for j, one in enumerate(chart.series):
            ax.plot(list(positions), [float(v) for v in one.values], label=_plain(one.name),
                    color=PALETTE[j % len(PALETTE)], marker="o", markersize=3)  # fmt: skip
    else:
        bottom = [0.0] * len(labels)
        groups = 1 if chart.kind == "stacked" else len(chart.series)
        width = 0.8 / groups
        for j, one in enumerate(chart.series):
            values = [float(v) for v in one.values]
            if chart.kind == "stacked":
                ax.bar(list(positions), values, 0.7, bottom=bottom, label=_plain(one.name),
                       color=PALETTE[j % len(PALETTE)])  # fmt: skip
                bottom = [b + v for b, v in zip(bottom, values, strict=True)]
            else:
                offsets = [p - 0.4 + width * (j + 0.5) for p in positions]
                ax.bar(
                    offsets, values, width, label=_plain(one.name), color=PALETTE[j % len(PALETTE)]
                )
    every = max(1, math.ceil(len(labels) / 16))
    ax.set_xticks(
        list(positions)[::every], labels[::every], rotation=45 if len(labels) > 6 else 0, ha="right"
    )
    ax.set_ylabel(chart.unit)
    if len(chart.series) > 1 or chart.kind == "line":
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))


def _plain(text: str) -> str:
    return text.replace("$", r"\$")
