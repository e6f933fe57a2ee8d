"""Experiment configs: the YAML a user writes to describe a search, validated before anything runs.

Example (``experiments/quickstart.yaml``)::

    name: quickstart
    seed: 0
    space: {name: resnet20-pooling}
    dataset: {name: digits}
    evaluator: {name: train, options: {epochs: 1}}
    objectives: [accuracy, macs]
    strategy: {name: predictor}
    budget: {evaluations: 40, wall_time_s: 300}

``plugins:`` lists modules (``mypkg.nas_plugin``) or Python files (``./my_eval.py``, relative to the current
directory) that register components of the user's own: they are imported before the components are looked up (see
`nas.core.plugins`), and a validated config holds them with files as absolute paths.

An error names the path of the bad key, what was given and what is accepted, e.g.
``quickstart.yaml: budget.evaluations: got 0; must be a positive integer``; a component's options are checked
against its options model (``evaluator.options.epochs: got 0; ...``), and the dataset's options against the model of
the data the evaluator reads (``dataset.options.train_size``). Types are strict: ``3`` is an integer, ``"3"`` and
``true`` are not (a float option takes an integer too). Duplicate keys, alias bombs and other malformed YAML are
refused while reading, before any value is used.
"""

from __future__ import annotations

import math
import re
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from nas.core.capabilities import ReadsData
from nas.core.errors import InvalidOptionError, MissingDataError, UnknownNameError
from nas.core.evaluation import EVALUATORS, Objective, figure_keys
from nas.core.options import Options, describe_error, nested
from nas.core.plugins import FROM_CONFIG, FROM_OPTION, Plugin, environment_plugins, load_plugins, parse_plugins
from nas.core.registry import Registry
from nas.core.space import SPACES
from nas.search.runners import LOCAL
from nas.search.strategies import STRATEGIES, DedupKey

ExportFormat = Literal["state_dict", "torchscript", "onnx"]
#: Formats `nas export` writes.
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("state_dict", "torchscript", "onnx")

PositiveInt = Annotated[int, Field(gt=0)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
#: The largest seed: every component takes one from 0 to 2**32 - 1 (NumPy's legacy and scikit-learn's range).
MAX_SEED = 2**32 - 1
#: Accepted Ray addresses besides none, ``local`` and ``auto``: ``HOST:PORT`` or ``ray://HOST:PORT``.
RAY_ADDRESS = re.compile(r"(?:ray://)?(?:[A-Za-z0-9_.-]+|\[[0-9A-Fa-f:.]+\]):(?P<port>[0-9]{1,5})")
#: A config document's limits: values once its aliases are expanded (an alias bomb holds billions), and nesting.
MAX_YAML_VALUES = 10_000
MAX_YAML_DEPTH = 50


class _Section(BaseModel):
    """A part of the config: unknown keys are errors, never silently ignored; types are strict."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Named(_Section):
    """A registered component: its name and its constructor options."""

    name: str
    options: dict[str, Any] = Field(default_factory=dict)


class SpaceConfig(Named):
    """The search space: its name and options, given in ``options`` or beside the name (``{name: categorical,
    dimensions: {...}}``); an unknown option is an error either way."""

    @model_validator(mode="before")
    @classmethod
    def _options_beside_name(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("options", {}), dict):
            return data  # the section's own validation says what is wrong
        beside = {k: v for k, v in data.items() if k not in ("name", "options")}
        twice = sorted(set(beside) & set(data.get("options", {})))
        if twice:
            raise ValueError(f"{', '.join(twice)} given beside the name and in options; give each option once")
        if not beside:
            return data
        named = {k: v for k, v in data.items() if k == "name"}
        return {**named, "options": {**data.get("options", {}), **beside}}


class StrategyConfig(Named):
    """The search strategy, its options, and what counts as one architecture when deduplicating its proposals: the
    same function (``canonical``, the default: isomorphic cells of nb201 are evaluated once) or the same
    description (``arch_id``). A space without canonical forms makes the two the same."""

    dedup: Annotated[DedupKey, Strict(False)] = DedupKey.CANONICAL  # the key's text: canonical, arch_id


#: The validation context that checks the components' names but not their options, which needs their classes.
NAMES_ONLY: Mapping[str, Any] = MappingProxyType({"check_options": False})

#: The registries of the config's components.
_REGISTRIES: dict[str, Registry[Any]] = {"space": SPACES, "evaluator": EVALUATORS, "strategy": STRATEGIES}


class DatasetConfig(_Section):
    """The task's data: a dataset name (``digits``, ``fashion-mnist``), an ``.npz`` file or an image folder."""

    name: str = "digits"
    data_dir: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)


class BudgetConfig(_Section):
    """When the search stops: after this many evaluations and/or this much wall time, whichever comes first."""

    evaluations: PositiveInt | None = None
    wall_time_s: Annotated[FiniteFloat, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _some_limit(self) -> BudgetConfig:
        if self.evaluations is None and self.wall_time_s is None:
            raise ValueError("give evaluations, wall_time_s or both")
        return self


class ExecutionConfig(_Section):
    """Where evaluations run: an embedded local Ray (no address), ``auto``, ``HOST:PORT`` or ``ray://HOST:PORT``
    of a cluster, or ``local`` (in this process, without Ray); how many at once, with what resources each;
    architectures per batch of a cheap evaluator; and the scheduler of training trials (``asha`` stops unpromising
    ones early)."""

    address: str | None = None
    workers: PositiveInt = 1
    resources: dict[str, Annotated[FiniteFloat, Field(ge=0)]] = Field(default_factory=lambda: {"cpu": 1.0})
    batch_size: PositiveInt = 16
    scheduler: Literal["asha", "fifo"] = "asha"

    @field_validator("address")
    @classmethod
    def _ray_address(cls, address: str | None) -> str | None:
        match = RAY_ADDRESS.fullmatch(address or "")
        if address in (None, LOCAL, "auto") or (match and 0 < int(match["port"]) < 65536):
            return address
        raise ValueError(
            f"accepted: no address (a local Ray), {LOCAL} (no Ray), auto, HOST:PORT or ray://HOST:PORT "
            "with PORT from 1 to 65535"
        )


class StorageConfig(_Section):
    """The result store: an Optuna storage URL; none means a SQLite file in the run directory."""

    url: str | None = None

    @field_validator("url")
    @classmethod
    def _database_url(cls, url: str | None) -> str | None:
        """A URL SQLAlchemy parses, whose dialect and driver are installed; it is not connected to here."""
        if url is None:
            return url
        from sqlalchemy.engine import make_url  # imported only for a URL: it is slow to import
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError

        try:
            parsed = make_url(url)
            parsed.get_dialect().import_dbapi()
        except NoSuchModuleError:
            problem = f"SQLAlchemy knows no database {url.partition(':')[0]!r}"
        except (ArgumentError, ValueError):
            problem = f"{url!r} is no database URL"
        except ImportError as error:
            problem = f"its database driver {error.name} is not installed"
        else:
            if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
                problem = "an in-memory SQLite database would lose the results"
            elif parsed.port is not None and not 0 < parsed.port < 65536:
                problem = f"port {parsed.port} is not from 1 to 65535"
            else:
                return url
        raise ValueError(
            f"{problem}; accepted: sqlite:///path/to/store.db or postgresql+psycopg2://user@host/db "
            "(with the driver installed)"
        )


class ExportConfig(_Section):
    """What the search exports at the end: the ``top`` architectures of the front, in these formats. Without
    ``top``: the best one, but none for a space that builds no networks or an evaluator that looks results up in a
    table (`nas.search.experiment.default_exports`)."""

    formats: list[ExportFormat] = Field(default_factory=lambda: list(EXPORT_FORMATS))
    top: Annotated[int, Field(ge=0)] = 1


class ExperimentConfig(_Section):
    """A whole search, as `load_config` reads it from YAML."""

    name: str
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] = 0
    space: SpaceConfig
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    evaluator: Named
    objectives: Annotated[list[Objective], Field(min_length=1)]
    strategy: StrategyConfig = StrategyConfig(name="random")
    budget: BudgetConfig
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)
    #: Imported before the other keys are checked (see `_import_plugins`).
    plugins: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _import_plugins(cls, data: Any) -> Any:
        """Import the config's plugins before its components are looked up; a file's path becomes absolute (a
        ``plugins`` that is no list of text is left to its field's check)."""
        if isinstance(data, dict) and _entries(data.get("plugins")):
            data = {**data, "plugins": load_plugins(parse_plugins(data["plugins"], FROM_CONFIG))}
        return data

    @field_validator("name")
    @classmethod
    def _run_name(cls, name: str) -> str:
        if not re.fullmatch(r"(?!-)(?!\.+$)[A-Za-z0-9_.-]{1,255}", name):
            raise ValueError(
                "use letters, digits, '.', '_' and '-' only (at most 255 characters, not only dots, no leading '-'): "
                "the name is the run's directory"
            )
        return name

    @field_validator("seed", mode="wrap")
    @classmethod
    def _seed(cls, seed: Any, handler: ValidatorFunctionWrapHandler) -> int:
        try:
            return int(handler(seed))
        except ValidationError:
            raise ValueError(f"a seed is an integer from 0 to {MAX_SEED} (2**32 - 1), without quotes") from None

    @field_validator("space", "evaluator", "strategy")
    @classmethod
    def _component(cls, value: Named, info: ValidationInfo) -> Named:
        """A registered name, with options its class's options model accepts: checked now, though the component is
        created once the run exists."""
        registry = _REGISTRIES[str(info.field_name)]
        try:
            if info.context == NAMES_ONLY and value.name in registry.names():
                return value
            model = registry.get(value.name).Options
        except UnknownNameError as error:
            raise ValueError(str(error)) from None
        try:
            model.model_validate(value.options)
        except ValidationError as error:
            raise nested(error, model, ("options",)) from None
        return value

    @model_validator(mode="after")
    def _dataset_options(self, info: ValidationInfo) -> ExperimentConfig:
        """The dataset's options are those of the data the evaluator reads (none, for an evaluator that reads no
        data)."""
        if info.context == NAMES_ONLY:
            return self
        evaluator = EVALUATORS.get(self.evaluator.name)
        model = Options
        if isinstance(evaluator, ReadsData):
            model = evaluator.data_options(evaluator.Options.model_validate(self.evaluator.options))
        try:
            model.model_validate(self.dataset.options)
        except ValidationError as error:
            raise nested(error, model, ("dataset", "options")) from None
        return self

    @field_validator("objectives", mode="before")
    @classmethod
    def _objectives(cls, values: Any) -> Any:
        """Each objective as text (``accuracy``, ``macs<=20e6``, ``min:loss``) or ``{name, direction, bound}``."""
        if not isinstance(values, list):
            raise ValueError("expected a list such as [accuracy, macs<=20e6]")
        parsed = []
        for value in values:
            if isinstance(value, str):
                parsed.append(Objective.parse(value))
            elif isinstance(value, dict) and set(value) <= {"name", "direction", "bound"} and "name" in value:
                if not isinstance(value["name"], str):
                    raise ValueError(f"objective {value['name']!r}: its name is text such as accuracy or macs")
                default = Objective.parse(value["name"])
                direction, bound = value.get("direction", default.direction), value.get("bound", default.bound)
                parsed.append(Objective(default.name, direction, bound))
            else:
                raise ValueError(
                    f"{value!r} is no objective; give text such as macs<=20e6 or {{name, direction, bound}}"
                )
        figures: dict[str, str] = {}
        for objective in parsed:
            figure = figure_keys(objective.name)[-1]  # latency:pixel3 and latency_ms:pixel3 are one figure
            if figure in figures:
                same = f" (as {figures[figure]!r})" if figures[figure] != objective.name else ""
                raise ValueError(f"objective {objective.name!r} is given twice{same}; give each figure once")
            figures[figure] = objective.name
        return parsed


def load_config(
    path: str | Path, *, plugins: Sequence[str | Plugin] = (), check_options: bool = True, **overrides: Any
) -> ExperimentConfig:
    """Read and validate an experiment config (or a run's ``config.yaml``); ``overrides`` replace top-level keys
    (e.g. ``seed=3``), or keys of a section when given as a mapping (``budget={"evaluations": 10}`` keeps the wall
    time).

    The config's ``plugins``, those of ``NAS_PLUGINS`` and ``plugins`` (text entries as given with ``--plugin``)
    are imported first, in this order, and the config holds all of them. Then the structure and the types are
    checked, with the components' names, then the components' options, which needs their classes (a space's module
    imports torch): a config with a typo is refused without importing them. ``check_options=False`` skips the
    options (`load_run`: a run's config was checked when its search began).

    Raises:
        MissingDataError: the file cannot be read, is not UTF-8 text or is not YAML.
        InvalidOptionError: a key is unknown, given twice or a value is invalid; the message names each bad key's
            path.
        PluginError: a plugin cannot be imported.
    """
    path = Path(path)
    data = read_document(path)
    malformed = "plugins" in data and not _entries(data["plugins"])  # left to the plugins field's check
    own = [] if malformed else parse_plugins(data.get("plugins", []), f"plugins: in {path}")
    given = [p if isinstance(p, Plugin) else Plugin.parse(p, FROM_OPTION) for p in plugins]
    targets = load_plugins([*own, *environment_plugins(), *given])
    if targets and not malformed:
        data = {**data, "plugins": targets}
    merged = _merged(data, overrides)
    try:
        config = ExperimentConfig.model_validate(merged, context=NAMES_ONLY)
        return ExperimentConfig.model_validate(merged) if check_options else config
    except ValidationError as error:
        raise InvalidOptionError(
            f"{path}: " + "; ".join(describe_error(e, ExperimentConfig) for e in error.errors())
        ) from None


def config_plugins(path: str | Path) -> list[Plugin]:
    """The plugins a config file (a run's ``config.yaml``, say) lists, not imported; none when it lists none.

    Raises:
        MissingDataError, InvalidOptionError: as `load_config`.
    """
    data = read_document(Path(path))
    return parse_plugins(data["plugins"], f"plugins: in {path}") if _entries(data.get("plugins")) else []


def _entries(value: Any) -> bool:
    """Whether ``value`` is a list of plugins to import: a list of text."""
    return isinstance(value, list) and all(isinstance(entry, str) for entry in value)


def read_document(path: Path) -> dict[str, Any]:
    """A config file's YAML mapping, not validated.

    Raises:
        MissingDataError, InvalidOptionError: as `load_config`.
    """
    try:
        data = yaml.load(path.read_bytes().decode(), Loader=_ConfigLoader)
    except OSError as error:
        raise MissingDataError(f"cannot read the experiment config {path}: {error.strerror}") from error
    except UnicodeDecodeError as error:
        line = error.object.count(b"\n", 0, error.start) + 1
        raise MissingDataError(
            f"{path} is not UTF-8 text (byte {error.object[error.start]:#04x} on line {line}); save it as UTF-8"
        ) from None
    except _Refused as error:
        raise InvalidOptionError(f"{path}: {_yaml_problem(error)}") from None
    except yaml.YAMLError as error:
        raise MissingDataError(f"{path} is not valid YAML: {_yaml_problem(error)}") from None
    if not isinstance(data, dict):
        raise InvalidOptionError(f"{path}: expected a mapping of keys such as name, space, evaluator, objectives")
    return data


class _Refused(yaml.MarkedYAMLError):
    """YAML this package refuses to read, though a YAML parser may: duplicate keys, alias bombs, deep nesting."""

    def __init__(self, problem: str, mark: yaml.Mark | None) -> None:
        super().__init__(problem=problem, problem_mark=mark)


class _ConfigLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing what `_Refused` lists; ``20e6`` is a float, as in YAML 1.2."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._sizes: dict[int, float] = {}  # id(node) -> values in it once aliases are expanded

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        alias, mark = self.check_event(yaml.AliasEvent), self.peek_event().start_mark
        if self._depth == MAX_YAML_DEPTH:
            raise _Refused(f"nested deeper than {MAX_YAML_DEPTH} levels", mark)
        self._depth += 1
        try:
            node = super().compose_node(parent, index)  # type: ignore[no-untyped-call]
        finally:
            self._depth -= 1
        if alias:  # an alias inside its own anchor has no size yet: it expands without end
            size = self._sizes.get(id(node), math.inf)
        else:
            size = self._sizes[id(node)] = sum((self._sizes.get(id(c), math.inf) for c in _children(node)), 1.0)
        if size > MAX_YAML_VALUES:
            message = f"more than {MAX_YAML_VALUES} values once aliases are expanded; a config holds far fewer"
            raise _Refused(message, mark)
        return node

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        lines: dict[Hashable, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # the keys merged in by <<: may be overridden
            key = self.construct_object(key_node, deep)  # type: ignore[no-untyped-call]
            if not isinstance(key, Hashable):
                continue  # PyYAML refuses it
            if key in lines:
                message = f"key {key!r} is given twice (first on line {lines[key]}); give each key once"
                raise _Refused(message, key_node.start_mark)
            lines[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)  # type: ignore[no-untyped-call]


def _children(node: yaml.Node | None) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [child for pair in node.value for child in pair]
    return node.value if isinstance(node, yaml.SequenceNode) else []


_ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789")
)


def _yaml_problem(error: yaml.YAMLError) -> str:
    """A YAML error in one line: where, and what is wrong."""
    if not isinstance(error, yaml.MarkedYAMLError):
        return str(error).splitlines()[0]
    mark = error.problem_mark or error.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    return where + ": ".join(filter(None, [error.context, error.problem]))


def _merged(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = dict(data)
    for key, value in overrides.items():
        section = merged.get(key)
        merged[key] = {**section, **value} if isinstance(value, dict) and isinstance(section, dict) else value
    return merged
