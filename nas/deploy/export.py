"""Export of built networks to deployable formats: TorchScript and ONNX, each checked against PyTorch, and a bundle of
one architecture (weights, architecture JSON, TorchScript, ONNX and a model card) with `export_model`.

ONNX needs the optional ``export`` extra (``pip install 'nas-pareto[export]'``: onnx, onnxruntime, onnxscript); its
packages are imported only when a function needs them. An exported file has one input ``input`` of shape
``(batch, *input_shape)`` with a free batch dimension, and one output ``logits``. TorchScript and ONNX files load
without this package.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import nn

from nas.core import errors
from nas.core.errors import ExportMismatchError, InvalidOptionError
from nas.core.space import Architecture
from nas.search.config import EXPORT_FORMATS

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
#: Formats `export_model` writes, besides ``arch.json`` and ``MODEL_CARD.md`` which it always writes.
FORMATS = EXPORT_FORMATS
#: File name of each format inside `export_model`'s directory.
FILE_NAMES = {"state_dict": "state_dict.pt", "torchscript": "model.torchscript.pt", "onnx": "model.onnx"}
ARCH_FILE = "arch.json"
CARD_FILE = "MODEL_CARD.md"
_PARITY_BATCH = 3


def import_extra(name: str) -> ModuleType:
    """Import ``name`` from the ``export`` extra, or raise `MissingExtraError` saying what to install."""
    return errors.import_extra(name, "export", "ONNX export and onnxruntime")


def random_input(input_shape: Sequence[int], batch: int = 1, seed: int = 0) -> torch.Tensor:
    """A float32 batch of shape ``(batch, *input_shape)`` drawn from N(0, 1) with its own generator.

    Example:
        >>> random_input((3, 8, 8), batch=2).shape
        torch.Size([2, 3, 8, 8])
    """
    shape = tuple(input_shape)
    if not shape or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0 for s in shape):
        raise InvalidOptionError(
            f"input_shape must be positive integers for one sample without the batch, e.g. (3, 32, 32); "
            f"got {input_shape!r}"
        )
    if batch < 1:
        raise InvalidOptionError(f"batch must be a positive integer; got {batch!r}")
    generator = torch.Generator().manual_seed(seed)
    return torch.randn((batch, *(int(s) for s in shape)), generator=generator)


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Put ``module`` in eval mode for the duration of the block, then restore its training flags."""
    flags = {m: m.training for m in module.modules()}
    module.eval()
    try:
        yield module
    finally:
        for m, training in flags.items():
            m.train(training)


@contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's noise that says nothing about the user's model (torchvision ops it skips, and a
    deprecation inside torch's own pytree code), for the duration of one export."""
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
            yield
    finally:
        registration.setLevel(level)


def export_onnx(
    module: nn.Module,
    input_shape: Sequence[int],
    path: str | Path,
    *,
    opset: int | None = None,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Export ``module`` (in eval mode) to one ONNX file with torch's dynamo exporter and a free batch dimension.

    Args:
        module: the network; its training flags are restored afterwards.
        input_shape: the shape of one sample, without the batch, e.g. ``(3, 32, 32)``.
        path: the ``.onnx`` file to write; missing parent directories are created.
        opset: the ONNX opset version; None takes the exporter's default.
        metadata: key-value strings added to the model's ``metadata_props`` (onnxruntime reads them back with
            ``session.get_modelmeta().custom_metadata_map``).

    Returns:
        The path written. Weights are inside the file unless they exceed ONNX's 2 GB limit, in which case they go to
        ``<path>.data`` beside it.

    Example:
        >>> export_onnx(nn.Sequential(nn.Flatten(), nn.Linear(12, 4)), (3, 2, 2), "model.onnx")  # doctest: +SKIP
        PosixPath('model.onnx')
    """
    for name in ("onnx", "onnxscript"):
        import_extra(name)
    example = random_input(input_shape, batch=2)  # not 1: torch.export specializes size-1 dimensions
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with eval_mode(module), _quiet_exporter():
        torch.onnx.export(
            module,
            (example,),
            path,
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            opset_version=opset,
            external_data=False,
            verbose=False,
        )
    if metadata:
        onnx = import_extra("onnx")
        model = onnx.load(path, load_external_data=False)  # weights beyond 2 GB stay where they are
        model.metadata_props.extend(onnx.StringStringEntryProto(key=k, value=v) for k, v in metadata.items())
        onnx.save(model, path)
    return path


def check_onnx(
    path: str | Path,
    module: nn.Module,
    input_shape: Sequence[int],
    *,
    batch: int = 3,
    atol: float = 1e-4,
    rtol: float = 1e-3,
    seed: int = 0,
) -> float:
    """Run the ONNX file in onnxruntime and compare its logits with ``module``'s (in eval mode) on a seeded batch.

    Args:
        path: an ONNX file written by `export_onnx`.
        module: the PyTorch network it was exported from.
        input_shape: the shape of one sample, without the batch.
        batch: the batch size of the check; the default 3 differs from the export's example to prove the free batch.
        atol: absolute tolerance.
        rtol: tolerance relative to the PyTorch output.
        seed: seed of the random batch.

    Returns:
        The largest absolute difference between the two outputs.

    Raises:
        ExportMismatchError: some output differs by more than ``atol + rtol * |torch output|``.
    """
    ort = import_extra("onnxruntime")
    path = _existing(path, "ONNX", "export_onnx")

    def run(x: torch.Tensor) -> np.ndarray:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        (logits,) = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})
        return np.asarray(logits)

    return _compare(path, "onnxruntime", run, module, input_shape, batch=batch, atol=atol, rtol=rtol, seed=seed)


def _existing(path: str | Path, kind: str, writer: str) -> Path:
    """``path`` as a `Path`, or `InvalidOptionError` when no file is there."""
    path = Path(path)
    if not path.is_file():
        raise InvalidOptionError(f"no {kind} file at {path}; write one with {writer} first")
    return path


def _compare(
    path: Path,
    runtime: str,
    run: Callable[[torch.Tensor], np.ndarray],
    module: nn.Module,
    input_shape: Sequence[int],
    *,
    batch: int,
    atol: float,
    rtol: float,
    seed: int,
) -> float:
    """The largest absolute difference between ``run(x)`` (an exported file in ``runtime``) and ``module(x)`` in eval
    mode on a seeded batch ``x``; `ExportMismatchError` when the shapes differ or a difference exceeds the tolerance."""
    x = random_input(input_shape, batch=batch, seed=seed)
    with eval_mode(module), torch.inference_mode():
        expected = module(x).numpy()
    actual = run(x)
    if actual.shape != expected.shape:
        raise ExportMismatchError(f"{path}: {runtime} gives logits of shape {actual.shape}, torch {expected.shape}")
    diff = np.abs(actual - expected)
    max_diff = float(diff.max(initial=0.0))
    if not np.all(diff <= atol + rtol * np.abs(expected)):
        raise ExportMismatchError(
            f"{path}: {runtime} and torch outputs differ by up to {max_diff:.3g} on a batch of {batch} "
            f"(tolerance atol={atol:g}, rtol={rtol:g})"
        )
    return max_diff


@contextmanager
def _quiet_jit() -> Iterator[None]:
    """Silence torch's deprecation warnings for TorchScript (``torch.jit.trace`` / ``load``) for one call."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit.*deprecated", category=DeprecationWarning)
        yield


def export_torchscript(module: nn.Module, input_shape: Sequence[int], path: str | Path) -> Path:
    """Trace ``module`` (in eval mode) to one TorchScript file that runs any batch size without this package.

    Args:
        module: the network; its training flags are restored afterwards.
        input_shape: the shape of one sample, without the batch, e.g. ``(3, 32, 32)``.
        path: the file to write; missing parent directories are created.

    Returns:
        The path written; ``torch.jit.load(path)`` gives the model back.

    Example:
        >>> export_torchscript(nn.Sequential(nn.Flatten(), nn.Linear(12, 4)), (3, 2, 2), "model.pt")  # doctest: +SKIP
        PosixPath('model.pt')
    """
    example = random_input(input_shape, batch=2)  # not 1, so that no size-1 dimension is taken for a broadcast
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with eval_mode(module), _quiet_jit():
        traced = torch.jit.trace(module, (example,), check_trace=False)
        traced.save(str(path))
    return path


def check_torchscript(
    path: str | Path,
    module: nn.Module,
    input_shape: Sequence[int],
    *,
    batch: int = 3,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    seed: int = 0,
) -> float:
    """Load the TorchScript file and compare its logits with ``module``'s (in eval mode) on a seeded batch.

    Args:
        path: a TorchScript file written by `export_torchscript`.
        module: the PyTorch network it was traced from.
        input_shape: the shape of one sample, without the batch.
        batch: the batch size of the check; the default 3 differs from the trace's example to prove the free batch.
        atol: absolute tolerance.
        rtol: tolerance relative to the PyTorch output.
        seed: seed of the random batch.

    Returns:
        The largest absolute difference between the two outputs.

    Raises:
        ExportMismatchError: some output differs by more than ``atol + rtol * |torch output|``.

    Example:
        >>> check_torchscript("model.pt", net, (3, 2, 2)) < 1e-5  # doctest: +SKIP
        True
    """
    path = _existing(path, "TorchScript", "export_torchscript")
    with _quiet_jit():
        loaded = torch.jit.load(str(path), map_location="cpu")

    def run(x: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            return np.asarray(loaded(x).numpy())

    return _compare(path, "TorchScript", run, module, input_shape, batch=batch, atol=atol, rtol=rtol, seed=seed)


def export_model(
    module: nn.Module,
    arch: Architecture,
    input_shape: Sequence[int],
    out_dir: str | Path,
    formats: Sequence[str] = FORMATS,
    *,
    card: Mapping[str, Any] | None = None,
) -> dict[str, Path]:
    """Write one architecture's bundle to ``out_dir``: ``arch.json``, the requested formats, each exported file
    checked against ``module``, and ``MODEL_CARD.md``.

    Files: ``arch.json`` (``arch.to_dict()`` plus ``arch_id``), ``state_dict.pt``, ``model.torchscript.pt``,
    ``model.onnx`` and ``MODEL_CARD.md`` (the architecture, input and output, how to load each file, ``card``'s
    content and the measured parity). The ONNX file's ``metadata_props`` hold ``arch`` (``arch.json``'s content) and
    each section of ``card``, as JSON text.

    Args:
        module: the network built from ``arch``; its training flags are restored afterwards.
        arch: the architecture ``module`` was built from.
        input_shape: the shape of one sample, without the batch, e.g. ``(3, 32, 32)``.
        out_dir: the directory to write; created if missing.
        formats: some of `FORMATS`: ``state_dict``, ``torchscript``, ``onnx``.
        card: what else the model card says, e.g. ``{"metrics": {...}, "costs": {...}, "provenance": {...}}``; each
            key becomes a section, nested mappings and lists become tables and bullet lists, and a list of plain
            values (e.g. class names) a list numbered from 0.

    Returns:
        The paths written, by key: ``arch``, then each of ``state_dict``, ``torchscript``, ``onnx`` written, ``card``.

    Raises:
        InvalidOptionError: an unknown format or a bad argument, before anything is written.
        MissingExtraError: ``onnx`` is asked for without the export extra, before anything is written.
        ExportMismatchError: an exported file's outputs differ from ``module``'s.

    Example:
        >>> space = nas.create_space("nb201", input_shape=(3, 32, 32), num_classes=10)  # doctest: +SKIP
        >>> arch = space.sample(0)  # doctest: +SKIP
        >>> sorted(export_model(space.build(arch), arch, (3, 32, 32), "out"))  # doctest: +SKIP
        ['arch', 'card', 'onnx', 'state_dict', 'torchscript']
    """
    requested = (formats,) if isinstance(formats, str) else tuple(formats)
    unknown = [f for f in requested if f not in FORMATS]
    if unknown:
        raise InvalidOptionError(
            f"unknown export format(s) {', '.join(map(repr, unknown))}; choose from {', '.join(FORMATS)}"
        )
    if not isinstance(arch, Architecture):
        raise InvalidOptionError(f"arch must be an Architecture; got {type(arch).__name__}")
    if card is not None and not isinstance(card, Mapping):
        raise InvalidOptionError(f"card must be a mapping of section name to content; got {type(card).__name__}")
    example = random_input(input_shape, batch=2)  # validates input_shape
    if "onnx" in requested:
        for name in ("onnx", "onnxscript", "onnxruntime"):
            import_extra(name)
    shape = tuple(int(s) for s in input_shape)
    out = Path(out_dir)
    paths: dict[str, Path] = {"arch": out / ARCH_FILE}
    parity: list[tuple[str, float]] = []
    sections = {"arch": {**arch.to_dict(), "arch_id": arch.arch_id}, **(card or {})}
    with eval_mode(module):
        with torch.inference_mode():
            output_shape = tuple(module(example).shape[1:])
        out.mkdir(parents=True, exist_ok=True)
        paths["arch"].write_text(json.dumps(sections["arch"], indent=2) + "\n")
        if "state_dict" in requested:
            paths["state_dict"] = out / FILE_NAMES["state_dict"]
            torch.save(module.state_dict(), paths["state_dict"])
        if "torchscript" in requested:
            paths["torchscript"] = export_torchscript(module, shape, out / FILE_NAMES["torchscript"])
            parity.append(
                ("torch vs TorchScript", check_torchscript(paths["torchscript"], module, shape, batch=_PARITY_BATCH))
            )
        if "onnx" in requested:
            metadata = {key: json.dumps(_plain(value)) for key, value in sections.items()}
            paths["onnx"] = export_onnx(module, shape, out / FILE_NAMES["onnx"], metadata=metadata)
            parity.append(("torch vs onnxruntime", check_onnx(paths["onnx"], module, shape, batch=_PARITY_BATCH)))
    paths["card"] = out / CARD_FILE
    paths["card"].write_text(_model_card(arch, shape, output_shape, paths, parity, card or {}))
    return paths


def _model_card(
    arch: Architecture,
    input_shape: tuple[int, ...],
    output_shape: tuple[int, ...],
    paths: Mapping[str, Path],
    parity: Sequence[tuple[str, float]],
    card: Mapping[str, Any],
) -> str:
    """The markdown of ``MODEL_CARD.md``."""
    batch_in, batch_out = _shape(input_shape), _shape(output_shape)
    example = ", ".join(map(str, (5, *input_shape)))
    lines = [
        f"# {arch.space} architecture {arch.arch_id}",
        "",
        "## Architecture",
        "",
        f"- space: `{arch.space}` version `{arch.version}`",
        f"- arch_id: `{arch.arch_id}`",
        "",
        *_table({k: _plain(v) for k, v in arch.to_dict()["choices"].items()}, ("choice", "value")),
        "",
        "## Input and output",
        "",
        f"- input `{INPUT_NAME}`: float32, shape {batch_in}; the batch dimension is free",
        f"- output `{OUTPUT_NAME}`: float32, shape {batch_out}",
        *(["- a raw sample becomes the input as the Preprocessing section says"] if "preprocessing" in card else []),
        "",
        "## Files",
        "",
        f"- `{ARCH_FILE}`: the architecture (`space`, `version`, `choices`) and its `arch_id`",
    ]
    described = {
        "state_dict": "PyTorch weights (`torch.save(module.state_dict())`); rebuilding the module needs `nas`",
        "torchscript": "TorchScript; needs torch only",
        "onnx": "ONNX with the weights inside, and the architecture and this card's sections as JSON in its metadata; "
        "needs onnxruntime only",
    }
    lines += [f"- `{paths[f].name}`: {described[f]}" for f in FORMATS if f in paths]
    lines += ["", "## Loading", ""]
    if "torchscript" in paths:
        lines += [
            "```python",
            "import torch",
            "",
            f'model = torch.jit.load("{paths["torchscript"].name}")',
            f"logits = model(torch.randn({example}))",
            "```",
            "",
        ]
    if "onnx" in paths:
        lines += [
            "```python",
            "import json",
            "",
            "import numpy as np",
            "import onnxruntime as ort",
            "",
            f'session = ort.InferenceSession("{paths["onnx"].name}", providers=["CPUExecutionProvider"])',
            "card = {k: json.loads(v) for k, v in session.get_modelmeta().custom_metadata_map.items()}",
            f"x = np.random.default_rng(0).standard_normal(({example})).astype(np.float32)",
            f'(logits,) = session.run(["{OUTPUT_NAME}"], {{"{INPUT_NAME}": x}})',
            "```",
            "",
        ]
    if "state_dict" in paths:
        lines += [
            "```python",
            "import json",
            "",
            "import torch",
            "",
            "import nas",
            "",
            f'data = json.loads(open("{ARCH_FILE}").read())',
            'data.pop("arch_id")',
            "arch = nas.Architecture.from_dict(data)",
            f"space = nas.create_space(arch.space, input_shape={input_shape}, num_classes={_classes(output_shape)})",
            "model = space.build(arch)",
            f'model.load_state_dict(torch.load("{paths["state_dict"].name}"))',
            "model.eval()",
            "```",
            "",
        ]
    for key, value in card.items():
        lines += [f"## {str(key).replace('_', ' ').capitalize()}", "", *_markdown(value), ""]
    if parity:
        lines += [
            "## Parity",
            "",
            f"Largest absolute difference of the logits on a seeded batch of {_PARITY_BATCH}:",
            "",
        ]
        lines += _table({name: f"{diff:.3g}" for name, diff in parity}, ("comparison", "max abs difference"))
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(("batch", *map(str, shape))) + ")"


def _classes(output_shape: tuple[int, ...]) -> int | str:
    return output_shape[0] if len(output_shape) == 1 else "..."


def _plain(value: Any) -> Any:
    """``value`` with dataclasses, numpy scalars and arrays turned into plain mappings, lists and scalars."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _is_scalar(value: Any) -> bool:
    """Whether ``value`` fits on one line: not a mapping, and not a list unless of such values."""
    if isinstance(value, list):
        return all(not isinstance(v, (Mapping, list)) for v in value)
    return not isinstance(value, Mapping)


def _text(value: Any) -> str:
    """One value as markdown text on one line."""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_text(v)}" for k, v in value.items()) + "}"
    return " ".join(str(value).split()).replace("|", "\\|")


def _table(rows: Mapping[Any, Any], header: tuple[str, str]) -> list[str]:
    """A two-column markdown table, one row per item."""
    return [
        f"| {header[0]} | {header[1]} |",
        "| --- | --- |",
        *(f"| {_text(k)} | {_text(v)} |" for k, v in rows.items()),
    ]


def _markdown(value: Any) -> list[str]:
    """A card section's content: a mapping of scalars as a table, a list of scalars numbered from 0, nested content
    as bullet lists, else the text."""
    value = _plain(value)
    if isinstance(value, Mapping):
        if not value:
            return ["(none)"]
        if all(_is_scalar(v) for v in value.values()):
            return _table(value, ("name", "value"))
    elif not isinstance(value, list):
        return [str(value)]
    elif _is_scalar(value):
        return [f"{i}. {_text(v)}" for i, v in enumerate(value)] or ["(none)"]
    return _bullets(value, 0)


def _bullets(value: Mapping[Any, Any] | list[Any], depth: int) -> list[str]:
    """Nested content as a markdown bullet list, indented by ``depth``."""
    pairs = value.items() if isinstance(value, Mapping) else ((None, v) for v in value)
    lines = []
    for key, item in pairs:
        head = "  " * depth + ("-" if key is None else f"- {_text(key)}:")
        if _is_scalar(item) or not item:
            lines.append(f"{head} {_text(item)}")
        else:
            lines += [head, *_bullets(item, depth + 1)]
    return lines
