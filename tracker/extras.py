"""Optional dependencies: each command that needs an extra asks here first.

The base install is what a production collector needs; the web dashboard, PNG charts, the
demo's simulated AWS and the PostgreSQL driver are extras. A command whose extra is missing
stops with one line naming the pip command that installs it, instead of a traceback.
"""

from __future__ import annotations

import importlib

from tracker.errors import InputError

DISTRIBUTION = "sagemaker-spend-tracker"
# The third-party modules each extra provides, as the code imports them.
EXTRAS: dict[str, tuple[str, ...]] = {
    "web": ("fastapi", "uvicorn"),
    "charts": ("matplotlib.figure",),
    "demo": ("moto.server",),
    "postgres": ("psycopg",),
}


class MissingExtra(InputError):
    """An optional dependency is not installed."""


def install_hint(extra: str) -> str:
    return f"pip install '{DISTRIBUTION}[{extra}]'"


def require(extra: str, what: str) -> None:
    """Import the modules of ``extra`` or raise MissingExtra: ``<what> needs the <extra>
    extra: pip install '...[<extra>]'``. ``what`` names the command or option."""
    for module in EXTRAS[extra]:
        try:
            importlib.import_module(module)
        except ImportError:
            # A broken or partial install of the extra has the same fix as a missing one.
            raise MissingExtra(f"{what} needs the {extra} extra: {install_hint(extra)}") from None
