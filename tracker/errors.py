"""The few exceptions the tracker raises on purpose.

The CLI turns every TrackerError into one line, ``Error: ...``, and an exit code:
2 for input the user can fix (config, arguments, files), 1 for runtime failures.
"""


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
        self.problems = [one_line(p) for p in problems]
        super().__init__("; ".join(f"{one_line(path)}: {p}" for p in self.problems))


def one_line(text: str) -> str:
    """``text`` with control characters escaped (a newline in a TOML key, say): one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class PriceBookError(InputError):
    """A price book or overrides file that cannot be read."""


class StoreError(TrackerError):
    """The database cannot be opened or written."""
