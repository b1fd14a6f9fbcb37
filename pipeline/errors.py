"""The errors siftline reports to its users, in one leaf module that every layer may import.

A `ConfigError` is raised before any work starts (or as soon as a problem is known) and names
the offending key, file or document; the CLI prints it as one `error:` line and exits 2.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration problem, raised before any work starts."""


class ConfigMismatch(ConfigError):
    """A folder holds a result built with another config: reuse is refused, and `--overwrite`
    replaces it (callers decide by this type, never by the message)."""


class InputError(ValueError):
    """An input that cannot be planned: missing, unreadable or of an unknown format."""


class StageError(ConfigError):
    """A stage broke its contract or raised: names the stage, the input file and a document."""


class AccountingError(RuntimeError):
    """The counts of a run do not add up: a record was lost or counted twice."""
