"""Plugins: a user's own modules that register spaces, evaluators, strategies or predictors, imported by name.

A plugin is a module name (``mypkg.nas_plugin``, importable where the search runs) or the path of a Python file
(``./my_eval.py``, relative to the current directory). Plugins come from three places, imported in this order before
a config's components are looked up:

- the experiment config's ``plugins:`` list,
- the ``NAS_PLUGINS`` environment variable (entries separated by ``os.pathsep``, ``:`` on Linux),
- ``--plugin`` on the command line (repeatable).

A run's ``config.yaml`` keeps all of them, files as absolute paths, so that resuming, querying or exporting the run
imports them again. A search on Ray imports them on every worker before the worker creates anything (the Ray runner
ships plugin files to every node; a module plugin must be importable on each node).

Example:
    >>> import nas
    >>> nas.load_plugins(["./my_eval.py"])  # doctest: +SKIP
    ['/home/me/project/my_eval.py']
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from nas.core.errors import NASError, PluginError, UnknownNameError

#: The environment variable of plugins, entries separated by `os.pathsep`.
PLUGINS_ENV = "NAS_PLUGINS"
#: The environment variable a Ray worker's plugins (their module names) reach it in; see `load_worker_plugins`.
WORKER_PLUGINS_ENV = "NAS_WORKER_PLUGINS"
#: Where plugins come from, as error messages name it.
FROM_CONFIG = "the config's plugins:"
FROM_OPTION = "--plugin"
FROM_ENV = PLUGINS_ENV
#: What a message about a missing component says about where plugins come from.
WHERE_PLUGINS_COME_FROM = (
    "plugins come from the config's plugins:, --plugin or NAS_PLUGINS (a module importable on every node, or a .py "
    "file), or from an installed package's entry point"
)

_MODULE_NAME = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")


@dataclass(frozen=True)
class Plugin:
    """One plugin: ``target`` is a module name or the absolute path of a Python file; ``source`` says where it was
    given (``--plugin``, ``NAS_PLUGINS``, a config's ``plugins:``) and ``entry`` how."""

    target: str
    source: str
    entry: str

    @classmethod
    def parse(cls, entry: str, source: str) -> Plugin:
        """The plugin ``entry`` names, a relative file path made absolute against the current directory.

        Raises:
            PluginError: ``entry`` is neither a module name nor the path of a ``.py`` file.
        """
        if not isinstance(entry, str) or not entry.strip():
            raise PluginError(f"plugin {entry!r} (from {source}) is no module name or path of a .py file")
        text = entry.strip()
        if text.endswith(".py") or "/" in text or os.sep in text or text.startswith("~"):
            return cls(os.path.abspath(os.path.expanduser(text)), source, entry)
        if not _MODULE_NAME.fullmatch(text):
            raise PluginError(
                f"plugin {entry!r} (from {source}) is neither a module name such as mypkg.nas_plugin nor the path of "
                "a .py file such as ./my_eval.py"
            )
        return cls(text, source, entry)

    @property
    def is_file(self) -> bool:
        return os.path.isabs(self.target)

    @property
    def module(self) -> str:
        """The name the plugin is imported as: its own, or a file's name without ``.py``."""
        return Path(self.target).stem if self.is_file else self.target

    def describe(self) -> str:
        """``plugin 'ENTRY' (from SOURCE)``, for messages."""
        return f"plugin {self.entry!r} (from {self.source})"


def parse_plugins(entries: Iterable[str], source: str) -> list[Plugin]:
    """Each entry as a `Plugin` given in ``source``."""
    return [Plugin.parse(entry, source) for entry in entries]


def environment_plugins() -> list[Plugin]:
    """The plugins of ``NAS_PLUGINS`` (none when it is unset or empty)."""
    value = os.environ.get(PLUGINS_ENV, "")
    return parse_plugins([e for e in value.split(os.pathsep) if e.strip()], FROM_ENV)


#: What this process imported: target -> module.
_LOADED: dict[str, str] = {}


def load_plugins(plugins: Iterable[Plugin | str], source: str = "nas.load_plugins") -> list[str]:
    """Import each plugin not imported yet, in order; the targets (module names, absolute file paths), without
    duplicates. A text entry is parsed as given in ``source``.

    Raises:
        PluginError: a plugin cannot be imported (one line: the plugin, where it was given, the import error); a
            plugin file's name is no module name, or that of another module (the workers import the file by name).
    """
    parsed = [p if isinstance(p, Plugin) else Plugin.parse(p, source) for p in plugins]
    targets: list[str] = []
    for plugin in parsed:
        if plugin.target not in _LOADED:
            _import(plugin)
            _LOADED[plugin.target] = plugin.module
        if plugin.target not in targets:
            targets.append(plugin.target)
    return targets


def _import(plugin: Plugin) -> None:
    if plugin.is_file:
        _import_file(plugin)
        return
    try:
        importlib.import_module(plugin.target)
    except Exception as error:  # a plugin's own code may raise anything while it is imported
        raise PluginError(f"{plugin.describe()} cannot be imported: {_one_line(error)}") from error


def _import_file(plugin: Plugin) -> None:
    """Import a plugin file as the module named after it (as the workers, which get a copy of the file, do)."""
    path, name = Path(plugin.target), plugin.module
    if not path.is_file():
        raise PluginError(f"{plugin.describe()} cannot be imported: no such file {path}")
    if not name.isidentifier():
        raise PluginError(
            f"{plugin.describe()} cannot be imported as a module named {name!r}: name the file as a Python module "
            "(letters, digits and '_'), e.g. my_eval.py"
        )
    existing = sys.modules.get(name)
    other = None if existing is None else getattr(existing, "__file__", None)
    if existing is None:
        spec = importlib.util.find_spec(name)
        other = None if spec is None else (spec.origin or "a namespace package")
    if other is not None and not _same_file(other, path):
        raise PluginError(
            f"{plugin.describe()}: its module name {name!r} is that of another module ({other}); rename the file"
        )
    if existing is not None:
        return
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None  # a .py file's spec always has a loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # a plugin's own code may raise anything while it is imported
        del sys.modules[name]
        raise PluginError(f"{plugin.describe()} cannot be imported: {_one_line(error)}") from error


def _same_file(a: str, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _one_line(error: BaseException) -> str:
    """An error in one line: its type (unless it is one of ours, whose messages are sentences) and first line."""
    lines = str(error).strip().splitlines()
    if isinstance(error, NASError) and lines:
        return lines[0]
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


# The worker side (a Ray worker, or any process a search starts): the modules arrive in an environment variable.


def worker_modules(targets: Sequence[str]) -> list[str]:
    """The module names a worker imports for these plugins (a file's name without ``.py``: the worker gets a copy
    of the file on its import path)."""
    return [Plugin(t, "", t).module for t in targets]


#: Module -> why it could not be imported in this (worker) process.
_WORKER_FAILURES: dict[str, str] = {}


def load_worker_plugins() -> None:
    """Import the modules ``NAS_WORKER_PLUGINS`` names; a failure is kept for `creation_failure` to report, never
    raised: a Ray worker whose start-up hook raises is started again and again."""
    for module in filter(None, os.environ.get(WORKER_PLUGINS_ENV, "").split(os.pathsep)):
        if module in sys.modules or module in _WORKER_FAILURES:
            continue
        try:
            importlib.import_module(module)
        except Exception as error:  # see the docstring
            _WORKER_FAILURES[module] = _one_line(error)


def creation_failure(kind: str, name: str, error: BaseException, where: str = "a Ray worker") -> str:
    """One line saying that ``where`` cannot create the ``kind`` called ``name`` and why: the error, the plugins
    that failed to import there and, when the name is unknown there or a plugin failed, where plugins come from."""
    failures = "".join(f"; plugin {m} failed to import there: {e}" for m, e in _WORKER_FAILURES.items())
    hint = f"; {WHERE_PLUGINS_COME_FROM}" if failures or isinstance(error, UnknownNameError) else ""
    return f"{where} cannot create {kind} {name!r}: {_one_line(error)}{failures}{hint}"


__all__ = [
    "FROM_CONFIG",
    "FROM_ENV",
    "FROM_OPTION",
    "PLUGINS_ENV",
    "WORKER_PLUGINS_ENV",
    "Plugin",
    "creation_failure",
    "environment_plugins",
    "load_plugins",
    "load_worker_plugins",
    "parse_plugins",
    "worker_modules",
]
