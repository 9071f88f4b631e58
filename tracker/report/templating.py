"""The Jinja2 environment of every HTML page and SVG chart: templates are package files.

Autoescape is on for every template, so values users control (tag values) render as text;
no caller marks markup safe. Other faces (the dashboard) add their own template folder
in front of this one and extend ``page.html.j2``.
"""

from __future__ import annotations

from functools import cache

from jinja2 import BaseLoader, ChoiceLoader, Environment, PackageLoader

from tracker.records import format_usd


@cache
def environment(*loaders: BaseLoader) -> Environment:
    """An autoescaping environment over ``loaders`` and then tracker/report/templates."""
    env = Environment(
        loader=ChoiceLoader([*loaders, PackageLoader("tracker.report", "templates")]),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["usd"] = format_usd
    env.filters["px"] = px
    return env


def px(value: float) -> str:
    """An SVG coordinate to a tenth of a pixel, without a trailing ``.0``."""
    return f"{value:.1f}".removesuffix(".0")
