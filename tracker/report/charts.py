"""Charts of report views: one layout, drawn as inline SVG or as PNG.

A :class:`Chart` is data only. :func:`layout` places it once on a pixel canvas as a
:class:`Drawing` of a few shapes (rectangles, lines, text, polylines, dots); the SVG output
is that drawing through a Jinja2 template with autoescape on (labels are tag values, which
come from users), and the PNG output is the same drawing painted by matplotlib, imported
only when a PNG is wanted, with every text drawn literally (no mathtext).

Every text a drawing holds (the title, tick labels, legend entries, tooltips) is shown as
:func:`tracker.errors.printable` by the shapes themselves: a newline, NUL or C0/C1
control, or a bidi override such as U+202E in a tag value reads ``\\u202e`` in the SVG, the
PNG and the dashboard alike, exactly as in the text table; no label is split or reversed.
Labels are cut to their room (``...``) before they are escaped, so no escape is cut in half.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from tracker.errors import printable
from tracker.extras import require
from tracker.records import format_usd
from tracker.report.templating import environment

if TYPE_CHECKING:
    from matplotlib.figure import Figure

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


# -- layout -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    fill: str
    tip: str = ""
    shape: str = "rect"

    def __post_init__(self) -> None:
        _show(self, "tip")


@dataclass(frozen=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    stroke: str
    shape: str = "line"


@dataclass(frozen=True)
class Text:
    """``anchor`` is start, middle or end; ``y`` is the baseline; ``rotate`` in degrees."""

    x: float
    y: float
    text: str
    size: int = 10
    anchor: str = "start"
    bold: bool = False
    fill: str = "#222"
    tip: str = ""
    rotate: int = 0
    shape: str = "text"

    def __post_init__(self) -> None:
        _show(self, "text", "tip")


@dataclass(frozen=True)
class Polyline:
    points: tuple[tuple[float, float], ...]
    stroke: str
    shape: str = "polyline"


@dataclass(frozen=True)
class Dot:
    x: float
    y: float
    r: float
    fill: str
    tip: str = ""
    shape: str = "dot"

    def __post_init__(self) -> None:
        _show(self, "tip")


Shape = Rect | Line | Text | Polyline | Dot


@dataclass(frozen=True)
class Drawing:
    """A chart placed on a ``width`` x ``height`` pixel canvas, y growing downwards."""

    title: str
    width: int
    height: int
    shapes: tuple[Shape, ...]

    def __post_init__(self) -> None:
        _show(self, "title")


def _show(shape: object, *names: str) -> None:
    """Replace the named text fields of a frozen shape by their :func:`printable` form."""
    for name in names:
        object.__setattr__(shape, name, printable(getattr(shape, name)))


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


def _axis_label(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:,.1f}M"
    if value >= 10_000:
        return f"{value / 1000:,.0f}k"
    if value >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def _tip(label: str, name: str | None, value: Decimal, unit: str) -> str:
    who = f"{label} \u00b7 {name}" if name is not None else label
    return f"{who}: {format_usd(value)} {unit}"


def layout(chart: Chart, width: int = 760, height: int = 320) -> Drawing:
    """Place ``chart`` on a canvas (empty charts say so in words)."""
    if chart.empty:
        words = Text(8, 34, f"{chart.title}: nothing to chart in this window.", 13, fill="#555")
        return Drawing(chart.title, width, 60, (words,))
    if chart.kind == "hbar":
        return _hbar(chart, width)
    return _vertical(chart, width, height)


def _vertical(chart: Chart, width: int, height: int) -> Drawing:
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

    shapes = _frame(chart, left, top, plot_w, plot_h, top_value, step, y_of)
    slot = plot_w / len(chart.labels)
    shapes += (
        _lines(chart, left, slot, y_of) if chart.kind == "line" else _bars(chart, left, slot, y_of)
    )
    every = max(1, math.ceil(len(chart.labels) / max(1, plot_w // 70)))
    for i, label in enumerate(chart.labels):
        if i % every == 0:
            x = left + slot * (i + 0.5)
            shapes.append(Text(x, top + plot_h + 16, _short(label, 12), anchor="middle", tip=label))
    shapes += _legend(chart, width - right + 12, top)
    return Drawing(chart.title, width, height, tuple(shapes))


def _frame(
    chart: Chart,
    left: int,
    top: int,
    plot_w: int,
    plot_h: int,
    top_value: float,
    step: float,
    y_of: Callable[[float], float],
) -> list[Shape]:
    shapes: list[Shape] = [Text(left, 16, chart.title, 13, bold=True)]
    for k in range(int(round(top_value / step)) + 1):
        y = y_of(step * k)
        shapes.append(Line(left, y, left + plot_w, y, "#e3e3e3"))
        shapes.append(Text(left - 6, y + 4, _axis_label(step * k), anchor="end"))
    shapes.append(Text(12, top + plot_h / 2, chart.unit, anchor="middle", rotate=-90))
    shapes.append(Line(left, top + plot_h, left + plot_w, top + plot_h, "#888"))
    return shapes


def _bars(chart: Chart, left: int, slot: float, y_of: Callable[[float], float]) -> list[Shape]:
    shapes: list[Shape] = []
    stacked = chart.kind == "stacked"
    bar_w = slot * 0.7 / (1 if stacked else len(chart.series))
    for i, label in enumerate(chart.labels):
        running = 0.0
        for j, one in enumerate(chart.series):
            value = float(one.values[i])
            if value <= 0:
                continue
            x = left + slot * i + slot * 0.15 + (0 if stacked else j * bar_w)
            y_top = y_of(running + value) if stacked else y_of(value)
            y_bottom = y_of(running) if stacked else y_of(0)
            running += value if stacked else 0
            shapes.append(
                Rect(x, y_top, bar_w, max(0.5, y_bottom - y_top), PALETTE[j % len(PALETTE)],
                     _tip(label, one.name, one.values[i], chart.unit))
            )  # fmt: skip
    return shapes


def _lines(chart: Chart, left: int, slot: float, y_of: Callable[[float], float]) -> list[Shape]:
    shapes: list[Shape] = []
    for j, one in enumerate(chart.series):
        colour = PALETTE[j % len(PALETTE)]
        points = tuple((left + slot * (i + 0.5), y_of(float(v))) for i, v in enumerate(one.values))
        shapes.append(Polyline(points, colour))
        for (x, y), label, value in zip(points, chart.labels, one.values, strict=True):
            shapes.append(Dot(x, y, 2.5, colour, _tip(label, one.name, value, chart.unit)))
    return shapes


def _legend(chart: Chart, x: int, y: int) -> list[Shape]:
    if len(chart.series) == 1 and chart.kind != "line":
        return []
    shapes: list[Shape] = []
    for i, one in enumerate(chart.series):
        row_y = y + i * 16
        shapes.append(Rect(x, row_y, 10, 10, PALETTE[i % len(PALETTE)]))
        shapes.append(Text(x + 14, row_y + 9, _short(one.name, 22), 11, tip=one.name))
    return shapes


def _hbar(chart: Chart, width: int) -> Drawing:
    left, right, top, row_h = 230, 90, 28, 22
    height = top + row_h * len(chart.labels) + 12
    values = chart.series[0].values
    top_value, _ = nice_ceiling(max(float(v) for v in values))
    plot_w = width - left - right
    shapes: list[Shape] = [Text(8, 16, chart.title, 13, bold=True)]
    for i, (label, value) in enumerate(zip(chart.labels, values, strict=True)):
        y = top + i * row_h
        bar = plot_w * float(value) / top_value if value > 0 else 0
        shapes.append(Text(left - 6, y + 14, _short(label, 34), 11, anchor="end", tip=label))
        shapes.append(
            Rect(
                left,
                y + 3,
                max(0.5, bar),
                row_h - 6,
                PALETTE[0],
                _tip(label, None, value, chart.unit),
            )
        )
        shapes.append(Text(left + bar + 4, y + 14, format_usd(value)))
    return Drawing(chart.title, width, height, tuple(shapes))


# -- SVG -----------------------------------------------------------------------------------
def svg(chart: Chart) -> str:
    """The chart as a standalone inline ``<svg>`` element, every label escaped."""
    return str(environment().get_template("chart.svg.j2").module.svg(layout(chart)))


# -- PNG -----------------------------------------------------------------------------------
ANCHORS = {"start": "left", "middle": "center", "end": "right"}


def figure(chart: Chart, dpi: int = 100) -> Figure:
    """The chart's drawing painted on a matplotlib figure; every text is literal (no mathtext)."""
    require("charts", "--format png")
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle, Rectangle

    drawing = layout(chart)
    fig = Figure(figsize=(drawing.width / dpi, drawing.height / dpi), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, drawing.width)
    ax.set_ylim(drawing.height, 0)
    ax.set_axis_off()
    points = 72 / dpi  # SVG sizes are pixels; matplotlib's are points
    for shape in drawing.shapes:
        if isinstance(shape, Rect):
            ax.add_patch(Rectangle((shape.x, shape.y), shape.width, shape.height, color=shape.fill))
        elif isinstance(shape, Line):
            ax.plot([shape.x1, shape.x2], [shape.y1, shape.y2], color=shape.stroke, linewidth=1)
        elif isinstance(shape, Polyline):
            xs, ys = zip(*shape.points, strict=True)
            ax.plot(xs, ys, color=shape.stroke, linewidth=2)
        elif isinstance(shape, Dot):
            ax.add_patch(Circle((shape.x, shape.y), shape.r, color=shape.fill))
        else:
            # parse_math=False: a tag value such as "$x$" is shown as typed, never as math.
            ax.text(shape.x, shape.y, shape.text, fontsize=shape.size * points,
                    ha=ANCHORS[shape.anchor], va="baseline", rotation=-shape.rotate,
                    rotation_mode="anchor", color=shape.fill,
                    fontweight="bold" if shape.bold else "normal", parse_math=False)  # fmt: skip
    return fig


def png(chart: Chart, dpi: int = 100) -> bytes:
    """The chart as PNG bytes: the same drawing as the SVG."""
    buffer = io.BytesIO()
    figure(chart, dpi).savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()
