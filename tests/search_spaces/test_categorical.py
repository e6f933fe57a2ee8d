"""The categorical space: dimensions given as data, a version that follows them, an optional canonical function, and
no networks (what needs networks refuses it in one line)."""

from __future__ import annotations

import textwrap

import pytest

import nas

DIMENSIONS = {"edge0": ["none", "skip", "conv"], "edge1": ["none", "skip", "conv"], "width": [16, 32]}


def test_its_architectures_are_the_product_of_the_dimensions():
    space = nas.create_space("categorical", dimensions=DIMENSIONS)
    assert not isinstance(space, nas.NetworkSpace)
    assert space.size() == 18 == len(set(space.enumerate()))
    assert [d.name for d in space.dimensions()] == ["edge0", "edge1", "width"]
    arch = space.arch({"edge0": "conv", "edge1": "none", "width": 32})
    assert arch.space == "categorical" and space.canonical(arch) == arch  # its own canonical form by default
    with pytest.raises(nas.InvalidArchitectureError, match=r"width=64 is not an option; choose one of \[16, 32\]"):
        space.arch({"edge0": "conv", "edge1": "none", "width": 64})


def test_the_version_follows_the_dimensions():
    version = nas.create_space("categorical", dimensions=DIMENSIONS).version
    assert nas.create_space("categorical", dimensions=dict(DIMENSIONS)).version == version
    assert nas.create_space("categorical", dimensions={**DIMENSIONS, "width": [16, 64]}).version != version
    reordered = {k: DIMENSIONS[k] for k in reversed(DIMENSIONS)}  # samples differ with the order
    assert nas.create_space("categorical", dimensions=reordered).version != version


def test_a_canonical_function_from_a_plugin_maps_isomorphic_choices_to_one(tmp_path, monkeypatch):
    (tmp_path / "my_plugin.py").write_text(
        textwrap.dedent(
            """
            def canonical(choices):
                a, b = sorted([choices["edge0"], choices["edge1"]])  # the two edges are interchangeable
                return {**choices, "edge0": a, "edge1": b}
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    space = nas.create_space("categorical", dimensions=DIMENSIONS, canonical="my_plugin:canonical")
    one = space.arch({"edge0": "skip", "edge1": "conv", "width": 16})
    other = space.arch({"edge0": "conv", "edge1": "skip", "width": 16})
    assert space.canonical(one) == space.canonical(other) == other
    assert space.version != nas.create_space("categorical", dimensions=DIMENSIONS).version
    strategy = nas.Deduplicated(nas.RandomStrategy(space, [nas.Objective("score", "max")], seed=0), key="canonical")
    asked = strategy.ask(18)
    assert len(asked) == len({space.canonical(a) for a in asked}) == 12  # 6 unordered edge pairs x 2 widths


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"dimensions": {}}, "dimensions: .*at least 1 item"),
        ({"dimensions": {"a": []}}, "dimension 'a' has no options"),
        ({"dimensions": {"a": [1, 1]}}, r"dimension 'a' repeats an option: \[1, 1\]"),
        ({"dimensions": {"a": [{"x": 1}]}}, "dimensions.a.0"),
        ({"dimensions": ["a", "b"]}, "dimensions: got \\['a', 'b'\\]; Input should be a valid dictionary"),
        ({"dimensions": {"a": [1, 2]}, "canonical": "nowhere"}, "canonical: got 'nowhere'; expected module:function"),
        ({"dimensions": {"a": [1, 2]}, "canonical": "no_such_module:f"}, "cannot import no_such_module"),
        ({"dimensions": {"a": [1, 2]}, "canonical": "json:no_such"}, "module json has no function no_such"),
    ],
)
def test_bad_options_are_named(options, message):
    with pytest.raises(nas.InvalidOptionError, match=f"categorical.*{message}"):
        nas.create_space("categorical", **options)


def test_what_needs_networks_refuses_it_in_one_line(capsys):
    from nas.cli.app import main

    with pytest.raises(SystemExit) as exit_:
        main(["space", "measure", "categorical", "-O", "dimensions={a: [1, 2]}"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nas space needs a space of networks, and space 'categorical' builds none" in err
