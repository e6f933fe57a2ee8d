"""Error types. Every error a user can cause is a `NASError` with a message a person understands."""

from __future__ import annotations

import importlib
from types import ModuleType


class NASError(Exception):
    """Base class of the errors this package raises for bad input."""


class InvalidArchitectureError(NASError, ValueError):
    """An architecture does not belong to the space: the message names the bad choice."""


class InvalidOptionError(NASError, ValueError):
    """A constructor or configuration option is unknown or out of range."""


class UnknownNameError(NASError, KeyError):
    """A name (space, evaluator, strategy) is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class PluginError(NASError):
    """A plugin cannot be imported: the message names the plugin, where it was given and the import error."""


class WorkerSetupError(NASError):
    """A worker cannot create a search's component (its plugin is missing there, its constructor raises): the
    message names the component and where plugins come from."""


class MissingDataError(NASError, FileNotFoundError):
    """A data set or table is missing or malformed: the message names the paths tried and what belongs there."""


class MissingExtraError(NASError, ImportError):
    """An optional dependency is not installed: the message names the extra that provides it."""


class StoreError(NASError):
    """The result store cannot be used (unreachable, locked, damaged): the message names the storage and why."""


class RunLockedError(NASError):
    """Another search holds the run's lease: the message names the holder (host, pid, since when)."""


class ExportMismatchError(NASError):
    """An exported model's outputs differ from the PyTorch module's: the message gives the largest difference."""


def import_extra(name: str, extra: str, purpose: str) -> ModuleType:
    """Import the module ``name`` of the optional dependencies ``extra`` (e.g. ``export``), or raise
    `MissingExtraError` saying what it is needed for and what to install."""
    try:
        return importlib.import_module(name)
    except ImportError as err:
        top = name.split(".")[0]
        raise MissingExtraError(
            f"{top} is not installed; install the {extra} extra for {purpose}: pip install 'nas-pareto[{extra}]'"
        ) from err
