"""The ledger on a real search (real Ray, MLflow sqlite, Optuna): trials of known duration and known FLOPs.

Each trial sleeps a known time per training batch (nas.testing.faults, mode "sleep") on a model whose FLOPs are
counted by hand. Machinery time + trial time must equal wall time x workers within 5%, and training FLOPs must equal
3 x forward FLOPs x samples seen exactly.
"""

from __future__ import annotations

import math
import time

import pytest
import yaml
from mlflow import MlflowClient

from nas.config.experiment import load_experiment
from nas.cost.ledger import check_accounting
from nas.search.api import run_search
from nas.testing.faults import SLEEP_PER_BATCH_S

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EPOCHS, BATCH, WIDTH = 2, 64, 16
TRAIN = 1079  # digits training split (1797 samples, 20% val, 20% test)


def test_bill_adds_up(tmp_path, ray_cluster):
    space = {"builder": "nas.testing.faults:faulty", "input_shape": [1, 8, 8], "num_classes": 10,
             # min_input_size changes nothing in "sleep" mode: four distinct trials (nas never trains one twice)
             # of one model whose FLOPs are known
             "params": {"width": WIDTH, "mode": "sleep", "min_input_size": {"type": "int", "low": 1, "high": 10_000}}}
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(space))
    doc = {"name": "bill", "space": "space.yaml", "data": {"batch_size": BATCH}, "training": {"epochs": EPOCHS},
           "search": {"sampler": "random", "trials": 4, "concurrency": 2},
           "tracking": {"uri": f"sqlite:///{tmp_path / 'mlflow.db'}", "experiment": "bill"}}
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(doc))
    exp = load_experiment(tmp_path / "exp.yaml")
    stopwatch = time.perf_counter()
    result = run_search(exp, storage_path=str(tmp_path / "ray"))
    stopwatch = time.perf_counter() - stopwatch
    bill = result.bill
    assert bill is not None and all(r.status == "complete" for r in result.records)

    # FLOPs by hand: Linear 64->16 (64*16 MACs + 16 bias adds) + Linear 16->10 (16*10 + 10) = 1210 per sample
    forward = 64 * WIDTH + WIDTH + WIDTH * 10 + 10
    for rec in result.records:
        assert rec.metrics["mflops"] * 1e6 == pytest.approx(forward)
        assert rec.metrics["samples_seen"] == EPOCHS * TRAIN
        assert rec.metrics["train_flops"] == pytest.approx(3 * forward * EPOCHS * TRAIN)
        # the trial ran at least as long as its known sleeps
        assert rec.metrics["train_seconds"] >= EPOCHS * math.ceil(TRAIN / BATCH) * SLEEP_PER_BATCH_S
    assert bill.train_flops == pytest.approx(4 * 3 * forward * EPOCHS * TRAIN)

    # the bill's wall time is the search's, as a stopwatch around it sees it (within 5%)
    assert 0.95 * stopwatch <= bill.wall_s <= stopwatch
    # machinery + trial time = wall x workers, within 5%
    assert check_accounting(bill) <= 0.05
    capacity = bill.wall_s * bill.workers
    assert bill.machinery_s + bill.trial_s == pytest.approx(capacity, rel=0.05)
    assert bill.workers == 2 and bill.trial_s > 0 and bill.machinery_s > 0

    # on MLflow: the parent's totals and each child's bill, under the one reserved prefix
    client = MlflowClient(exp.tracking.uri)
    parent = client.get_run(result.run_id).data.metrics
    assert parent["nas_cost/train_tflops"] == pytest.approx(bill.train_flops / 1e12)
    assert parent["nas_cost/energy_kwh"] > 0 and parent["nas_cost/co2_g"] > 0
    children = client.search_runs([client.get_run(result.run_id).info.experiment_id],
                                  f"tags.`nas.search_run_id` = '{result.run_id}'")
    assert all(c.data.metrics.get("nas_cost/energy_kwh", 0) > 0 for c in children)
    names = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"search_card.json", "search_card.md"} <= names
