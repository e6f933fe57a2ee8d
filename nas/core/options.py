"""Components' options as pydantic models: validated when a config is read, with the config's error format.

Every registered component (space, evaluator, strategy, predictor) declares its options as a subclass of `Options`
in the ClassVar ``Options``; the registry validates a config's (or a caller's) options against it and hands the
validated model to the constructor. An error names the key, what was given and what is accepted, e.g.
``evaluator 'train': epochs: got 0; Input should be greater than 0`` (in a config:
``evaluator.options.epochs: got 0; ...``).

Example:
    >>> class TrainOptions(Options):
    ...     epochs: PositiveInt = 2
    >>> TrainOptions(epochs=3).epochs
    3
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from nas.core.errors import InvalidOptionError

PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
#: A share of something: in (0, 1].
Fraction = Annotated[float, Field(gt=0, le=1)]
#: A seed of NumPy, scikit-learn and torch: from 0 to 2**32 - 1.
Seed = Annotated[int, Field(ge=0, le=2**32 - 1)]

OptionsT = TypeVar("OptionsT", bound="Options")
V = TypeVar("V")


def distinct(values: tuple[V, ...]) -> tuple[V, ...]:
    """``values`` if no value repeats; else a `ValueError` (what a validator raises)."""
    if len(set(values)) < len(values):
        raise ValueError("give each value once")
    return values


#: Markers of a tuple option: given as a non-empty list (YAML has no tuples), of distinct values.
NonEmptyList = Field(strict=False, min_length=1)
Distinct = AfterValidator(distinct)


class Options(BaseModel):
    """Base of a component's options: unknown keys are errors, never ignored; types are strict (``"3"`` is no
    integer; an integer is a float); frozen. A tuple option accepts a YAML list: annotate it with
    ``Field(strict=False)``."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, arbitrary_types_allowed=True)


def validate_options(model: type[OptionsT], given: Mapping[str, Any] | BaseModel | None, what: str) -> OptionsT:
    """``given`` as a ``model``; `InvalidOptionError` naming ``what`` (e.g. ``evaluator 'train'``) and each bad key.

    Example:
        >>> validate_options(Options, {}, "strategy 'random'")
        Options()
    """
    if isinstance(given, model):
        return given
    if isinstance(given, BaseModel):
        raise InvalidOptionError(f"{what}: options are a {model.__name__}; got a {type(given).__name__}")
    try:
        return model.model_validate(dict(given or {}))
    except ValidationError as error:
        raise InvalidOptionError(f"{what}: " + "; ".join(describe_error(e, model) for e in error.errors())) from None


def nested(error: ValidationError, model: type[BaseModel], prefix: tuple[str, ...]) -> ValidationError:
    """``error`` (from validating ``model``) with its keys under ``prefix``, for a validator of an enclosing model
    (the config) to raise: pydantic then reports each at its full path, e.g. ``evaluator.options.epochs``. An unknown
    key keeps the keys ``model`` accepts in its message."""
    details: list[InitErrorDetails] = []
    for e in error.errors():
        kind: Any = e["type"]
        if kind == "extra_forbidden":
            accepted = ", ".join(keys_at(model, e["loc"][:-1])) or "none"
            kind = PydanticCustomError("unknown_key", "unknown key; accepted: {accepted}", {"accepted": accepted})
        details.append(InitErrorDetails(type=kind, loc=(*prefix, *e["loc"]), input=e["input"], ctx=e.get("ctx", {})))
    return ValidationError.from_exception_data(error.title, details)


#: What to write instead of a value of the wrong type: types are strict, nothing is converted.
_STRICT_TYPES = {
    "int_type": "an integer such as 3, without quotes (true and false are no numbers)",
    "float_type": "a number such as 0.5 or 3, without quotes (true and false are no numbers)",
    "string_type": "text; quote it where YAML would read another type, e.g. '3' or 'no'",
    "bool_type": "true or false, without quotes",
}


def describe_error(error: Any, model: type[BaseModel]) -> str:
    """One pydantic error as ``key.path: got VALUE; what is accepted`` (keys relative to ``model``)."""
    where = ".".join(str(part) for part in error["loc"]) or "(top level)"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] in _STRICT_TYPES:
        message += f"; types are strict: write {_STRICT_TYPES[error['type']]}"
    if error["type"] == "missing":
        return f"{where}: missing"
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown key; accepted: {', '.join(keys_at(model, error['loc'][:-1])) or 'none'}"
    if error["type"] == "unknown_key" or not error["loc"]:  # a model's own check says what it was given
        return f"{where}: {message}" if error["loc"] else message
    return f"{where}: got {error['input']!r}; {message}"


def keys_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys ``model`` accepts at the nested section ``loc`` (``()`` is the top level)."""
    section: type[BaseModel] = model
    for part in loc:
        field = section.model_fields.get(str(part))
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        section = annotation
    return list(section.model_fields)
