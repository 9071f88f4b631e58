"""The few exceptions the tracker raises on purpose.

The CLI turns every TrackerError into one line, ``Error: ...``, and an exit code:
2 for input the user can fix (config, arguments, files), 1 for runtime failures.

It also holds :func:`printable`, the one rule for showing text users control on one line
(errors and every output's labels): the base layer, so every layer above can use it.
"""

import unicodedata


class TrackerError(Exception):
    """A failure the user should read as one line."""

    exit_code = 1


class InputError(TrackerError):
    """Bad input the user can fix: arguments, files, values."""

    exit_code = 2


class ConfigError(InputError):
    """One or more problems in the configuration file, all reported at once."""

    def __init__(self, path: str, problems: list[str]):
        self.path = path
        self.problems = [printable(p) for p in problems]
        super().__init__("; ".join(f"{printable(path)}: {p}" for p in self.problems))


#: Unicode categories shown as escapes: controls (C0, C1: newline, tab, NUL, ANSI escapes),
#: format characters (bidi marks, embeddings, overrides and isolates, zero-width joiners),
#: the line and paragraph separators, and lone surrogates (a file name that is not UTF-8,
#: which no output could write).
ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def printable(text: str) -> str:
    """``text`` on one line, as people read it: control and format characters as escapes.

    The one rule for every value users control, wherever it is shown: error messages (a
    newline in a TOML key, a NUL in a file name), every label of every format people read
    (text table, Markdown, HTML, CSV, chart titles, ticks, legends and tooltips, SVG and PNG
    alike: tracker.report.render and tracker.report.charts), the dashboard's pages (the
    ``printable`` Jinja filter). U+202E (right-to-left override) reads ``\\u202e``, a
    newline ``\\u000a``, NUL ``\\u0000``; a character beyond U+FFFF ``\\U000e0001``.
    Nothing is lost or reordered: the text reads as its characters in the order they were
    typed. JSON alone carries values exactly (see :mod:`tracker.report.render`).
    """
    if text.isprintable():
        return text
    return "".join(_escaped(ch) for ch in text)


def _escaped(ch: str) -> str:
    if unicodedata.category(ch) not in ESCAPED_CATEGORIES:
        return ch
    code = ord(ch)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


class PriceBookError(InputError):
    """A price book or overrides file that cannot be read."""


class StoreError(TrackerError):
    """The database cannot be opened or written."""


class PolicyError(TrackerError):
    """Refused by a policy (a launch guardrail): the CLI's exit code 3."""

    exit_code = 3
