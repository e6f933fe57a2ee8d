"""The HTML report of a run: offline page, the front table is the Pareto front, PNGs, and plots that render."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys

import pandas as pd
import pytest

import nas
from nas.analysis.report import write_report
from nas.search.store import ResultStore

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EXTERNAL = re.compile(r"""<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.I)
ACCURACY, LATENCY = nas.Objective.parse("max:accuracy"), nas.Objective.parse("min:latency:pixel3")


@pytest.fixture(scope="module")
def results(nb201_table, tmp_path_factory) -> pd.DataFrame:
    """40 random NB201 cells and one failed evaluation, read back from a real result store."""
    table = nb201_table("cifar10", devices=["pixel3"])
    store = ResultStore.create(
        f"sqlite:///{tmp_path_factory.mktemp('run') / 'store.db'}", "demo", table.space, [ACCURACY, LATENCY]
    )
    evaluated = table.evaluate(table.space.sample_many(40, 0))
    failed = nas.EvalResult.failed(table.space.sample(1), "training diverged", evaluated[0].provenance)
    store.add([*evaluated[:10], failed, *evaluated[10:]])
    return store.to_dataframe()


def _front_rows(page: str) -> list[str]:
    return re.findall(r'<tr data-arch-id="([^"]+)"', page)


def _expected_front(results: pd.DataFrame, objectives: list[nas.Objective], columns: list[str]) -> pd.DataFrame:
    ok = results[results["status"] == "ok"]
    return ok[nas.pareto_mask(ok[columns].to_numpy(), [o.direction for o in objectives])]


def _assert_png(path, min_width=500):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path.name} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk
    assert width >= min_width and height >= 300 and len(data) > 10_000, (path.name, width, height, len(data))


def test_two_objectives_page_is_offline_with_the_front_as_table_and_pngs(results, tmp_path):
    path = write_report(results, [ACCURACY, LATENCY], tmp_path, title="demo <run> & co")
    page = path.read_text(encoding="utf-8")
    assert path == tmp_path / "index.html"
    assert not EXTERNAL.findall(page), "the page must not load anything from the network"
    assert page.count("plotly.js v") == 1 and page.count("Plotly.newPlot") == 3  # one bundle, three plots
    assert "<h1>demo &lt;run&gt; &amp; co</h1>" in page
    assert 'data-evaluations="41" data-ok="40" data-pruned="0" data-failed="1"' in page
    (failure,) = re.findall(r'<table id="failures">.*?</table>', page, re.S)
    assert "<td>training diverged</td>" in failure and results["arch_id"].iloc[10] in failure
    assert "<code>latency:pixel3</code>: minimized" in page

    front = _expected_front(results, [ACCURACY, LATENCY], ["accuracy", "latency_ms:pixel3"])
    expected = front.sort_values("accuracy", ascending=False, kind="stable")["arch_id"].tolist()
    assert _front_rows(page) == expected  # exactly the Pareto-optimal rows, best accuracy first
    hovers = [h for found in re.findall(r'"hovertext":(\[.*?\])', page) for h in json.loads(found)]
    assert len(hovers) == 40  # every ok evaluation is a point, the failed one is not
    for arch_id in expected:
        (text,) = [h for h in hovers if h.startswith(f"<b>{arch_id}</b>")]
        assert "edge_1_0=" in text and "accuracy = " in text and "latency_ms:pixel3 = " in text and "macs = " in text
    assert 'data-derived="true"' in page
    for name in ("pareto_latency_pixel3.png", "progress.png"):
        assert f'href="{name}"' in page
        _assert_png(tmp_path / name)
    _assert_png(tmp_path / "progress.png", min_width=1000)  # best so far and hypervolume side by side


def test_the_front_holds_the_highest_fidelity_only(nb201_table, tmp_path):
    """Architectures a multi-fidelity scheduler stopped early are counted, but kept out of the front and its plots."""
    table = nb201_table("cifar10", devices=["pixel3"])
    store = ResultStore.create(f"sqlite:///{tmp_path / 'store.db'}", "demo", table.space, [ACCURACY, LATENCY])
    evaluated = table.evaluate(table.space.sample_many(12, 3))
    low = nas.Provenance("nb201-table", {"epochs": 12})
    pruned = [dataclasses.replace(r, status=nas.Status.PRUNED, provenance=low) for r in evaluated[:6]]
    store.add([*pruned, *evaluated[6:]])
    page = write_report(nas.Run(store).to_dataframe(), [ACCURACY, LATENCY], tmp_path, title="mf").read_text()
    assert 'data-ok="6" data-pruned="6" data-failed="0"' in page and "fidelity: epochs=200" in page
    assert set(_front_rows(page)) <= {r.arch_id for r in evaluated[6:]}


def test_a_bound_is_drawn_and_the_front_marks_who_meets_it(results, tmp_path):
    macs = nas.Objective.parse(f"min:macs<={results['macs'].median()}")
    page = write_report(results, [ACCURACY, macs], tmp_path, title="bounded").read_text(encoding="utf-8")
    front = _expected_front(results, [ACCURACY, macs], ["accuracy", "macs"])
    assert _front_rows(page) == front.sort_values("accuracy", ascending=False, kind="stable")["arch_id"].tolist()
    assert "constraint ≤" in page and "<th>within bounds</th>" in page
    assert page.count("<td>yes</td>") == int((front["macs"] <= macs.bound).sum()) > 0
    assert '"dash":"dash"' in page.replace(" ", "")  # the bound's dashed line
    _assert_png(tmp_path / "pareto_macs.png")


def test_one_objective_plots_against_macs_and_params_and_only_the_best_so_far(results, tmp_path):
    page = write_report(results, [ACCURACY], tmp_path, title="one").read_text(encoding="utf-8")
    ok = results[results["status"] == "ok"]
    assert set(_front_rows(page)) == set(ok.loc[ok["accuracy"] == ok["accuracy"].max(), "arch_id"])
    assert 'id="plot-progress-best"' in page and "hypervolume" not in page
    for name in ("pareto_macs.png", "pareto_params.png", "progress.png"):
        _assert_png(tmp_path / name)


def test_a_given_reference_point_gives_the_hypervolume_of_all_ok_results(results, tmp_path):
    page = write_report(results, [ACCURACY, LATENCY], tmp_path, title="ref", reference=[50, 30]).read_text()
    assert 'data-derived="false"' in page and "(given)" in page
    (value,) = re.findall(r'id="hypervolume" data-value="([^"]+)"', page)
    ok = results[results["status"] == "ok"]
    expected = nas.hypervolume(ok[["accuracy", "latency_ms:pixel3"]].to_numpy(), [50, 30], ["max", "min"])
    assert math.isclose(float(value), expected)
    with pytest.raises(nas.InvalidOptionError, match="one per objective"):
        write_report(results, [ACCURACY, LATENCY], tmp_path, title="ref", reference=[50])


@pytest.mark.parametrize("case", ["failed only", "nothing"])
def test_a_run_without_ok_results_still_gets_a_page_saying_so(results, tmp_path, case):
    frame = results[results["status"] != "ok"] if case == "failed only" else pd.DataFrame([])
    page = write_report(frame, [ACCURACY, LATENCY], tmp_path, title="empty").read_text(encoding="utf-8")
    assert 'id="no-results"' in page and "No results to show" in page and 'data-plots="0"' in page
    assert not list(tmp_path.glob("*.png"))


def test_errors_name_the_fix(results, tmp_path, monkeypatch):
    with pytest.raises(nas.InvalidOptionError, match="no column for objective.*top5.*they have accuracy"):
        write_report(results, [nas.Objective.parse("top5")], tmp_path, title="x")
    monkeypatch.setitem(sys.modules, "plotly.graph_objects", None)  # import raises ImportError
    with pytest.raises(nas.MissingExtraError, match=re.escape("pip install 'nas-pareto[viz]'")):
        write_report(results, [ACCURACY], tmp_path, title="x")


def test_the_plots_render_in_headless_chromium(results, tmp_path):
    chromium = shutil.which("chromium")
    if chromium is None:
        message = "chromium is not installed (apt-get install chromium); it checks that the plots render"
        if os.environ.get("CI", "").lower() in {"true", "1"}:
            pytest.fail(message)
        pytest.skip(message)
    path = write_report(results, [ACCURACY, LATENCY], tmp_path / "report", title="render")
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=10000",
    ]
    done = subprocess.run([chromium, *flags, "--dump-dom", path.as_uri()], capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    rendered = re.findall(r'<div id="(plot-[^"]+)" class="[^"]*\bjs-plotly-plot\b', dom)
    assert rendered == ["plot-pareto-latency_pixel3", "plot-progress-best", "plot-progress-hypervolume"]
    assert dom.count('class="main-svg"') >= 2 * len(rendered) and "scatterlayer" in dom
    assert dom.count('class="point"') == int((results["status"] == "ok").sum())  # every ok evaluation drawn


def test_the_figures_units_label_the_objectives_the_axes_and_the_front(results, tmp_path):
    units = {"accuracy": nas.Unit.PERCENT, "latency_ms:pixel3": nas.Unit.MS}
    page = write_report(results, [ACCURACY, LATENCY], tmp_path, title="units", units=units).read_text()
    assert "<code>accuracy</code> [%]: maximized" in page and "<code>latency:pixel3</code> [ms]: minimized" in page
    assert "<th>accuracy [%]</th><th>latency:pixel3 [ms]</th><th>macs</th>" in page  # macs: no unit was declared
    assert "accuracy [%] (higher is better)" in page and "latency:pixel3 [ms] (lower is better)" in page
