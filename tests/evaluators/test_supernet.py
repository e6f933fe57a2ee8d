"""Supernets of the CNN spaces, their training variants and the ``supernet`` evaluator, on the embedded digits data."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

import nas
from evaluators.supernet import (
    ArchSampler,
    BalancedAssignment,
    SupernetEvaluator,
    create_supernet,
)
from nas import InvalidOptionError, NASError

DIGITS = {"input_shape": (1, 8, 8), "num_classes": 10}
SUBNETS = [
    ("resnet20-pooling", {}, {}),
    ("resnet20-pooling", {}, {"share_widths": False}),
    ("macro-cnn", {}, {}),
    ("macro-cnn", {}, {"kernel_transform": True}),
    ("macro-cnn", {"block": "conv"}, {"kernel_transform": True}),
]


@pytest.fixture(autouse=True)
def _seeded():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        yield


def _supernet(name, options, **supernet_options):
    return create_supernet(nas.create_space(name, **DIGITS, **options), **supernet_options)


@pytest.mark.parametrize(("name", "options", "supernet_options"), SUBNETS)
def test_a_subnet_computes_what_its_extracted_static_network_computes(name, options, supernet_options):
    supernet = _supernet(name, options, **supernet_options).eval()
    x = torch.randn(4, 1, 8, 8)
    for arch in supernet.space.sample_many(4, 0):
        static = supernet.extract(arch).eval()
        assert type(static) is type(supernet.space.build(arch))  # the space's own network, nothing of the supernet
        torch.testing.assert_close(supernet(x, arch), static(x))


def test_extraction_leaves_the_supernet_untouched_and_two_subnets_are_independent():
    supernet = _supernet("resnet20-pooling", {})
    before = {k: v.clone() for k, v in supernet.state_dict().items()}
    archs = supernet.space.sample_many(2, 1)
    one, two = (supernet.extract(a) for a in archs)
    optimizer = torch.optim.SGD(one.parameters(), lr=1.0)
    one(torch.randn(8, 1, 8, 8)).sum().backward()  # trains (and updates the BatchNorm statistics of) one subnet
    optimizer.step()
    assert all(torch.equal(before[k], v) for k, v in supernet.state_dict().items())
    fresh = supernet.extract(archs[1]).state_dict()
    assert all(torch.equal(two.state_dict()[k], v) for k, v in fresh.items())


def test_training_a_subnet_reaches_the_shared_weights_it_uses():
    supernet = _supernet("macro-cnn", {}).train()
    arch = supernet.space.sample(0)
    supernet(torch.randn(8, 1, 8, 8), arch).logsumexp(1).mean().backward()
    assert supernet.stem.weight.grad is not None and supernet.stem_bn.running_mean.abs().sum() > 0
    depth = arch.choices["stage1_depth"]
    unused = supernet.stages[0][depth:]  # trailing blocks beyond the stage's depth are skipped
    assert all(p.grad is None for bank in unused for p in bank.parameters())


def test_the_largest_and_smallest_subnets_bound_the_space():
    supernet = _supernet("resnet20-pooling", {})
    largest, smallest = supernet.extremes()
    params = [supernet.space.cost(a).params for a in supernet.space.enumerate()]
    assert supernet.space.cost(largest).params == max(params) and supernet.space.cost(smallest).params == min(params)
    macro = _supernet("macro-cnn", {})
    big, small = macro.extremes()
    assert macro.space.cost(big).macs > max(macro.space.cost(a).macs for a in macro.space.sample_many(50, 0))
    assert macro.space.cost(small).macs < min(macro.space.cost(a).macs for a in macro.space.sample_many(50, 0))


def test_a_space_without_a_supernet_and_an_option_a_supernet_lacks_are_named():
    with pytest.raises(InvalidOptionError, match="no supernet for space 'nb201'.*macro-cnn, resnet20-pooling"):
        create_supernet(nas.create_space("nb201"))
    with pytest.raises(InvalidOptionError, match="supernet of resnet20-pooling takes no kernel_transform"):
        _supernet("resnet20-pooling", {}, kernel_transform=True)


def test_without_shared_widths_only_configurations_with_the_same_block_widths_share_weights():
    supernet = _supernet("resnet20-pooling", {}, share_widths=False)
    early, late = (supernet.space.arch({"downsample_at": at, "downsample_op_1": "max", "downsample_op_2": "max"})
                   for at in ((0, 1), (7, 8)))  # fmt: skip
    shared = {k: v.data_ptr() for k, v in supernet.tensors(early).items()}
    other = {k: v.data_ptr() for k, v in supernet.tensors(late).items()}
    assert shared["blocks.5.body.0.0.weight"] != other["blocks.5.body.0.0.weight"]  # 64 -> 64 against 16 -> 16
    assert shared["stem.0.weight"] == other["stem.0.weight"]


def test_complexity_aware_sampling_spreads_subnets_over_their_sizes():
    supernet = _supernet("macro-cnn", {})
    sizes = {}
    for sampling in ("uniform", "complexity"):
        draw = ArchSampler(supernet, sampling, np.random.default_rng(0))
        sizes[sampling] = [supernet.space.cost(draw()).macs for _ in range(200)]
    low, high = (supernet.space.cost(a).macs for a in reversed(supernet.extremes()))
    share_large = {k: np.mean(np.asarray(v) > low + 3 * (high - low) / 8) for k, v in sizes.items()}
    assert share_large["complexity"] > 3 * share_large["uniform"]  # uniform draws rarely give large networks


def test_a_mixture_assignment_is_balanced_and_follows_the_losses():
    configurations = [f"c{i}" for i in range(6)]
    assignment = BalancedAssignment(configurations, 2, temperature=0.05)
    for i, c in enumerate(configurations):  # the first half trains better on supernet 0, the second on 1
        assignment.observe(c, 0, 0.5 if i < 3 else 1.0)
        assignment.observe(c, 1, 1.0 if i < 3 else 0.5)
    assert [assignment.supernet_of(c) for c in configurations] == [0, 0, 0, 1, 1, 1]
    assignment.observe("c0", 0, 5.0)  # even when every configuration would rather use one supernet ...
    for c in configurations:
        assignment.observe(c, 1, 0.1)
    np.testing.assert_allclose(assignment.probabilities().sum(axis=0), [3, 3], rtol=0.02)  # ... each keeps half
    restored = BalancedAssignment.from_state(assignment.state())
    np.testing.assert_allclose(restored.probabilities(), assignment.probabilities())


@pytest.fixture(scope="module")
def supernet(make_context):
    def create(space, *, checkpoint=None, data="digits", **options) -> SupernetEvaluator:
        """A supernet evaluator on digits, for a space created for them; ``checkpoint`` in its context."""
        context = make_context("supernet", space, data)
        evaluator = nas.create_evaluator("supernet", replace(context, checkpoint=checkpoint), **options)
        assert isinstance(evaluator, SupernetEvaluator)
        return evaluator

    return create


@pytest.fixture(scope="module")
def trained(tmp_path_factory, supernet):
    """A sandwich-trained resnet20-pooling supernet on digits, and its checkpoint."""
    evaluator = supernet("resnet20-pooling", variant="sandwich", epochs=6, sandwich_random=1, eval_examples=None)
    path = evaluator.prepare(tmp_path_factory.mktemp("supernet"))
    return evaluator, path


def test_a_trained_supernet_ranks_subnets_well_above_chance(trained):
    evaluator, _ = trained
    results = evaluator.evaluate(evaluator.space.sample_many(4, 0))
    assert all(r.ok for r in results)
    assert min(r.metrics["accuracy"] for r in results) > 0.3  # 10 classes: chance is 0.1
    assert results[0].costs["params"] == evaluator.space.cost(results[0].arch).params
    details = results[0].provenance.details
    assert details["variant"] == "sandwich" and details["recalibration_examples"] == 256


def test_recalibrated_extraction_is_deterministic_and_a_checkpoint_reloads_the_same_supernet(trained, supernet):
    evaluator, path = trained
    archs = evaluator.space.sample_many(3, 5)
    first = [r.metrics for r in evaluator.evaluate(archs)]
    assert [r.metrics for r in evaluator.evaluate(archs)] == first
    reloaded = supernet("resnet20-pooling", checkpoint=path, eval_examples=None)
    assert reloaded.plan == evaluator.plan
    assert [r.metrics for r in reloaded.evaluate(archs)] == first


def test_a_checkpoint_of_an_older_format_is_refused_and_trained_again(trained, tmp_path, supernet):
    _, path = trained
    state = torch.load(path, weights_only=True)
    del state["settings"]["format"]  # written before a mixture assigned placements
    torch.save(state, tmp_path / "supernet.pt")
    with pytest.raises(InvalidOptionError, match="with other settings; prepare the evaluator again"):
        supernet("resnet20-pooling", checkpoint=tmp_path / "supernet.pt")
    same = supernet("resnet20-pooling", variant="sandwich", epochs=6, sandwich_random=1)
    same.prepare(tmp_path)  # the same settings but for the format: trained again, not loaded
    assert torch.load(tmp_path / "supernet.pt", weights_only=True)["settings"]["format"] == 2


def test_prepare_reuses_a_checkpoint_trained_with_the_same_settings(trained, supernet):
    _, path = trained
    stamp = path.stat().st_mtime_ns
    again = supernet("resnet20-pooling", variant="sandwich", epochs=6, sandwich_random=1)
    assert again.prepare(path.parent) == path and path.stat().st_mtime_ns == stamp
    other = supernet("resnet20-pooling", variant="spos", epochs=0.5)
    other.prepare(path.parent / "other")
    assert other.plan.variant == "spos"


def test_the_same_seed_trains_the_same_supernet(tmp_path, supernet):
    def weights(folder):
        evaluator = supernet("macro-cnn", variant="spos", epochs=0.5, sampling="complexity")
        evaluator.prepare(tmp_path / folder)
        return evaluator.nets[0].state_dict()

    one, two = weights("a"), weights("b")
    assert all(torch.equal(one[k], two[k]) for k in one)


def test_a_mixture_trains_several_supernets_and_assigns_each_configuration(tmp_path, supernet):
    evaluator = supernet("resnet20-pooling", variant="mixture", supernets=3, epochs=0.5)
    evaluator.prepare(tmp_path)
    assert len(evaluator.nets) == 3
    archs = evaluator.space.sample_many(6, 0)
    results = evaluator.evaluate(archs)
    assert {r.provenance.details["supernet"] for r in results} <= {0, 1, 2}
    # the 36 placements of the two downsampling layers are the configurations, shared equally
    np.testing.assert_allclose(evaluator.assignment.probabilities().sum(axis=0), [12, 12, 12], rtol=0.02)
    same_placement = evaluator.space.arch({**archs[0].choices, "downsample_op_1": "avg", "downsample_op_2": "conv"})
    assert evaluator.supernet_of(same_placement) == evaluator.supernet_of(archs[0])


def test_a_mixture_needs_pooling_configurations(supernet):
    evaluator = supernet("macro-cnn", variant="mixture")
    with pytest.raises(InvalidOptionError, match="assigns pooling configurations; space 'macro-cnn' has none"):
        evaluator.train()


def test_evaluating_before_training_and_bad_options_are_named(tmp_path, trained, supernet):
    untrained = supernet("resnet20-pooling")
    with pytest.raises(NASError, match="not trained: call prepare"):
        untrained.evaluate(untrained.space.sample_many(1, 0))
    with pytest.raises(InvalidOptionError, match="variant: got 'once'; Input should be 'spos', 'sandwich' or 'mix"):
        supernet("resnet20-pooling", variant="once")
    with pytest.raises(InvalidOptionError, match="takes no budget"):
        trained[0].evaluate(untrained.space.sample_many(1, 0), budget={"epochs": 1})
    with pytest.raises(InvalidOptionError, match="trained for resnet20-pooling on digits with other settings"):
        supernet("resnet20-pooling", data=nas.DataSpec("digits", options={"train_size": 500}), checkpoint=trained[1])
    with pytest.raises(InvalidOptionError, match="there is no supernet for space 'nb201'"):
        supernet("nb201").prepare(tmp_path)


def test_an_architecture_outside_the_space_is_a_failed_result(trained):
    evaluator, _ = trained
    wrong = nas.create_space("resnet20-pooling", **DIGITS, num_downsample=3).sample(0)
    (result,) = evaluator.evaluate([wrong])
    assert not result.ok and "downsample_at" in result.reason
