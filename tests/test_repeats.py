"""Never train twice: canonical trial keys (NB201 isomorphism against the published count), the controller's
known-result cache, and the bench's search loop over the NB201 table training each canonical trial once."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from nas.bench import load_table, search_table
from nas.builders.nb201 import arch_to_params
from nas.config.experiment import EarlyStoppingConfig, SurrogateConfig, load_experiment, parse_experiment
from nas.search.controller import Controller
from nas.search.controller.repeats import nb201_cell, trial_key
from nas.space import load_space

ROOT = Path(__file__).resolve().parent.parent
EXP = ROOT / "experiments" / "nb201_bench.yaml"
CSV = ROOT / "benchmarks" / "data" / "nb201" / "nb201_cifar10.csv"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def test_nb201_isomorphism_matches_the_published_count():
    # NAS-Bench-201 (Dong & Yang 2020, section 3): 15,625 cells, 6,466 unique topologies
    archs = pd.read_csv(CSV, usecols=["arch_str"])["arch_str"]
    assert len(archs) == 15625 and archs.map(nb201_cell).nunique() == 6466


def test_nb201_isomorphic_cells_by_hand():
    # node 1's op never reaches the output when both edges out of node 1 are `none`: the op on 0->1 is irrelevant
    a = "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|nor_conv_1x1~2|"
    b = "|avg_pool_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|nor_conv_1x1~2|"
    assert nb201_cell(a) == nb201_cell(b) == "#+#+(#+0)@nor_conv_1x1"  # NATS-Bench keeps the zero terms
    # a skip edge passes its input and a node's sum is order-free: conv3(0) + conv1(skip(0)) == conv1(0) + conv3(skip(0))
    c = "|skip_connect~0|+|none~0|none~1|+|nor_conv_3x3~0|nor_conv_1x1~1|none~2|"
    d = "|skip_connect~0|+|none~0|none~1|+|nor_conv_1x1~0|nor_conv_3x3~1|none~2|"
    assert nb201_cell(c) == nb201_cell(d) == "#+(0)@nor_conv_1x1+(0)@nor_conv_3x3" != nb201_cell(a)
    space = load_space(ROOT / "search_spaces" / "nb201.yaml")
    train = {"lr": 0.1, "epochs": 200}
    key_a = trial_key(space.builder, {**arch_to_params(a), "C": 16, "N": 5}, train)
    assert key_a == trial_key(space.builder, {**arch_to_params(b), "C": 16, "N": 5}, train)
    assert key_a != trial_key(space.builder, {**arch_to_params(b), "C": 16, "N": 5}, {**train, "lr": 0.05})


def _tiny_controller(reuse: bool = True) -> Controller:
    exp = parse_experiment({"space": str(FIXTURES / "tiny_cnn.yaml"), "search": {"sampler": "random", "seed": 0}},
                           source="exp.yaml")
    return Controller(exp, load_space(exp.space), input_shape=(1, 8, 8), num_classes=10,
                      train_samples_per_trial=1000, reuse=reuse)


def test_the_controller_answers_a_known_trial_and_tells_the_sampler():
    c = _tiny_controller()
    first = c.propose()
    c.tell(first.number, {"val_accuracy": 0.7, "mflops": first.profile.mflops})
    c.study.enqueue_trial(dict(c.study.trials[first.number].params))  # the sampler proposes it again
    second = c.propose()
    assert second.params != first.params or second.number != first.number + 1  # the repeat was not returned
    assert c.stats.repeats == 1
    repeat = c.study.trials[first.number + 1]
    assert repeat.user_attrs["nas_status"] == "repeat" and repeat.values == c.study.trials[first.number].values
    # a twin of a trial still training is not trained either (its result is not known yet)
    c.study.enqueue_trial(dict(c.study.trials[second.number].params))
    third = c.propose()
    assert c.stats.repeats == 2 and third.number == second.number + 2
    assert c.study.trials[second.number + 1].user_attrs["nas_reason"].startswith("not trained: the same trial")
    # without reuse (a plain Optuna loop) the same proposal trains again
    plain = _tiny_controller(reuse=False)
    a = plain.propose()
    plain.tell(a.number, {"val_accuracy": 0.7, "mflops": a.profile.mflops})
    plain.study.enqueue_trial(dict(plain.study.trials[a.number].params))
    assert plain.propose().params == a.params and plain.stats.repeats == 0


def test_the_bench_trains_each_canonical_trial_once():
    exp = load_experiment(EXP)
    exp = replace(exp, early_stopping=EarlyStoppingConfig(), surrogate=SurrogateConfig())  # plain random search
    table = load_table(exp)
    run = search_table(exp, table, seed=3, max_evaluations=400)
    assert len(run.archs) == 400 and run.repeats > 0
    assert len({nb201_cell(a) for a in run.archs}) == 400  # no isomorphic twin trained twice
    plain = search_table(exp, table, seed=3, max_evaluations=400, reuse=False)
    assert plain.repeats == 0 and len({nb201_cell(a) for a in plain.archs}) < 400


@pytest.mark.parametrize("bad", [[7]])
def test_bench_rungs_must_be_table_fidelities(bad):
    # the schema refuses it when the experiment is built (replace re-validates), before any table lookup
    from pydantic import ValidationError

    exp = load_experiment(EXP)
    with pytest.raises(ValidationError, match="rungs must be epochs the table has an accuracy for"):
        replace(exp, early_stopping=replace(exp.early_stopping, rungs=tuple(bad)))
