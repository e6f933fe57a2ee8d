"""A self-contained HTML report of a search run: Pareto scatters, the front as a table, the search's progress.

`write_report` reads the frame that `nas.search.store.ResultStore.to_dataframe` returns and writes ``index.html``, with
plotly.js embedded so that the page works offline, and PNG versions of the plots drawn with matplotlib (Agg).
plotly and matplotlib come with the ``viz`` extra.
"""

from __future__ import annotations

import html
import math
import re
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from nas.core.errors import InvalidOptionError, import_extra
from nas.core.evaluation import Direction, Objective, figure_keys
from nas.core.figures import Unit, labelled
from nas.core.pareto import hypervolume, pareto_mask

#: Columns of `ResultStore.to_dataframe` that are not figures (metrics or costs) of an architecture.
NOT_FIGURES = frozenset(
    {"arch_id", "arch", "status", "fidelity", "reason", "evaluator", "wall_time_s", "feasible", "top_fidelity"}
)
#: A derived reference point lies this fraction of the observed range beyond the worst observed values.
REFERENCE_MARGIN = 0.1
FRONT_COLOUR, OTHER_COLOUR, LINE_COLOUR, BOUND_COLOUR = "#d62728", "#9a9a9a", "#1f77b4", "#2ca02c"
_STYLE = (
    'body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;margin:2rem auto;'
    "max-width:1100px;padding:0 1rem}table{border-collapse:collapse;font-size:.9rem}"
    "th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}th{background:#f3f3f3}"
    "td.num{text-align:right;font-variant-numeric:tabular-nums}td.choices,code{font-family:monospace}"
    "figure{margin:1rem 0}.note{color:#555}"
)


@dataclass(frozen=True)
class _Run:
    """Every evaluation, and what the report computes from them once."""

    frame: pd.DataFrame  # every evaluation, in order, indexed 0..n-1
    columns: tuple[str, ...]  # the frame's column of each objective
    values: np.ndarray  # evaluations x objectives, NaN where missing
    ok: np.ndarray  # per evaluation: status "ok", at the run's highest fidelity when the frame says which
    usable: np.ndarray  # per evaluation: ok and every objective finite (the plotted ones)
    on_front: np.ndarray  # per evaluation: usable and on the Pareto front over all objectives
    units: Mapping[str, Unit]  # figure -> unit, as the evaluator declared them

    def label(self, name: str) -> str:
        """A figure's name with its unit, e.g. ``accuracy [%]``."""
        return labelled(name, self.units)


@dataclass(frozen=True)
class _Series:
    """One trace: ``kind`` is "front" (highlighted, joined), "other" (faded points) or "progress" (a step line)."""

    name: str
    x: Sequence[float]
    y: Sequence[float]
    kind: str
    hover: Sequence[str] | None = None


@dataclass(frozen=True)
class _Plot:
    """One plot, drawn both by plotly (in the page) and by matplotlib (into the PNG file ``png``)."""

    key: str
    png: str
    title: str
    x_label: str
    y_label: str
    series: tuple[_Series, ...]
    x_bound: float | None = None
    y_bound: float | None = None


def write_report(
    results: pd.DataFrame,
    objectives: Sequence[Objective],
    out_dir: str | Path,
    *,
    title: str,
    reference: Sequence[float] | None = None,
    units: Mapping[str, Unit] | None = None,
) -> Path:
    """Write ``index.html`` and the plots as PNG files under ``out_dir``; return the HTML file's path.

    Args:
        results: one row per evaluation, in evaluation order, as `ResultStore.to_dataframe` returns it.
        objectives: the run's objectives; ``latency:<device>`` reads the column ``latency_ms:<device>``.
        out_dir: the folder to write into, created if needed.
        title: the page's title.
        reference: the hypervolume's reference point, one value per objective; by default one slightly beyond
            the worst observed values.
        units: the figures' units (`nas.Run.units`), shown beside their names (``accuracy [%]``).

    Raises:
        MissingExtraError: plotly or matplotlib is not installed.
        InvalidOptionError: no objectives, a reference of the wrong length, or an objective the results lack.
    """
    go = _import_viz("plotly.graph_objects")
    agg, mpl_figure = _import_viz("matplotlib.backends.backend_agg"), _import_viz("matplotlib.figure")
    objectives = tuple(objectives)
    if not objectives:
        raise InvalidOptionError("a report needs at least one objective")
    if reference is not None and len(reference) != len(objectives):
        raise InvalidOptionError(f"reference has {len(reference)} values; give one per objective ({len(objectives)})")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    run = _prepare(results, objectives, units or {})
    body = [_header_html(title, run, objectives)]
    plots: list[_Plot] = []
    if run.usable.any():
        ref, derived = _reference(run, objectives, reference)
        scatters, progress = _scatter_plots(run, objectives), _progress_plots(run, objectives, ref)
        plots = scatters + progress
        for png in dict.fromkeys(p.png for p in plots):
            _write_png(out / png, [p for p in plots if p.png == png], agg, mpl_figure)
        divs = [_plotly_div(go, plot, include_js=i == 0) for i, plot in enumerate(plots)]
        body += [
            _front_html(run, objectives, scatters, divs[: len(scatters)]),
            _progress_html(run, objectives, progress, divs[len(scatters) :], ref, derived),
        ]
    else:
        body.append(
            '<p id="no-results"><strong>No results to show:</strong> no evaluation of this run succeeded with a '
            "value for every objective.</p>"
        )
    path = out / "index.html"
    path.write_text(_page(title, body, len(plots)), encoding="utf-8")
    return path


# -- data --------------------------------------------------------------------------------------------------------
def _import_viz(name: str) -> ModuleType:
    return import_extra(name, "viz", "the HTML report")


def _column(name: str, columns: Iterable[str]) -> str:
    """The column an objective reads, by the rule of `EvalResult.value`: ``latency:<d>`` is ``latency_ms:<d>``."""
    present = set(columns)
    return next((k for k in figure_keys(name) if k in present), name)


def _numbers(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A column as floats (NaN where missing or not a number); all NaN when the frame lacks it."""
    if column not in frame:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)


def _figures(frame: pd.DataFrame) -> list[str]:
    """The metric and cost columns."""
    return [c for c in frame.columns if c not in NOT_FIGURES and pd.api.types.is_numeric_dtype(frame[c])]


def _prepare(results: pd.DataFrame, objectives: Sequence[Objective], units: Mapping[str, Unit]) -> _Run:
    frame = results.reset_index(drop=True)
    ok = (frame["status"] == "ok").to_numpy(dtype=bool) if "status" in frame else np.zeros(len(frame), dtype=bool)
    if "top_fidelity" in frame:  # `nas.Run.to_dataframe`: fronts hold the highest fidelity only
        ok = ok & frame["top_fidelity"].to_numpy(dtype=bool)
    columns = tuple(_column(o.name, frame.columns) for o in objectives)
    missing = [o.name for o, c in zip(objectives, columns, strict=True) if c not in frame]
    if missing and ok.any():
        raise InvalidOptionError(
            f"the results have no column for objective(s) {', '.join(missing)}; they have {', '.join(_figures(frame))}"
        )
    values = np.column_stack([_numbers(frame, c) for c in columns]) if len(frame) else np.empty((0, len(columns)))
    usable = ok & np.isfinite(values).all(axis=1)
    on_front = np.zeros(len(frame), dtype=bool)
    if usable.any():
        on_front[usable] = pareto_mask(values[usable], [o.resolved for o in objectives])
    return _Run(frame, columns, values, ok, usable, on_front, units)


def _reference(run: _Run, objectives: Sequence[Objective], given: Sequence[float] | None) -> tuple[np.ndarray, bool]:
    """The reference point and whether it was derived: ``REFERENCE_MARGIN`` of the range beyond the worst values."""
    if given is not None:
        return np.asarray(given, dtype=float), False
    values = run.values[run.usable]
    low, high = values.min(axis=0), values.max(axis=0)
    signs = np.array([o.sign() for o in objectives])
    worst = np.where(signs > 0, low, high)
    span = np.where(high > low, high - low, np.where(worst != 0, np.abs(worst), 1.0))
    return worst - signs * REFERENCE_MARGIN * span, True


def _best_so_far(run: _Run, objective: Objective, column: int) -> np.ndarray:
    """Per evaluation, the best value of one objective among the usable evaluations up to it (NaN before any)."""
    signed = pd.Series(np.where(run.usable, objective.sign() * run.values[:, column], np.nan))
    return objective.sign() * signed.cummax().ffill().to_numpy(dtype=float)


def _hypervolume_so_far(run: _Run, objectives: Sequence[Objective], reference: np.ndarray) -> np.ndarray:
    """Per evaluation, the hypervolume of the front of the usable evaluations up to it; the front is kept
    incrementally, so the volume is recomputed only when an evaluation joins it."""
    directions = [o.resolved for o in objectives]
    front = np.empty((0, len(objectives)))
    volume, volumes = 0.0, np.zeros(len(run.frame))
    for i in range(len(run.frame)):
        if run.usable[i]:
            candidates = np.vstack([front, run.values[i]])
            mask = pareto_mask(candidates, directions)
            if mask[-1]:
                front = candidates[mask]
                volume = hypervolume(front, reference, directions)
        volumes[i] = volume
    return volumes


# -- text ---------------------------------------------------------------------------------------------------------
def _esc(value: Any) -> str:
    return html.escape(str(value))


def _fmt(value: float) -> str:
    """A figure for people: large whole numbers with thousands separators, others with 6 significant digits."""
    if math.isfinite(value) and value == int(value) and abs(value) >= 1e4:
        return f"{value:,.0f}"
    return f"{value:.6g}"


def _choices_text(arch: Any) -> str:
    """An architecture's choices as compact ``k=v`` text."""
    choices = arch.get("choices", {}) if isinstance(arch, Mapping) else {}
    parts = []
    for key, value in choices.items():
        shown = ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
        parts.append(f"{key}={shown}")
    return " ".join(parts)


def _direction_text(objective: Objective) -> str:
    return "higher is better" if objective.direction is Direction.MAX else "lower is better"


def _bound_text(objective: Objective) -> str:
    if objective.bound is None:
        return ""
    return f"{'≥' if objective.direction is Direction.MAX else '≤'} {_fmt(objective.bound)}"


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _hover(row: pd.Series, figures: Sequence[str]) -> str:
    """Hover text of one evaluation: arch_id, choices, every figure (escaped; plotly reads <br> and <b>)."""
    lines = [f"<b>{_esc(row['arch_id'])}</b>"]
    lines += [_esc(line) for line in textwrap.wrap(_choices_text(row.get("arch")), 60)]
    for name in figures:
        value = pd.to_numeric(row[name], errors="coerce")
        if pd.notna(value):
            lines.append(f"{_esc(name)} = {_fmt(float(value))}")
    return "<br>".join(lines)


# -- plots ----------------------------------------------------------------------------------------------------------
def _primary(objectives: Sequence[Objective]) -> int:
    """The objective on the y axes: the first maximized one, else the first."""
    return next((i for i, o in enumerate(objectives) if o.direction is Direction.MAX), 0)


def _scatter_plots(run: _Run, objectives: Sequence[Objective]) -> list[_Plot]:
    """The primary objective against each other objective (against macs and params when there is only one)."""
    p = _primary(objectives)
    y_name, y_col = objectives[p].name, run.columns[p]
    x_axes: list[tuple[str, str, Objective | None]] = [
        (o.name, c, o) for i, (o, c) in enumerate(zip(objectives, run.columns, strict=True)) if i != p
    ]
    if len(objectives) == 1:
        x_axes = [(c, c, None) for c in ("macs", "params") if c in run.frame and c != y_col]
    shown = run.frame[run.usable]
    figures = _figures(run.frame)
    hover = np.array([_hover(row, figures) for _, row in shown.iterrows()], dtype=object)
    front = run.on_front[run.usable]
    plots = []
    for x_name, x_col, x_objective in x_axes:
        x, y = _numbers(shown, x_col), _numbers(shown, y_col)
        has_x = np.isfinite(x)
        on, off = front & has_x, ~front & has_x
        order = np.flatnonzero(on)[np.argsort(x[on], kind="stable")]
        series = (
            _Series(f"other evaluations ({off.sum()})", x[off].tolist(), y[off].tolist(), "other", hover[off].tolist()),
            _Series(f"Pareto front ({on.sum()})", x[order].tolist(), y[order].tolist(), "front", hover[order].tolist()),
        )
        x_label = run.label(x_name)
        x_label += "" if x_objective is None else f" ({_direction_text(x_objective)})"
        plots.append(
            _Plot(
                key=f"pareto-{_slug(x_name)}",
                png=f"pareto_{_slug(x_name)}.png",
                title=f"{y_name} vs {x_name}",
                x_label=x_label,
                y_label=f"{run.label(y_name)} ({_direction_text(objectives[p])})",
                series=series,
                x_bound=None if x_objective is None else x_objective.bound,
                y_bound=objectives[p].bound,
            )
        )
    return plots


def _progress_plots(run: _Run, objectives: Sequence[Objective], reference: np.ndarray) -> list[_Plot]:
    """Best value so far of the primary objective, and (with several objectives) hypervolume so far."""
    p = _primary(objectives)
    steps = list(range(1, len(run.frame) + 1))
    best = _best_so_far(run, objectives[p], p).tolist()
    name = objectives[p].name
    plots = [
        _Plot(
            "progress-best",
            "progress.png",
            f"best {name} so far",
            "evaluations",
            run.label(name),
            (_Series(f"best {name}", steps, best, "progress"),),
            y_bound=objectives[p].bound,
        )
    ]
    if len(objectives) > 1:
        volumes = _hypervolume_so_far(run, objectives, reference).tolist()
        plots.append(
            _Plot(
                "progress-hypervolume",
                "progress.png",
                "hypervolume of the front so far",
                "evaluations",
                "hypervolume",
                (_Series("hypervolume", steps, volumes, "progress"),),
            )
        )
    return plots


def _plotly_div(go: ModuleType, plot: _Plot, *, include_js: bool) -> str:
    """The plot as an interactive plotly ``<div>`` (with plotly.js inlined when ``include_js``)."""
    fig = go.Figure()
    for s in plot.series:
        if s.kind == "front":
            style = {
                "mode": "lines+markers",
                "marker": {"color": FRONT_COLOUR, "size": 9, "symbol": "diamond"},
                "line": {"color": FRONT_COLOUR, "width": 1.5},
            }
        elif s.kind == "other":
            style = {"mode": "markers", "marker": {"color": OTHER_COLOUR, "size": 6, "opacity": 0.45}}
        else:
            style = {"mode": "lines", "line": {"color": LINE_COLOUR, "shape": "hv"}}
        hover = {"hovertext": s.hover, "hoverinfo": "text"} if s.hover is not None else {}
        fig.add_trace(go.Scatter(x=s.x, y=s.y, name=_esc(s.name), **style, **hover))
    bound_line = {"line_dash": "dash", "line_color": BOUND_COLOUR}
    if plot.x_bound is not None:
        fig.add_vline(x=plot.x_bound, annotation_text=f"bound {_fmt(plot.x_bound)}", **bound_line)
    if plot.y_bound is not None:
        fig.add_hline(y=plot.y_bound, annotation_text=f"bound {_fmt(plot.y_bound)}", **bound_line)
    fig.update_layout(
        title=_esc(plot.title),
        xaxis_title=_esc(plot.x_label),
        yaxis_title=_esc(plot.y_label),
        template="plotly_white",
        height=480,
        hovermode="closest",
        margin={"t": 60, "r": 20},
    )
    return str(
        fig.to_html(
            full_html=False,
            include_plotlyjs=include_js,
            div_id=f"plot-{plot.key}",
            config={"displaylogo": False, "responsive": True},
        )
    )


def _write_png(path: Path, plots: Sequence[_Plot], agg: ModuleType, mpl_figure: ModuleType) -> None:
    """Draw ``plots`` side by side into one PNG file with matplotlib's Agg canvas (no pyplot, no global state)."""
    fig = mpl_figure.Figure(figsize=(6.4 * len(plots), 4.8), dpi=100, layout="constrained")
    agg.FigureCanvasAgg(fig)
    for ax, plot in zip(fig.subplots(1, len(plots), squeeze=False)[0], plots, strict=True):
        for s in plot.series:
            if s.kind == "front":
                ax.plot(s.x, s.y, "-D", color=FRONT_COLOUR, markersize=5, linewidth=1.2, label=s.name, zorder=3)
            elif s.kind == "other":
                ax.scatter(s.x, s.y, s=14, color=OTHER_COLOUR, alpha=0.45, label=s.name, zorder=2)
            else:
                ax.step(s.x, s.y, where="post", color=LINE_COLOUR, label=s.name)
        if plot.x_bound is not None:
            ax.axvline(plot.x_bound, linestyle="--", color=BOUND_COLOUR, label=f"bound {_fmt(plot.x_bound)}")
        if plot.y_bound is not None:
            ax.axhline(plot.y_bound, linestyle="--", color=BOUND_COLOUR, label=f"bound {_fmt(plot.y_bound)}")
        ax.set(title=plot.title, xlabel=plot.x_label, ylabel=plot.y_label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.savefig(path)


# -- page -----------------------------------------------------------------------------------------------------------
def _figure_html(plot: _Plot, div: str) -> str:
    link = f'<figcaption><a href="{_esc(plot.png)}">PNG: {_esc(plot.png)}</a></figcaption>'
    return f'<figure class="plot" data-plot="{_esc(plot.key)}">\n{div}\n{link}</figure>'


def _header_html(title: str, run: _Run, objectives: Sequence[Objective]) -> str:
    n, ok = len(run.frame), int(run.ok.sum())
    statuses = run.frame["status"].value_counts() if "status" in run.frame else pd.Series(dtype=int)
    failed, pruned = int(statuses.get("failed", 0)), int(statuses.get("pruned", 0))
    summary = f"{n} evaluation{'s' if n != 1 else ''}: {ok} ok, {pruned} pruned, {failed} failed."
    if pruned:
        summary += " Pruned ones were stopped early at a lower fidelity and are left out of the front."
    if "fidelity" in run.frame and ok:
        summary += f" The front's fidelity: {run.frame.loc[run.ok, 'fidelity'].iloc[0]}."
    incomplete = ok - int(run.usable.sum())
    if incomplete:
        summary += f" {incomplete} ok evaluation(s) lack a value for some objective and are left out of the plots."
    items = []
    for o in objectives:
        bound = f", constraint {_esc(_bound_text(o))}" if o.bound is not None else ""
        items.append(
            f"<li><code>{_esc(o.name)}</code>{_esc(run.label(o.name).removeprefix(o.name))}: "
            f"{'maximized' if o.direction is Direction.MAX else 'minimized'}{bound}</li>"
        )
    return (
        f"<h1>{_esc(title)}</h1>\n"
        f'<p id="summary" data-evaluations="{n}" data-ok="{ok}" data-pruned="{pruned}" data-failed="{failed}">'
        f"{_esc(summary)}</p>\n"
        f'<h2>Objectives</h2>\n<ul id="objectives">{"".join(items)}</ul>' + _failures_html(run)
    )


def _failures_html(run: _Run) -> str:
    """The failed evaluations, grouped by reason (most frequent first), with their architectures."""
    if "status" not in run.frame:
        return ""
    failed = run.frame[run.frame["status"] == "failed"]
    if failed.empty:
        return ""
    rows = [
        f'<tr><td class="num">{len(group)}</td><td>{_esc(str(reason))}</td>'
        f"<td><code>{_esc(' '.join(group['arch_id']))}</code></td></tr>"
        for reason, group in sorted(failed.groupby("reason", sort=False), key=lambda item: -len(item[1]))
    ]
    return (
        f'\n<h2>Failed evaluations ({len(failed)})</h2>\n<table id="failures"><thead><tr><th>count</th>'
        f"<th>reason</th><th>arch_id</th></tr></thead><tbody>\n{chr(10).join(rows)}\n</tbody></table>"
    )


def _front_html(run: _Run, objectives: Sequence[Objective], plots: Sequence[_Plot], divs: Sequence[str]) -> str:
    """The scatters and the front as a table, sorted by the first objective (best first)."""
    front = run.frame[run.on_front]
    order = np.argsort(-objectives[0].sign() * run.values[run.on_front, 0], kind="stable")
    extra = [c for c in ("macs", "params") if c in run.frame and c not in run.columns]
    bounded = any(o.bound is not None for o in objectives)
    labels = [run.label(name) for name in (*(o.name for o in objectives), *extra)]
    head = ["#", "arch_id", *labels, *(["within bounds"] if bounded else []), "choices"]
    rows = []
    for rank, i in enumerate(order, start=1):
        row = front.iloc[i]
        values = run.values[run.on_front][i]
        cells = [f'<td class="num">{rank}</td>', f"<td><code>{_esc(row['arch_id'])}</code></td>"]
        cells += [f'<td class="num">{_fmt(v)}</td>' for v in values]
        cells += [f'<td class="num">{_fmt(float(pd.to_numeric(row[c], errors="coerce")))}</td>' for c in extra]
        if bounded:
            inside = all(o.feasible(float(v)) for o, v in zip(objectives, values, strict=True))
            cells.append(f"<td>{'yes' if inside else 'no'}</td>")
        cells.append(f'<td class="choices">{_esc(_choices_text(row.get("arch")))}</td>')
        rows.append(f'<tr data-arch-id="{_esc(row["arch_id"])}">{"".join(cells)}</tr>')
    what = "over all objectives" if len(objectives) > 1 else f"(one objective: the best {objectives[0].name})"
    intro = (
        f"<p>{len(front)} of {int(run.usable.sum())} plotted evaluations are Pareto-optimal {_esc(what)}: highlighted "
        "in red and joined in order of the x axis; the others are faded. Dashed lines are bounds (constraints). "
        "Hover over a point for its architecture and figures.</p>"
    )
    table = (
        f'<table id="front"><thead><tr>{"".join(f"<th>{_esc(h)}</th>" for h in head)}</tr></thead>'
        f"<tbody>\n{chr(10).join(rows)}\n</tbody></table>"
    )
    figures = [_figure_html(p, d) for p, d in zip(plots, divs, strict=True)]
    return "\n".join(["<h2>Pareto front</h2>", intro, *figures, f"<h3>The front ({len(front)})</h3>", table])


def _progress_html(
    run: _Run,
    objectives: Sequence[Objective],
    plots: Sequence[_Plot],
    divs: Sequence[str],
    reference: np.ndarray,
    derived: bool,
) -> str:
    parts = ["<h2>Search progress</h2>", *(_figure_html(p, d) for p, d in zip(plots, divs, strict=True))]
    if len(objectives) > 1:
        how = (
            f"derived: {REFERENCE_MARGIN:.0%} of the observed range beyond the worst observed value of each objective"
            if derived
            else "given"
        )
        point = ", ".join(f"{o.name} = {_fmt(v)}" for o, v in zip(objectives, reference.tolist(), strict=True))
        final = hypervolume(run.values[run.usable], reference, [o.resolved for o in objectives])
        parts.append(
            f'<p id="reference" data-derived="{str(derived).lower()}">Hypervolume reference point ({_esc(how)}): '
            f"{_esc(point)}. Final hypervolume: "
            f'<span id="hypervolume" data-value="{final!r}">{_fmt(final)}</span>.</p>'
        )
    return "\n".join(parts)


def _page(title: str, body: Sequence[str], plots: int) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_esc(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f'<main id="nas-report" data-plots="{plots}">\n' + "\n".join(body) + "\n</main>\n</body>\n</html>\n"
    )
