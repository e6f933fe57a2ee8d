"""The train evaluator: real training on digits and a Fashion-MNIST subset; seeded, budgeted, failures per arch."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import nas
from evaluators.data import load_dataset
from evaluators.training import BUDGET_KEYS, TrainEvaluator

DIGITS_TASK = {"input_shape": (1, 8, 8), "num_classes": 10}
DIGITS_TRAIN, DIGITS_VAL = 1079, 359  # the default split of the 1,797 digits: 60 % / 20 % / 20 %


class RecordingSpace(nas.SPACES.get("resnet20-pooling")):  # type: ignore[misc]
    """resnet20-pooling that records every forward pass of the networks it builds (batch size, training mode,
    gradients on, torch threads), and whose networks for the architectures in ``poisoned`` output NaN."""

    def __init__(self, poisoned: tuple[nas.Architecture, ...] = ()) -> None:
        super().__init__(self.Options(**DIGITS_TASK))
        self.poisoned = set(poisoned)
        self.calls: list[tuple[int, bool, bool, int]] = []

    def build(self, arch: nas.Architecture) -> nn.Module:
        model = super().build(arch)
        model.register_forward_pre_hook(self._record)
        if arch in self.poisoned:
            with torch.no_grad():
                model.classifier.weight.fill_(math.inf)
        return model

    def _record(self, module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        self.calls.append((len(inputs[0]), module.training, torch.is_grad_enabled(), torch.get_num_threads()))


@pytest.fixture(scope="module")
def space():
    return nas.create_space("resnet20-pooling", **DIGITS_TASK)


@pytest.fixture(scope="module")
def archs(space):
    return space.sample_many(3, 0)


@pytest.fixture(scope="module")
def train(make_context):
    def create(space, *, data="digits", seed=0, threads=1, run_dir=None, **options) -> TrainEvaluator:
        """A digits evaluator on one thread (the tests share the machine), 1 epoch unless told."""
        context = make_context("train", space, data, seed=seed, threads=threads, run_dir=run_dir)
        evaluator = nas.create_evaluator("train", context, **{"epochs": 1, **options})
        assert isinstance(evaluator, TrainEvaluator)
        return evaluator

    return create


def test_learns_digits_well_above_chance(space, archs, train):
    evaluator = train(space, epochs=2)
    results = evaluator.evaluate(archs[:2])
    for arch, result in zip(archs[:2], results, strict=True):
        assert result.ok and result.arch == arch, result.reason
        assert result.metrics["accuracy"] > 0.85  # chance is 0.1
        assert 0 < result.metrics["loss"] < 0.5 * math.log(10)  # well below the loss of a uniform guess
        assert dict(result.costs) == space.cost(arch).to_dict()
        prov = result.provenance
        assert (prov.evaluator, dict(prov.fidelity), prov.seed) == ("train", {"epochs": 2, "fraction": 1.0}, 0)
        assert 0 < prov.wall_time_s < 60
        assert prov.details["dataset"] == "digits" and prov.details["threads"] == 1
        assert (prov.details["train_examples"], prov.details["val_examples"]) == (DIGITS_TRAIN, DIGITS_VAL)
        assert 0 < prov.details["final_train_loss"] < math.log(10)
        assert nas.EvalResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result  # storable as JSON


def test_same_seed_same_results_other_seed_other_results(space, archs, train):
    first, again, other = (train(space, seed=s, fraction=0.5).evaluate(archs[:1])[0] for s in (7, 7, 8))
    assert first.metrics == again.metrics
    assert first.provenance.details["final_train_loss"] == again.provenance.details["final_train_loss"]
    assert other.provenance.seed == 8
    assert other.metrics["loss"] != first.metrics["loss"]
    assert other.provenance.details["final_train_loss"] != first.provenance.details["final_train_loss"]


def test_results_do_not_depend_on_batch_order_or_history(space, archs, train):
    evaluator = train(space, fraction=0.25)
    forward = evaluator.evaluate(archs)
    evaluator.evaluate(archs[1:2], {"fraction": 0.5})  # something else runs in between
    backward = evaluator.evaluate(archs[::-1])[::-1]
    alone = [evaluator.evaluate([arch])[0] for arch in archs]
    for a, b, c in zip(forward, backward, alone, strict=True):
        assert a.metrics == b.metrics == c.metrics
    assert len({r.metrics["loss"] for r in forward}) == len(archs)  # the architectures' results do differ


def test_global_rng_state_and_thread_count_are_left_alone(train):
    space = RecordingSpace()
    evaluator = train(space, fraction=0.05, threads=2)
    torch.manual_seed(1234)
    random.seed(5)
    np.random.seed(5)
    states = torch.get_rng_state(), random.getstate(), np.random.get_state()[1].copy()
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        (result,) = evaluator.evaluate([space.sample(0)])
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(previous)
    assert result.ok and result.provenance.details["threads"] == 2
    assert {threads for *_, threads in space.calls} == {2}  # training ran on the evaluator's threads
    assert torch.equal(torch.get_rng_state(), states[0])
    assert random.getstate() == states[1] and np.array_equal(np.random.get_state()[1], states[2])


def test_threads_come_from_the_context(space, train):
    assert nas.create_context("train", space).threads == 1  # what a search gives each worker by default
    assert train(space, threads=2).threads == 2
    with pytest.raises(nas.InvalidOptionError, match="an evaluator's threads are a positive integer; got 0"):
        nas.create_context("train", space, threads=0)


def test_budget_sets_epochs_and_training_examples(train):
    space = RecordingSpace()
    evaluator = train(space, epochs=3, fraction=1.0, batch_size=64)
    (result,) = evaluator.evaluate([space.sample(0)], {"epochs": 2, "fraction": 0.25})
    used = round(0.25 * DIGITS_TRAIN)  # 270: 4 steps of 64, 64, 64 and 78 examples per epoch
    assert dict(result.provenance.fidelity) == {"epochs": 2, "fraction": 0.25}
    assert result.provenance.details["train_examples"] == used
    steps = [size for size, training, grad, _ in space.calls if training and grad]
    assert steps == [64, 64, 64, used - 3 * 64] * 2
    assert sum(size for size, training, grad, _ in space.calls if training and not grad) == used  # BatchNorm statistics
    space.calls.clear()
    (partial,) = evaluator.evaluate([space.sample(0)], {"fraction": 0.5})  # epochs from the default
    assert dict(partial.provenance.fidelity) == {"epochs": 3, "fraction": 0.5}
    assert sum(size for size, training, grad, _ in space.calls if training and grad) == 3 * round(0.5 * DIGITS_TRAIN)
    scored = [size for size, training, grad, _ in space.calls if not training]
    assert sum(scored) == DIGITS_VAL  # scored on the validation split, nothing else


def test_a_diverging_run_and_an_invalid_arch_fail_alone(archs, train):
    space = RecordingSpace(poisoned=(archs[1],))
    invalid = nas.Architecture(space.name, space.version, {**archs[2].choices, "downsample_op_1": "median"})
    results = train(space).evaluate([archs[0], archs[1], invalid, archs[2]])
    assert [r.ok for r in results] == [True, False, False, True]
    assert results[1].reason.startswith("training diverged: the loss became nan at epoch 1 of 1, step 1 of 16")
    assert "downsample_op_1='median' is not an option" in results[2].reason
    assert not results[1].metrics and results[1].provenance.fidelity == {"epochs": 1, "fraction": 1.0}
    assert all(r.metrics["accuracy"] > 0.5 for r in (results[0], results[3]))


def test_a_huge_learning_rate_is_a_failed_result_not_an_exception(space, archs, train):
    results = train(space, lr=1e6).evaluate(archs)
    assert [r.status for r in results] == [nas.Status.FAILED] * len(archs)
    for result in results:
        assert result.reason.startswith("training diverged: the loss became ")
        assert "at epoch 1 of 1, step " in result.reason and "(lr=1000000.0)" in result.reason
        assert math.isnan(result.value("accuracy"))


def test_kept_weights_reproduce_the_reported_accuracy(space, archs, tmp_path, train):
    evaluator = train(space, run_dir=tmp_path)  # a run keeps the weights in its folder
    (result,) = evaluator.evaluate(archs[:1])
    path = tmp_path / "weights" / f"{archs[0].arch_id}.pt"
    assert result.provenance.details["weights"] == str(path)
    assert nas.Architecture.from_dict(json.loads(path.with_suffix(".json").read_text())) == archs[0]
    model = space.build(archs[0])
    model.load_state_dict(torch.load(path, weights_only=True))
    val = load_dataset("digits", seed=0).val  # the evaluator's default split
    with torch.no_grad():
        logits = model.eval()(torch.from_numpy(val.x))
    labels = torch.from_numpy(val.y)
    assert (logits.argmax(1) == labels).double().mean().item() == pytest.approx(result.metrics["accuracy"], abs=1e-12)
    assert nn.functional.cross_entropy(logits, labels).item() == pytest.approx(result.metrics["loss"], rel=1e-5)


def test_fashion_mnist_subset_with_a_space_created_for_it(data_dir, make_context):
    data = nas.DataSpec("fashion-mnist", str(data_dir), {"train_size": 500, "val_size": 300})
    context = make_context("train", "resnet20-pooling", data)  # the space is created for the data's task
    evaluator = nas.create_evaluator("train", context)
    assert isinstance(evaluator, TrainEvaluator)
    assert (evaluator.space.input_shape, evaluator.space.num_classes) == ((1, 28, 28), 10)
    (result,) = evaluator.evaluate([evaluator.space.sample(0)], {"epochs": 2})
    assert result.ok, result.reason
    assert result.metrics["accuracy"] > 0.5  # chance is 0.1
    details = result.provenance.details
    assert (details["dataset"], details["train_examples"], details["val_examples"]) == ("fashion-mnist", 500, 300)


def test_created_by_name_and_unknown_options_are_named(space, make_context):
    assert "train" in nas.EVALUATORS.names()
    context = make_context("train", space)
    assert isinstance(nas.create_evaluator("train", context), TrainEvaluator)
    with pytest.raises(nas.InvalidOptionError, match="evaluator 'train': learning_rate: unknown key; accepted: .*lr"):
        nas.create_evaluator("train", context, learning_rate=0.1)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"epochs": 0}, "epochs: got 0; Input should be greater than 0"),
        ({"epochs": 1.5}, "epochs: got 1.5; Input should be a valid integer"),
        ({"fraction": 0}, "fraction: got 0; Input should be greater than 0"),
        ({"fraction": 1.5}, "fraction: got 1.5; Input should be less than or equal to 1"),
        ({"batch_size": 0}, "batch_size: got 0; Input should be greater than 0"),
        ({"lr": -0.1}, "lr: got -0.1; Input should be greater than 0"),
        ({"lr": math.nan}, "lr: got nan; Input should be a finite number"),
        ({"momentum": 1.0}, "momentum: got 1.0; Input should be less than 1"),
        ({"label_smoothing": 1}, "label_smoothing: got 1; Input should be less than 1"),
        ({"recalibrate_bn": "yes"}, "recalibrate_bn: got 'yes'; Input should be a valid boolean"),
        ({"init_weights": "absent.pt"}, "init_weights: got 'absent.pt'; Path does not point to a file"),
    ],
)
def test_bad_options_say_what_is_accepted(space, options, message, train):
    with pytest.raises(nas.InvalidOptionError) as info:
        train(space, **options)
    assert str(info.value).startswith(f"evaluator 'train': {message}")


def test_bad_data_options_say_what_is_accepted(space, train):
    with pytest.raises(nas.InvalidOptionError, match="train_size=5000 is out of range; this split has 1079 examples"):
        train(space, data=nas.DataSpec("digits", options={"train_size": 5000}))
    with pytest.raises(nas.InvalidOptionError, match="dataset options: split_seed: got -1; Input should be greater"):
        train(space, data=nas.DataSpec("digits", options={"split_seed": -1}))


def test_a_space_for_another_task_is_refused(make_context, train):
    cifar = nas.create_space("resnet20-pooling")
    with pytest.raises(nas.InvalidOptionError, match=r"input_shape=\(3, 32, 32\).*has input_shape=\(1, 8, 8\)"):
        train(cifar)
    with pytest.raises(nas.UnknownNameError, match="unknown search space 'resnet21'; registered: .*resnet20-pooling"):
        make_context("train", "resnet21")
    with pytest.raises(nas.InvalidOptionError, match="space_options apply to a space given by name"):
        make_context("train", cifar, space_options={"num_downsample": 3})


def test_a_space_given_by_name_takes_its_options_and_the_data_task(make_context):
    context = make_context("train", "resnet20-pooling", space_options={"num_downsample": 3, "base_width": 8})
    space = context.space
    assert (space.num_downsample, space.base_width, space.input_shape) == (3, 8, (1, 8, 8))
    given = make_context("train", "resnet20-pooling", space_options={"num_classes": 12})  # the data gives the rest
    assert (given.space.input_shape, given.space.num_classes) == ((1, 8, 8), 12)


def test_the_weights_folder_must_be_a_folder(space, tmp_path, train):
    (tmp_path / "weights").write_text("")
    with pytest.raises(nas.InvalidOptionError, match="keeps weights in .*weights, which is a file"):
        train(space, run_dir=tmp_path)


def test_weights_are_kept_in_the_run_and_a_failed_save_is_retryable(space, tmp_path, train):
    evaluator = train(space, fraction=0.1, run_dir=tmp_path)
    assert not (tmp_path / "weights").exists()  # creating an evaluator writes nothing
    (kept,) = evaluator.evaluate([space.sample(0)])
    assert kept.ok and Path(kept.provenance.details["weights"]) == tmp_path / "weights" / f"{kept.arch_id}.pt"
    blocked = tmp_path / "weights" / f"{space.sample(1).arch_id}.pt"
    (blocked / "in-the-way").mkdir(parents=True)  # the weights' file name is taken by a folder: saving fails
    (lost,) = evaluator.evaluate([space.sample(1)])
    assert lost.status is nas.Status.FAILED and lost.retryable and "saving the weights" in lost.reason


@pytest.mark.parametrize(
    ("budget", "message"),
    [
        ({"epoch": 2}, "epoch: unknown key; accepted: epochs, fraction"),
        ({"steps": 9, "lr": 1}, "steps: unknown key; accepted: epochs, fraction; lr: unknown key"),
        ({"epochs": 0}, "epochs: got 0; Input should be greater than 0"),
        ({"epochs": "2"}, "epochs: got '2'; Input should be a valid integer"),
        ({"fraction": 2.0}, "fraction: got 2.0; Input should be less than or equal to 1"),
        ({"fraction": 0.0005}, "fraction=0.0005 leaves 1 of the 1079 training examples; at least 2 are needed"),
    ],
)
def test_bad_budgets_say_what_is_accepted(space, archs, budget, message, train):
    evaluator = train(space)
    with pytest.raises(nas.InvalidOptionError) as info:
        evaluator.evaluate(archs, budget)
    assert str(info.value).startswith("budget of evaluator 'train': ") and message in str(info.value)
    assert set(BUDGET_KEYS) == {"epochs", "fraction"}


def test_integral_float_epochs_are_accepted(space, archs, train):
    (result,) = train(space).evaluate(archs[:1], {"epochs": 1.0, "fraction": 0.1})
    assert result.ok and dict(result.provenance.fidelity) == {"epochs": 1, "fraction": 0.1}
