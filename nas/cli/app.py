"""The ``nas`` command line. Bad input exits with status 2 and one sentence on stderr, never a traceback."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from typing import Any

import click
import yaml
from rich.console import Console
from rich.table import Table

from nas.analysis.bench import (
    BENCH_PROXIES,
    SUPERNET_VARIANTS,
    bench_nb201,
    bench_predictors,
    bench_proxies,
    bench_supernet,
)
from nas.cli.runs import RUN_COMMANDS, plugin_option
from nas.core.errors import NASError
from nas.core.plugins import FROM_OPTION, environment_plugins, load_plugins, parse_plugins
from nas.core.predictors import PREDICTORS
from nas.core.space import NetworkSpace, create_space, list_spaces, network_space
from nas.deploy.latency import Backend, measure_latency

#: Above this many architectures `space show` reports cost ranges over a random sample instead of all of them.
EXACT_RANGE_LIMIT = 20_000
RANGE_SAMPLES = 2_000

console = Console()


def _parse_shape(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, int, int] | None:
    if value is None:
        return None
    parts = value.replace("x", ",").split(",")
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise click.BadParameter(f"expected three positive integers C,H,W such as 3,32,32; got {value!r}")
    return shape  # type: ignore[return-value]


def _parse_options(ctx: click.Context, param: click.Parameter, values: Sequence[str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE such as block=conv or depths=[1,2]; got {item!r}")
        options[key.strip().replace("-", "_")] = yaml.safe_load(raw)
    return options


def _space_arguments(func: Any) -> Any:
    """The arguments every ``nas space`` command shares: the space's name and its task and options."""
    func = click.option(
        "--option",
        "-O",
        "options",
        multiple=True,
        callback=_parse_options,
        help="A space option as KEY=VALUE (VALUE in YAML), repeatable.",
    )(func)
    func = click.option("--num-classes", type=click.IntRange(min=1), help="Number of classes of the task.")(func)
    func = click.option("--input-shape", callback=_parse_shape, help="Input shape C,H,W (for example 3,32,32).")(func)
    return click.argument("name")(func)


def _make_space(
    name: str, input_shape: tuple[int, int, int] | None, num_classes: int | None, options: dict
) -> NetworkSpace:
    task = {k: v for k, v in (("input_shape", input_shape), ("num_classes", num_classes)) if v is not None}
    return network_space(create_space(name, **task, **options), "nas space")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="nas-pareto")
@plugin_option
@click.pass_context
def cli(ctx: click.Context, plugins: tuple[str, ...]) -> None:
    """Neural architecture search for the Pareto front of accuracy versus cost.

    Plugins (--plugin here or after a command, NAS_PLUGINS) are imported before any command runs."""
    load_plugins([*environment_plugins(), *parse_plugins(plugins, FROM_OPTION)])
    ctx.obj = {"plugins": plugins}


@cli.command("spaces")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object name -> description.")
def spaces_command(as_json: bool) -> None:
    """List the registered search spaces."""
    spaces = list_spaces()
    if as_json:
        click.echo(json.dumps(spaces))
        return
    table = Table("space", "description")
    for name, description in spaces.items():
        table.add_row(name, description)
    console.print(table)


@cli.group("space")
def space_group() -> None:
    """Inspect one search space."""


@space_group.command("show")
@_space_arguments
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def show_command(name: str, input_shape: Any, num_classes: Any, options: dict, as_json: bool) -> None:
    """Dimensions, size, and range of MACs and parameters of a space."""
    space = _make_space(name, input_shape, num_classes, options)
    summary = describe(space)
    if as_json:
        click.echo(json.dumps(summary))
        return
    console.print(f"[bold]{space.name}[/] (version {space.version}): {space.description}")
    console.print(
        f"task: input {summary['input_shape']}, {space.num_classes} classes; {summary['size']:,} architectures"
    )
    table = Table("dimension", "options")
    for dim in summary["dimensions"]:
        table.add_row(dim["name"], ", ".join(map(str, dim["options"])))
    console.print(table)
    over = "all architectures" if summary["range_exact"] else f"{RANGE_SAMPLES:,} random architectures"
    for key in ("macs", "params"):
        low, high = summary[key]
        console.print(f"{key}: {low:,} .. {high:,} (over {over})")


def describe(space: NetworkSpace) -> dict[str, Any]:
    """A JSON-able summary of a space: task, dimensions, size and cost ranges."""
    exact = space.size() <= EXACT_RANGE_LIMIT
    archs = space.enumerate() if exact else iter(space.sample_many(RANGE_SAMPLES, 0))
    costs = [space.cost(arch) for arch in archs]
    return {
        "name": space.name,
        "version": space.version,
        "description": space.description,
        "input_shape": list(space.input_shape),
        "num_classes": space.num_classes,
        "size": space.size(),
        "dimensions": [{"name": d.name, "options": [_plain(o) for o in d.options]} for d in space.dimensions()],
        "macs": [min(c.macs for c in costs), max(c.macs for c in costs)],
        "params": [min(c.params for c in costs), max(c.params for c in costs)],
        "range_exact": exact,
    }


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


@space_group.command("sample")
@_space_arguments
@click.option("--n", "count", type=click.IntRange(min=1), default=1, show_default=True, help="How many architectures.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed: the same seed gives the same lines.")
@click.option(
    "--json", "as_json", is_flag=True, help='One JSON object per line: {"arch_id", "arch", "macs", "params"}.'
)
def sample_command(
    name: str, input_shape: Any, num_classes: Any, options: dict, count: int, seed: int, as_json: bool
) -> None:
    """Draw architectures at random, with their MACs and parameters."""
    space = _make_space(name, input_shape, num_classes, options)
    rows: list[dict[str, Any]] = []
    for arch in space.sample_many(count, seed):
        cost = space.cost(arch)
        rows.append({"arch_id": arch.arch_id, "arch": arch.to_dict(), "macs": cost.macs, "params": cost.params})
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
        return
    table = Table("arch_id", "macs", "params", "choices")
    for row in rows:
        choices = " ".join(f"{k}={_plain(v)}" for k, v in row["arch"]["choices"].items())
        table.add_row(row["arch_id"], f"{row['macs']:,}", f"{row['params']:,}", choices)
    console.print(table)


@space_group.command("measure")
@_space_arguments
@click.option("--n", "count", type=click.IntRange(min=1), default=3, show_default=True, help="How many architectures.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the sample.")
@click.option(
    "--backend",
    "backends",
    default="torch",
    show_default=True,
    help=f"Comma-separated backends: {', '.join(b.value for b in Backend)}.",
)
@click.option("--runs", type=click.IntRange(min=1), default=200, show_default=True, help="Timed runs per network.")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True, help="Inference threads.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def measure_command(
    name: str,
    input_shape: Any,
    num_classes: Any,
    options: dict,
    count: int,
    seed: int,
    backends: str,
    runs: int,
    threads: int,
    as_json: bool,
) -> None:
    """Sample architectures, build them and measure their latency on this machine (CPU, batch 1)."""
    space = _make_space(name, input_shape, num_classes, options)
    chosen = [b.strip() for b in backends.split(",") if b.strip()]
    table = Table("arch_id", "macs", "params", *(f"{b} ms (p10-p90)" for b in chosen))
    for arch in space.sample_many(count, seed):
        cost, model = space.cost(arch), space.build(arch)
        latencies = {
            b: measure_latency(model, space.input_shape, backend=b, runs=runs, threads=threads) for b in chosen
        }
        if as_json:
            row = {"arch_id": arch.arch_id, "arch": arch.to_dict(), **cost.to_dict()}
            click.echo(json.dumps({**row, "latency": {b: lat.to_dict() for b, lat in latencies.items()}}))
            continue
        spreads = [f"{lat.median_ms:.3f} ({lat.p10_ms:.3f}-{lat.p90_ms:.3f})" for lat in latencies.values()]
        table.add_row(arch.arch_id, f"{cost.macs:,}", f"{cost.params:,}", *spreads)
    if not as_json:
        console.print(f"{space.name} on {space.input_shape}: batch 1, {threads} thread(s), median of {runs} runs")
        console.print(table)


def _nb201_options(data: str) -> Any:
    """The options every NAS-Bench-201 benchmark shares: where its data lies (``data`` says what) and the dataset."""

    def decorate(func: Any) -> Any:
        func = click.option(
            "--dataset",
            type=click.Choice(["cifar10", "cifar100", "imagenet16-120"]),
            default="cifar10",
            show_default=True,
        )(func)
        help_text = f"Folder with {data} [NAS_DATA_DIR]."
        return click.option("--data-dir", type=click.Path(file_okay=False), help=help_text)(func)

    return decorate


@cli.group("bench")
def bench_group() -> None:
    """Benchmark strategies against exact ground truth."""


@bench_group.command("nb201")
@_nb201_options("the NAS-Bench-201 tables")
@click.option(
    "--objectives",
    default="accuracy",
    show_default=True,
    help="accuracy, optionally with one cost: accuracy,macs | accuracy,params | accuracy,latency:DEVICE.",
)
@click.option("--strategy", default="all", show_default=True, help="A registered strategy, or all (with Optuna's).")
@click.option("--budget", type=click.IntRange(min=1), default=50, show_default=True, help="Distinct evaluations.")
@click.option("--seeds", type=click.IntRange(min=1), default=10, show_default=True, help="Searches per strategy.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per strategy and line.")
def bench_nb201_command(
    data_dir: str | None, dataset: str, objectives: str, strategy: str, budget: int, seeds: int, as_json: bool
) -> None:
    """Search NAS-Bench-201 with each strategy and score it against the table's exact optimum or Pareto front."""
    rows = bench_nb201(data_dir, dataset, objectives.split(","), strategy, budget, seeds)
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
        return
    single = "final_regret" in rows[0]
    figures = ["regret mean", "regret median"] if single else ["hv_ratio median", "front_recovery median"]
    table = Table(
        "strategy", *figures, "ask+tell ms", title=f"nb201 {dataset}: {objectives}, budget {budget}, {seeds} seeds"
    )
    for row in rows:
        shown = (
            (row["final_regret"]["mean"], row["final_regret"]["median"])
            if single
            else (row["hv_ratio"]["median"], row["front_recovery"]["median"])
        )
        table.add_row(row["strategy"], *(f"{x:.4f}" for x in shown), f"{row['ask_tell_ms']['median']:.2f}")
    console.print(table)


@bench_group.command("predictors")
@_nb201_options("the NAS-Bench-201 tables")
@click.option("--train-size", type=click.IntRange(min=2), default=100, show_default=True, help="Training cells.")
@click.option("--seeds", type=click.IntRange(min=1), default=10, show_default=True, help="Training samples drawn.")
@click.option("--predictors", default="all", show_default=True, help="Comma-separated registered predictors, or all.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def bench_predictors_command(
    data_dir: str | None, dataset: str, train_size: int, seeds: int, predictors: str, as_json: bool
) -> None:
    """Fit each predictor on random NAS-Bench-201 cells and rank all the other cells against the table."""
    names = None if predictors == "all" else [PREDICTORS.get(p.strip()).name for p in predictors.split(",")]
    row = bench_predictors(data_dir, dataset, train_size, seeds, names)
    if as_json:
        click.echo(json.dumps(row))
        return
    table = Table(
        "predictor",
        "Kendall tau mean",
        "median",
        "Spearman mean",
        "fit s",
        title=f"nb201 {dataset}: {train_size} training cells, tested on the rest, {seeds} seeds",
    )
    for name, tau in row["kendall_tau"].items():
        figures = (tau["mean"], tau["median"], row["spearman"][name]["mean"], row["fit_seconds"][name]["mean"])
        table.add_row(name, *(f"{x:.3f}" for x in figures))
    console.print(table)


@bench_group.command("proxies")
@_nb201_options("the NAS-Bench-201 table, the published scores and Fashion-MNIST")
@click.option("--proxies", default=",".join(BENCH_PROXIES), show_default=True, help="Comma-separated proxies to score.")
@click.option(
    "--proxy-data",
    default="fashion-mnist",
    show_default=True,
    help="Dataset of the data-dependent proxies' minibatch, fitted to the network's input shape.",
)
@click.option("--batch-size", type=click.IntRange(min=2), default=32, show_default=True, help="Minibatch size.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the weights and the minibatch.")
@click.option("--limit", type=click.IntRange(min=2), help="Score only the first N published cells (quick checks).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def bench_proxies_command(
    data_dir: str | None,
    dataset: str,
    proxies: str,
    proxy_data: str,
    batch_size: int,
    seed: int,
    limit: int | None,
    as_json: bool,
) -> None:
    """Score NAS-Bench-Suite-Zero's sample of NAS-Bench-201 cells with each zero-cost proxy; rank them against the
    published scores and the table's test accuracy."""

    start = time.perf_counter()

    def progress(done: int, total: int) -> None:
        click.echo(f"proxies: {done}/{total} cells ({time.perf_counter() - start:.0f} s)", err=True)

    row = bench_proxies(
        data_dir,
        dataset,
        [p.strip() for p in proxies.split(",") if p.strip()],
        proxy_dataset=proxy_data,
        batch_size=batch_size,
        seed=seed,
        limit=limit,
        progress=progress,
    )
    if as_json:
        click.echo(json.dumps(row))
        return
    table = Table(
        "proxy",
        "data",
        "Spearman vs published",
        "Kendall vs accuracy",
        "published: Kendall vs accuracy",
        title=f"zero-cost proxies, nb201 {dataset}: {row['cells']} published cells, {row['wall_time_s']:.0f} s",
    )
    for proxy, rho in row["spearman_vs_published"].items():
        table.add_row(
            proxy,
            "none" if proxy in row["data_free"] else row["proxy_data"]["dataset"],
            f"{rho:.4f}",
            f"{row['kendall_vs_accuracy'][proxy]:.4f}",
            f"{row['published_kendall_vs_accuracy'][proxy]:.4f}",
        )
    console.print(table)
    data = row["proxy_data"]
    console.print(
        f"data-dependent proxies: {data['batch_size']} {data['dataset']} training images ({data['input']}); "
        f"the published scores used {data['published_scores_used']}"
    )


@bench_group.command("supernet")
@click.option(
    "--space",
    "space_name",
    type=click.Choice(["resnet20-pooling", "macro-cnn"]),
    required=True,
    help="The space whose supernet is ranked.",
)
@click.option("--dataset", default="fashion-mnist", show_default=True, help="Dataset name, .npz file or image folder.")
@click.option(
    "--data-dir", type=click.Path(file_okay=False), help="Where the dataset's files are (default: NAS_DATA_DIR)."
)
@click.option(
    "--archs",
    type=click.IntRange(min=2),
    default=20,
    show_default=True,
    help="Ground-truth architectures trained from scratch.",
)
@click.option(
    "--variants", default=",".join(SUPERNET_VARIANTS), show_default=True, help="Comma-separated supernet variants."
)
@click.option(
    "--epochs", type=click.IntRange(min=1), default=3, show_default=True, help="Epochs of each ground-truth training."
)
@click.option(
    "--train-size",
    type=click.IntRange(min=2),
    default=8000,
    show_default=True,
    help="Training examples (ground truth and supernets).",
)
@click.option(
    "--val-size",
    type=click.IntRange(min=2),
    default=2000,
    show_default=True,
    help="Validation examples of the ground truth.",
)
@click.option(
    "--budget",
    type=click.FloatRange(min=0, min_open=True),
    default=4.0,
    show_default=True,
    help="Supernet training in subnet passes, as a multiple of one ground-truth training.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the architectures and trainings.")
@click.option("--cache", type=click.Path(file_okay=False), help="Ground-truth cache (default: ~/.cache/nas).")
@click.option(
    "--repeat-truth",
    is_flag=True,
    help="Also train the architectures with another seed and report how "
    "well the two trainings agree (the ceiling of any supernet's agreement).",
)
@click.option(
    "--option",
    "-O",
    "space_options",
    multiple=True,
    callback=_parse_options,
    help="A space option as KEY=VALUE (VALUE in YAML), repeatable; e.g. -O num_downsample=3.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def bench_supernet_command(
    space_name: str,
    dataset: str,
    data_dir: str | None,
    archs: int,
    variants: str,
    epochs: int,
    train_size: int,
    val_size: int,
    budget: float,
    seed: int,
    cache: str | None,
    repeat_truth: bool,
    space_options: dict[str, Any],
    as_json: bool,
) -> None:
    """Rank architectures with each supernet variant against training them from scratch."""
    row = bench_supernet(
        space_name,
        dataset,
        data_dir,
        archs,
        variants=[v.strip() for v in variants.split(",") if v.strip()],
        epochs=epochs,
        train_size=train_size,
        val_size=val_size,
        budget=budget,
        seed=seed,
        cache_dir=cache,
        repeat_truth=repeat_truth,
        space_options=space_options,
        progress=lambda message: click.echo(message, err=True),
    )
    if as_json:
        click.echo(json.dumps(row))
        return
    standalone = row["standalone_train_seconds"]
    table = Table(
        "variant",
        "Kendall tau",
        "Spearman",
        "precision@5",
        "train s",
        "x standalone",
        "eval ms/arch",
        title=f"supernets of {row['space']} on {row['dataset']}: {row['archs']} architectures, one trained "
        f"from scratch in {standalone:.0f} s",
    )
    for name, v in row["variants"].items():
        table.add_row(
            name,
            f"{v['kendall_tau']:.3f}",
            f"{v['spearman']:.3f}",
            f"{v['precision_at_5']:.2f}",
            f"{v['train_seconds']:.0f}",
            f"{v['train_seconds'] / standalone:.1f}",
            f"{v['eval_ms_per_arch']:.0f}",
        )
    console.print(table)
    if row["ground_truth_repeat"]:
        console.print(
            f"two trainings from scratch agree with Kendall tau {row['ground_truth_repeat']['kendall_tau']:.3f}"
        )


for _command in RUN_COMMANDS:
    cli.add_command(_command)


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point: run the CLI, turning bad input into exit status 2 and one sentence."""
    try:
        code = cli.main(args=argv, prog_name="nas", standalone_mode=False)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except NASError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)
    except OSError as error:  # a file or folder the command was pointed at cannot be read or written
        where = f": {error.filename}" if error.filename else ""
        click.echo(f"error: {error.strerror or error}{where}", err=True)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)
