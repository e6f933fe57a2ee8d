"""The ``nas`` commands of a user's day: ``search``, ``query``, ``export``, ``report`` and ``verify`` a run.

Each command imports what it needs when it runs (the store, the search, export and torch, the report), so that
``nas --help`` and a config refused by `load_config` start without them.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.table import Table

from nas.core.errors import InvalidOptionError
from nas.core.evaluation import Status, figure_keys
from nas.core.plugins import FROM_OPTION, load_plugins, parse_plugins
from nas.search.config import EXPORT_FORMATS as FORMATS
from nas.search.config import config_plugins, load_config, read_document

if TYPE_CHECKING:
    import pandas as pd

    from nas.search.run import Run

console = Console()
err_console = Console(stderr=True)

REPORT_DIR = "report"
#: The end of a search lists this many of the commonest failure reasons.
FAILURE_REASONS = 3
EXPORT_DIR = "export"
PLUGIN_HELP = (
    "A module or a Python file to import first, registering components of your own (spaces, evaluators, "
    "strategies, predictors); repeatable. See also the config's plugins: and NAS_PLUGINS."
)


def plugin_option(func: Any) -> Any:
    """``--plugin MODULE|FILE.py``, repeatable: the command gets the entries as ``plugins``."""
    return click.option("--plugin", "plugins", multiple=True, metavar="MODULE|FILE.py", help=PLUGIN_HELP)(func)


def _import_plugins(plugins: tuple[str, ...]) -> None:
    load_plugins(parse_plugins(plugins, FROM_OPTION))


@click.command("search")
@click.argument("config_path", metavar="CONFIG", type=click.Path(path_type=Path))
@click.option("--address", help="Ray cluster: auto or HOST:PORT (default: a local Ray; `local`: no Ray).")
@click.option(
    "--storage",
    help="Optuna storage URL, e.g. postgresql+psycopg2://user@host/db (default: SQLite in the run).",
)
@click.option("--name", help="The run's name (default: the config's); the run lives in OUT/NAME.")
@click.option("--resume", is_flag=True, help="Continue the stopped or killed run OUT/NAME.")
@click.option("--max-evals", type=click.IntRange(min=1), help="Evaluation budget of the run (overrides the config).")
@click.option(
    "--wall-time",
    type=click.FloatRange(min=0, min_open=True),
    help="Wall-time budget of the run in seconds, resumes included (overrides the config).",
)
@click.option("--seed", type=int, help="Seed of the search (overrides the config).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs"), show_default=True, help="Runs folder.")
@click.option("--no-progress", is_flag=True, help="Do not draw the progress bar.")
@plugin_option
@click.pass_context
def search_command(
    ctx: click.Context,
    config_path: Path,
    address: str | None,
    storage: str | None,
    name: str | None,
    resume: bool,
    max_evals: int | None,
    wall_time: float | None,
    seed: int | None,
    out: Path,
    no_progress: bool,
    plugins: tuple[str, ...],
) -> None:
    """Search the space of CONFIG for the Pareto front; print it, write the report and export the best models.

    The plugins of the config, of NAS_PLUGINS and of --plugin (before or after `search`) are imported here and on
    every Ray worker, and kept in the run's config.yaml: --resume imports them again."""
    overrides: dict[str, Any] = {}
    for key, value in (("name", name), ("seed", seed), ("storage", {"url": storage} if storage else None)):
        if value is not None:
            overrides[key] = value
    if address:
        overrides["execution"] = {"address": address}
    budget = {"evaluations": max_evals, "wall_time_s": wall_time}
    if any(budget.values()):
        overrides["budget"] = {key: value for key, value in budget.items() if value}
    given = [*parse_plugins((ctx.obj or {}).get("plugins", ()), FROM_OPTION), *parse_plugins(plugins, FROM_OPTION)]
    if resume:  # the run's own plugins first: the config's components may come from them
        from nas.search.run import CONFIG_FILE

        stored = out / str(name or read_document(config_path).get("name", "")) / CONFIG_FILE
        given = [*(config_plugins(stored) if stored.is_file() else []), *given]
    config = load_config(config_path, plugins=given, **overrides)
    from nas.search.experiment import run_search

    start = time.perf_counter()

    def finish(run: Run) -> None:  # while the search still holds the run: nobody else writes it meanwhile
        from nas.analysis.report import write_report
        from nas.deploy.models import export_run

        frame = run.to_dataframe()
        _print_summary(run, frame, time.perf_counter() - start)
        front = run.pareto()
        _print_frame(run, front, f"Pareto front of {config.name}")
        assert run.path is not None
        report = write_report(frame, run.objectives, run.path / REPORT_DIR, title=config.name)
        console.print(f"report: {report}")
        top = list(front["arch_id"][: config.export.top]) if config.export.top and not front.empty else []
        if top:
            _print_exported(export_run(run, top, run.path / EXPORT_DIR, config.export.formats))

    try:
        run_search(config, out, resume=resume, progress=not no_progress, finish=finish)
    except KeyboardInterrupt:
        err_console.print(
            f"stopped; what was evaluated is stored in {out / config.name}. Continue with: "
            f"nas search {config_path} --out {out} --name {config.name} --resume"
        )
        raise SystemExit(130) from None


def _print_summary(run: Run, frame: pd.DataFrame, seconds: float) -> None:
    """How many evaluations of ``frame`` (`Run.to_dataframe`) ended how, why the search stopped, and the commonest
    reasons of failure."""
    counts = frame["status"].value_counts()
    outcomes = ", ".join(f"{counts.get(status.value, 0)} {status.value}" for status in Status)
    console.print(f"{run.store.name}: {len(frame)} evaluations ({outcomes}) in {seconds:.0f} s; {run.stop_reason}")
    reasons = frame.loc[frame["status"] == Status.FAILED.value, "reason"].value_counts()
    for reason, count in reasons.head(FAILURE_REASONS).items():
        console.print(f"  {count} failed: {reason}")
    if len(reasons):
        console.print(f"  all failures: nas query {run.path} --status failed")


def _print_exported(exported: dict[str, dict[str, Path]]) -> None:
    for arch_id, files in exported.items():
        console.print(f"exported {arch_id} to {files['arch'].parent}: {', '.join(p.name for p in files.values())}")


def _run_argument(func: Any) -> Any:
    """RUN_DIR, or the storage URL (and run name) of a run."""
    func = click.option("--name", help="The run's name, when the storage holds several.")(func)
    func = click.option("--storage", help="Open the run from this storage URL instead of a run directory.")(func)
    return click.argument("run_dir", required=False, type=click.Path(path_type=Path))(func)


def _open(run_dir: Path | None, storage: str | None, name: str | None) -> Run:
    if run_dir is None and storage is None:
        raise click.UsageError("give a run directory or --storage URL")
    from nas.search.run import load_run

    return load_run(run_dir, storage=storage, name=name)


@click.command("query")
@_run_argument
@click.option("--pareto", is_flag=True, help="Only the Pareto front (of the results that meet the conditions).")
@click.option("--where", "conditions", multiple=True, help="A condition such as macs<=20e6 (repeatable).")
@click.option("--sort", help="Sort by this column (objectives best first; -COL for descending).")
@click.option("--top", type=click.IntRange(min=1), help="Only the first K rows.")
@click.option("--status", type=click.Choice([s.value for s in Status]), help="Only evaluations that ended so.")
@click.option(
    "--fidelity",
    type=click.Choice(["top", "all"]),
    default="top",
    show_default=True,
    help="The front of the run's highest fidelity, or of all (with architectures stopped early).",
)
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@plugin_option
def query_command(
    run_dir: Path | None,
    storage: str | None,
    name: str | None,
    pareto: bool,
    conditions: tuple[str, ...],
    sort: str | None,
    top: int | None,
    status: str | None,
    fidelity: str,
    fmt: str,
    plugins: tuple[str, ...],
) -> None:
    """The architectures a run evaluated, filtered, sorted, as a table, CSV or JSON."""
    _import_plugins(plugins)
    run = _open(run_dir, storage, name)
    frame = run.query(conditions, pareto=pareto, sort=sort, top=top, status=status, all_fidelities=fidelity == "all")
    if fmt == "json":
        click.echo(json.dumps(records(run, frame), indent=1))
    elif fmt == "csv":
        click.echo(_flat(run, frame).to_csv(index=False), nl=False)
    else:
        _print_frame(run, frame, f"{len(frame)} architectures of {run.store.name}")


def records(run: Run, frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Each row as ``{arch_id, arch, <objectives>, costs, metrics, status, reason, fidelity, feasible}``."""
    results = {r.arch_id: r for r in run.store.results()}
    rows = []
    for arch_id, feasible in zip(frame["arch_id"], frame["feasible"], strict=True):
        result = results[arch_id]
        row: dict[str, Any] = {"arch_id": arch_id, "arch": result.arch.to_dict()}
        row.update({o.name: _number(result.value(o.name)) for o in run.objectives})
        row.update(costs=dict(result.costs), metrics=dict(result.metrics))
        row.update(status=result.status.value, reason=result.reason, fidelity=dict(result.provenance.fidelity))
        row.update(feasible=bool(feasible))
        rows.append(row)
    return rows


def _number(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _columns(run: Run, frame: pd.DataFrame) -> list[str]:
    """arch_id, the objectives, then the costs no objective shows already, the fidelity, the status, and the
    reason when a row failed."""
    names = ["arch_id", *(o.name for o in run.objectives)]
    shown = {key for o in run.objectives for key in figure_keys(o.name)}
    costs = [c for c in frame.columns if c in ("macs", "params") or str(c).startswith("latency_ms:")]
    failed = ["reason"] if (frame["status"] == Status.FAILED.value).any() else []
    return [*dict.fromkeys([*names, *(c for c in costs if c not in shown), "fidelity", "status", *failed])]


def _flat(run: Run, frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return frame
    flat = frame[_columns(run, frame)].copy()
    flat["choices"] = [json.dumps(a["choices"]) for a in frame["arch"]]
    return flat


def _print_frame(run: Run, frame: pd.DataFrame, title: str) -> None:
    if frame.empty:
        console.print(f"{title}: none")
        return
    columns = _columns(run, frame)
    table = Table(*columns, title=title)
    for row in frame[columns].itertuples(index=False):
        table.add_row(*(f"{v:.6g}" if isinstance(v, float) else str(v) for v in row))
    console.print(table)


@click.command("export")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.argument("arch_ids", nargs=-1)
@click.option("--best", is_flag=True, help="The best architecture of the front (by the first objective).")
@click.option("--where", "conditions", multiple=True, help="With --best: only among those meeting the condition.")
@click.option(
    "--format", "fmt", type=click.Choice([*FORMATS, "all"]), default="all", show_default=True, help="What to write."
)
@click.option("-o", "--out", type=click.Path(path_type=Path), help="Output folder (default: RUN_DIR/export).")
@click.option("--untrained", is_flag=True, help="Export freshly initialized weights instead of training.")
@click.option(
    "--finetune",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Train the found weights (kept, or inherited from a supernet) this many more epochs first.",
)
@plugin_option
def export_command(
    run_dir: Path,
    arch_ids: tuple[str, ...],
    best: bool,
    conditions: tuple[str, ...],
    fmt: str,
    out: Path | None,
    untrained: bool,
    finetune: int,
    plugins: tuple[str, ...],
) -> None:
    """Export architectures of a run (ARCH_ID... or --best): architecture JSON, weights, TorchScript, ONNX, model
    card. The weights are those the search trained or inherited from its supernet, else the architecture is trained
    as the config says."""
    _import_plugins(plugins)
    from nas.deploy.models import export_run
    from nas.search.run import load_run

    run = load_run(run_dir)
    ids = list(arch_ids)
    if best:
        front = run.query(conditions, pareto=True, top=1)
        if front.empty:
            raise InvalidOptionError("no architecture of this run meets the conditions; see `nas query`")
        ids.append(str(front["arch_id"].iloc[0]))
    if not ids:
        raise click.UsageError("name ARCH_IDs or give --best")
    formats = FORMATS if fmt == "all" else (fmt,)
    if untrained and finetune:
        raise click.UsageError("--untrained and --finetune exclude each other")
    exported = export_run(run, ids, out or run_dir / EXPORT_DIR, formats, untrained=untrained, finetune=finetune)
    _print_exported(exported)


@click.command("report")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), help="Output folder (default: RUN_DIR/report).")
@plugin_option
def report_command(run_dir: Path, out: Path | None, plugins: tuple[str, ...]) -> None:
    """Write a run's report: an HTML page (works offline) with Pareto plots, the front and the progress, and PNGs."""
    _import_plugins(plugins)
    from nas.analysis.report import write_report
    from nas.search.run import load_run

    run = load_run(run_dir)
    page = write_report(run.to_dataframe(), run.objectives, out or run_dir / REPORT_DIR, title=run.store.name)
    console.print(str(page))


@click.command("verify")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--sample", type=click.IntRange(min=0), default=8, show_default=True, help="Random architectures.")
@click.option("--top", type=click.IntRange(min=0), default=3, show_default=True, help="Best of the front.")
@click.option("--epochs", type=click.IntRange(min=1), help="Training epochs (default: the train evaluator's).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random sample.")
@plugin_option
def verify_command(
    run_dir: Path, sample: int, top: int, epochs: int | None, seed: int, plugins: tuple[str, ...]
) -> None:
    """Retrain found architectures with the train evaluator and report how well the search's evaluator ranked them."""
    _import_plugins(plugins)
    from nas.deploy.models import verify_run
    from nas.search.run import load_run

    run = load_run(run_dir)
    report = verify_run(run, sample, top, seed=seed, **({"epochs": epochs} if epochs else {}))
    table = Table("arch_id", f"search {report['objective']}", "trained accuracy", title="retrained architectures")
    for row in report["trained"]:
        table.add_row(row["arch_id"], f"{row['search']:.4g}", f"{row['trained']:.4g}")
    console.print(table)
    figures = report["agreement"]
    console.print(
        f"Kendall tau {figures['kendall_tau']:.3f}, Spearman {figures['spearman']:.3f}, "
        f"precision at {figures['k']} {figures['precision_at_k']:.2f} over {figures['count']} architectures"
    )


RUN_COMMANDS = (search_command, query_command, export_command, report_command, verify_command)
