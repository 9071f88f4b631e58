"""The Jinja2 environment of every HTML page and SVG chart: templates are package files.

Autoescape is on for every template, so values users control (tag values) render as text;
no caller marks markup safe. Autoescape stops markup, not control or bidi characters: every
label a template prints goes through the ``printable`` filter (:func:`label`, the one rule of
:func:`tracker.errors.printable`), so a tag value holding U+202E or a newline shows as
``\\u202e`` or ``\\u000a`` on every page, as in every other format. Other faces (the dashboard) add their own template folder
in front of this one and extend ``page.html.j2``.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from tracker.errors import printable
from tracker.records import format_usd

if TYPE_CHECKING:  # Jinja2 loads on first use: a JSON or CSV report never renders a template
    from jinja2 import BaseLoader, Environment


@cache
def environment(*loaders: BaseLoader) -> Environment:
    """An autoescaping environment over ``loaders`` and then tracker/report/templates."""
    from jinja2 import ChoiceLoader, Environment, PackageLoader

    env = Environment(
        loader=ChoiceLoader([*loaders, PackageLoader("tracker.report", "templates")]),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["usd"] = format_usd
    env.filters["px"] = px
    env.filters["printable"] = label
    return env


def label(value: object) -> str:
    """The ``printable`` filter: any value as text on one line (None as nothing), control
    and format characters as escapes (:func:`tracker.errors.printable`)."""
    return "" if value is None else printable(str(value))


def px(value: float) -> str:
    """An SVG coordinate to a tenth of a pixel, without a trailing ``.0``."""
    return f"{value:.1f}".removesuffix(".0")
