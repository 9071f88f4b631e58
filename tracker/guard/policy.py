"""Launch guardrails' policy: the modes, the override tag, ``[guard]`` settings and the
refusal (docs/guardrails.md). Pure and light: the settings and the CLI parser import it."""

from __future__ import annotations

from dataclasses import dataclass

from tracker.errors import InputError, PolicyError

MODES = ("warn", "require-estimate", "refuse")
DEFAULT_MODE = "warn"
DEFAULT_OVERRIDE_TAG = "tracker:guard-override"


class GuardrailRefused(PolicyError):
    """A training job refused by a launch guardrail; no AWS call was made. Exit code 3."""


@dataclass(frozen=True)
class GuardSettings:
    """``[guard]``: the default mode, the override tag, and a mode per team."""

    mode: str = DEFAULT_MODE
    override_tag: str = DEFAULT_OVERRIDE_TAG
    teams: tuple[tuple[str, str], ...] = ()

    def mode_for(self, team: str, default: str | None = None) -> str:
        """The team's own mode, else ``default`` (install's ``mode``), else ``[guard] mode``."""
        return dict(self.teams).get(team) or default or self.mode


def check_mode(mode: str, option: str = "mode") -> str:
    """``mode`` when it is one of MODES; InputError naming the choices otherwise."""
    if mode not in MODES:
        raise InputError(f"{option} {mode!r}: expected one of {', '.join(MODES)}")
    return mode
