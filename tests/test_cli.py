"""The `nas` command line: the contract's JSON, determinism, and clear errors with exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import nas
from nas.cli.app import main


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nas", *args], capture_output=True, text=True, timeout=120)


def call(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main(list(args))
    out, err = capsys.readouterr()
    return exit_.value.code, out, err


def test_spaces_json_lists_every_space_with_a_description(capsys):
    code, out, _ = call(capsys, "spaces", "--json")
    listed = json.loads(out)
    assert code == 0 and {"nb201", "macro-cnn", "resnet20-pooling"} <= set(listed)
    assert all(isinstance(d, str) and d for d in listed.values())


def test_sample_json_is_the_contract_and_is_seeded(capsys):
    args = ("space", "sample", "resnet20-pooling", "--n", "5", "--seed", "3", "--input-shape", "1,28,28", "--json")
    code, out, _ = call(capsys, *args)
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 5 and call(capsys, *args)[1] == out
    space = nas.create_space("resnet20-pooling", input_shape=(1, 28, 28))
    for line in lines:
        assert set(line) == {"arch_id", "arch", "macs", "params"}
        arch = nas.Architecture.from_dict(line["arch"])
        assert arch.arch_id == line["arch_id"] and space.cost(arch).to_dict() == {
            "macs": line["macs"],
            "params": line["params"],
        }


def test_show_json_reports_size_and_exact_ranges(capsys):
    code, out, _ = call(capsys, "space", "show", "nb201", "--json")
    summary = json.loads(out)
    assert code == 0 and summary["size"] == 15625 and summary["range_exact"]
    assert summary["macs"] == [7_783_040, 220_119_680] and summary["params"] == [73_306, 1_531_546]
    assert summary["dimensions"][0]["name"] == "edge_1_0"


def test_show_passes_space_options(capsys):
    code, out, _ = call(capsys, "space", "show", "resnet20-pooling", "-O", "num_downsample=1", "--json")
    assert code == 0 and json.loads(out)["size"] == 9 * 3


def test_table_output_for_people(capsys):
    code, out, _ = call(capsys, "space", "sample", "nb201", "--n", "2", "--seed", "0")
    assert code == 0 and "arch_id" in out and "edge_1_0=" in out


@pytest.mark.parametrize(
    "args, words",
    [
        (
            ("space", "sample", "no-such-space", "--n", "1", "--json"),
            "unknown search space 'no-such-space'; registered:",
        ),
        (("space", "show", "nb201", "--input-shape", "3,32"), "three positive integers C,H,W"),
        (("space", "show", "nb201", "--input-shape", "3,30,30"), "divisible by 4"),
        (("space", "show", "macro-cnn", "-O", "colour=red"), "colour: unknown key; accepted: input_shape"),
        (("space", "sample", "nb201", "--n", "0"), "--n"),
        (("space", "show", "nb201", "-O", "oops"), "KEY=VALUE"),
    ],
)
def test_bad_input_exits_2_with_one_sentence(args, words):
    result = run(*args)
    assert result.returncode == 2
    assert words in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
