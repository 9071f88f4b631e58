"""The one rule for showing a label people read: control and format characters as escapes.

The rule itself is :func:`tracker.errors.printable` (the base layer: error messages follow
it too). Every value users control (tag values, job names, pivot column names) that an
output shows as text goes through it: the text table, Markdown, HTML, CSV
(tracker.report.render), every text of a chart, SVG and PNG alike (tracker.report.charts),
and every label of the HTML templates (the ``printable`` filter of
tracker.report.templating). This module names it for the rendering layer.
"""

from __future__ import annotations

from tracker.errors import ESCAPED_CATEGORIES, printable

__all__ = ["ESCAPED_CATEGORIES", "printable"]
