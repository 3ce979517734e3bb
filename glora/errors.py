"""The errors a user can fix: bad configuration, data, weights files, a full disk.

Each message names the offending file (and line), key or option, and says how to fix it. ``python -m glora``
prints a :class:`GloraError` as one ``error: ...`` line on stderr and exits with code 2; any other exception is
a bug and keeps its traceback. Every class but :class:`DiskFullError` is also a ``ValueError`` (what the library
raised before these classes existed), so ``except ValueError`` in user code keeps working.

This module imports nothing from the package: every module may raise these.
"""

from __future__ import annotations

from collections.abc import Sequence

#: problems listed in one message; the rest are counted
MAX_SHOWN = 50


class GloraError(Exception):
    """Bad input or environment that the user can fix; the message names the file/line/key and the fix."""

    exit_code = 2


class ConfigError(GloraError, ValueError):
    """A configuration file, a ``--set`` override, a command-line option or a method option is wrong."""


class DataError(GloraError, ValueError):
    """Problems with a dataset on disk: the message names each file (and line) and how to obtain the data."""

    def __init__(self, problems: str | Sequence[str], hint: str = ""):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        lines = self.problems[:1] if len(self.problems) == 1 else (
            [f"{len(self.problems)} problems:"] + [f"  {p}" for p in self.problems[:MAX_SHOWN]])
        if len(self.problems) > MAX_SHOWN:
            lines.append(f"  ... and {len(self.problems) - MAX_SHOWN} more")
        if hint:
            lines.append(hint)
        super().__init__("\n".join(lines))


class WeightsError(GloraError, ValueError):
    """A weights file, checkpoint or what travels with it (an export's ``card.json``, a search's ``best.json``)
    is missing, unreadable, or does not fit the model the configuration builds."""


class DiskFullError(GloraError, OSError):
    """No space (or quota) left while writing an output; the message names the file, which was not replaced."""
