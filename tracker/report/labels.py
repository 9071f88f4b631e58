"""The one rule for showing a label people read: control and format characters as escapes.

Every value users control (tag values, job names, pivot column names) that an output shows as
text goes through :func:`printable`: the text table, Markdown, HTML, CSV (tracker.report.render)
and every text of a chart, SVG and PNG alike (tracker.report.charts). A module of its own, so
the Table model, the renderers and the charts share it without importing each other.
"""

from __future__ import annotations

import unicodedata

#: Unicode categories shown as escapes: controls (C0, C1: newline, tab, NUL, ANSI escapes),
#: format characters (bidi marks, embeddings, overrides and isolates, zero-width joiners)
#: and the line and paragraph separators.
ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})


def printable(text: str) -> str:
    """``text`` as every output shows a label: control and format characters as escapes.

    The one rule for every value users control (tag values, job names, column names from
    pivots) in every format people read: the text table, Markdown, HTML, CSV, chart titles,
    tick labels, legend entries and tooltips of the SVG and PNG charts. U+202E (right-to-left
    override) reads ``\\u202e``, a newline ``\\u000a``, NUL ``\\u0000``; a character beyond
    U+FFFF ``\\U000e0001``. Nothing is lost or reordered: the label reads as its characters
    in the order they were typed, on one line. JSON alone carries values exactly (see
    :mod:`tracker.report.render`).
    """
    if text.isprintable():
        return text
    return "".join(_escaped(ch) for ch in text)


def _escaped(ch: str) -> str:
    if unicodedata.category(ch) not in ESCAPED_CATEGORIES:
        return ch
    code = ord(ch)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
