"""The training loop: real learning, determinism, early stop, failure modes, exact counts, hand-checked evaluate."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from nas.data import Splits, load_data
from nas.training.train import (
    LR_SCHEDULES,
    EpochResult,
    NonFiniteLossError,
    TrialTimeoutError,
    evaluate,
    register_optimizer,
    seed_everything,
    train,
)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models train fastest on one thread; several threads per test crawl when the CPU is shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def digits() -> Splits:
    return load_data("digits", seed=0)


def mlp(seed: int = 0, dropout: float = 0.1) -> nn.Module:
    seed_everything(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Dropout(dropout), nn.Linear(128, 10))


def _metrics(epochs: list[EpochResult]) -> list[tuple[float, ...]]:
    return [(e.train_loss, e.train_accuracy, e.val_loss, e.val_accuracy, e.samples_seen) for e in epochs]


def test_mlp_learns_digits(digits: Splits) -> None:
    model = mlp()
    result = train(model, digits, epochs=8, lr=1e-2, batch_size=32)
    assert result.best_val_accuracy >= 0.90
    assert result.final_val_accuracy == result.epochs[-1].val_accuracy >= 0.90
    assert result.epochs[-1].train_loss < result.epochs[0].train_loss
    accuracy, loss = evaluate(model, digits.test)
    assert accuracy >= 0.90 and 0 < loss < 1.0 and not model.training


def test_same_seed_same_metrics_other_seed_other_metrics(digits: Splits) -> None:
    a = train(mlp(), digits, epochs=3, seed=5)
    b = train(mlp(), digits, epochs=3, seed=5)
    c = train(mlp(), digits, epochs=3, seed=6)
    assert _metrics(a.epochs) == _metrics(b.epochs)
    assert _metrics(a.epochs) != _metrics(c.epochs)


def test_train_leaves_the_callers_rng_state_alone(digits: Splits) -> None:
    model = mlp()
    torch.manual_seed(11)
    expected = torch.rand(3)
    torch.manual_seed(11)
    train(model, digits, epochs=1)
    assert torch.equal(torch.rand(3), expected)


def test_samples_seen_is_exact_with_a_ragged_last_batch(digits: Splits) -> None:
    n = len(digits.train)
    assert n % 64 != 0
    result = train(mlp(), digits, epochs=3, batch_size=64)
    assert result.samples_seen == 3 * n
    assert [e.samples_seen for e in result.epochs] == [n, 2 * n, 3 * n]
    assert [e.epoch for e in result.epochs] == [1, 2, 3] and not result.stopped_early
    assert all(e.epoch_seconds > 0 for e in result.epochs) and result.train_seconds >= sum(
        e.epoch_seconds for e in result.epochs)


def test_on_epoch_can_stop_early(digits: Splits) -> None:
    seen: list[int] = []

    def stop_at_two(e: EpochResult) -> bool:
        seen.append(e.epoch)
        return e.epoch == 2

    result = train(mlp(), digits, epochs=10, on_epoch=stop_at_two)
    assert seen == [1, 2] and len(result.epochs) == 2 and result.stopped_early
    assert result.samples_seen == 2 * len(digits.train)


def test_cosine_schedule_per_epoch(digits: Splits) -> None:
    result = train(mlp(), digits, epochs=4, lr=0.01)
    expected = [0.01 * 0.5 * (1 + math.cos(math.pi * e / 4)) for e in range(4)]
    assert [e.lr for e in result.epochs] == pytest.approx(expected)
    flat = train(mlp(), digits, epochs=2, lr=0.01, lr_schedule="constant")
    assert [e.lr for e in flat.epochs] == [0.01, 0.01]
    assert set(LR_SCHEDULES) >= {"cosine", "constant"}


class NaNModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1)) * float("nan")


def test_nan_output_raises_with_epoch_and_batch(digits: Splits) -> None:
    with pytest.raises(NonFiniteLossError, match="epoch 1, batch 1 of 17") as err:
        train(NaNModel(), digits, epochs=2)
    assert err.value.partial.epochs == []


def test_huge_learning_rate_diverges(digits: Splits) -> None:
    with pytest.raises(NonFiniteLossError, match=r"epoch \d+, batch \d+"):
        train(mlp(), digits, epochs=3, optimizer="sgd", lr=1e6)


def test_tiny_max_seconds_times_out(digits: Splits) -> None:
    with pytest.raises(TrialTimeoutError, match=r"max_seconds=1e-09 s .* at epoch 1, batch 1"):
        train(mlp(), digits, epochs=2, max_seconds=1e-9)


def test_all_optimizers_and_amp_run(digits: Splits) -> None:
    for name, lr in (("adamw", 3e-3), ("sgd", 0.05), ("nesterov", 0.05)):
        assert train(mlp(), digits, epochs=2, optimizer=name, lr=lr).final_val_accuracy > 0.5
    amp = train(mlp(), digits, epochs=2, amp=True, lr=3e-3)  # bfloat16 autocast on CPU
    assert math.isfinite(amp.epochs[-1].train_loss) and amp.final_val_accuracy > 0.5


def test_bad_settings_raise_value_errors(digits: Splits) -> None:
    with pytest.raises(ValueError, match=r"unknown optimizer 'adma'\. Did you mean 'adam'\?"):
        train(mlp(), digits, epochs=1, optimizer="adma")
    with pytest.raises(ValueError, match="epochs"):
        train(mlp(), digits, epochs=0)
    with pytest.raises(ValueError, match="lr"):
        train(mlp(), digits, epochs=1, lr=0.0)
    with pytest.raises(ValueError, match="already registered"):
        register_optimizer("adam")(lambda params, **kw: None)


class Identity2(nn.Module):
    """Logits are the input itself, so the loss can be worked out by hand."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def test_evaluate_matches_hand_computation() -> None:
    x = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 3.0]])
    y = torch.tensor([0, 1, 1, 1])
    # predictions 0, 1, 0, 1 -> 3 of 4 right; cross-entropy = log(1 + exp(other - true)) for two classes
    expected_loss = (math.log1p(math.exp(-2)) + math.log1p(math.exp(-1)) + math.log1p(math.exp(1))
                     + math.log1p(math.exp(-3))) / 4
    model = Identity2().train()
    for batch_size in (1, 3, 256):
        accuracy, loss = evaluate(model, TensorDataset(x, y), batch_size=batch_size)
        assert accuracy == 0.75 and loss == pytest.approx(expected_loss, rel=1e-6)
    assert model.training  # the caller's mode is restored
    with pytest.raises(ValueError, match="empty"):
        evaluate(model, TensorDataset(x[:0], y[:0]))
