"""Zero-cost proxies (nas.proxies): hand-worked scores on tiny models, the model left untouched, determinism,
the Spearman helper, the ProxyRanker rule, and a rank-correlation sanity check on real NAS-Bench-201 cells.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nas.builders import build
from nas.proxies import (
    PROXIES,
    ProxyRanker,
    compute_proxies,
    compute_proxy,
    get_proxy,
    proxy_names,
    register_proxy,
    spearman,
    unregister_proxy,
)
from nas.space import Space, load_space

ROOT = Path(__file__).resolve().parent.parent
NASLIB = ROOT / "benchmarks" / "data" / "nb201" / "naslib_zero_cost_cifar10.json"
BUILTIN = ("synflow", "naswot", "snip", "grad_norm", "params")
# NASLib's op indices (skip, none, conv3x3, conv1x1, avgpool) and its edge order (1<-0, 2<-0, 3<-0, 2<-1, 3<-1,
# 3<-2); benchmarks/proxy_check.py documents how this order was checked.
NASLIB_OPS = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
NASLIB_EDGES = ("edge_1_0", "edge_2_0", "edge_3_0", "edge_2_1", "edge_3_1", "edge_3_2")


@pytest.fixture(autouse=True)
def one_thread():
    # these models are tiny: intra-op threads gain nothing, and on a busy 2-core box they make it much slower
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@functools.cache
def cnn_space() -> Space:
    return load_space(ROOT / "search_spaces" / "cnn.yaml")


def linear(weight: list[list[float]], bias: list[float] | None = None) -> nn.Linear:
    """An ``nn.Linear`` with the given weight (out x in) and bias."""
    w = torch.tensor(weight)
    layer = nn.Linear(w.shape[1], w.shape[0], bias=bias is not None)
    with torch.no_grad():
        layer.weight.copy_(w)
        if bias is not None:
            layer.bias.copy_(torch.tensor(bias))
    return layer


def batch(n: int = 8, shape: tuple[int, ...] = (1, 8, 8), classes: int = 10, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn((n, *shape), generator=g), torch.randint(0, classes, (n,), generator=g)


def digits_cnn(sample_seed: int) -> nn.Module:
    """A CNN of the shipped digits space: seed 0 has ReLU, 3 Hardswish MBConv, 5 SiLU with squeeze-excitation."""
    space = cnn_space()
    return build(space, space.sample_random(sample_seed), seed=0)


class MixedNet(nn.Module):
    """Conv, BN, in-place ReLU, SiLU, dropout, Linear: every kind of layer the proxies treat specially."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1),
            nn.BatchNorm2d(4),
            nn.ReLU(inplace=True),
            nn.Conv2d(4, 4, 3),
            nn.SiLU(),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(4 * 6 * 6, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


# --- registry ---------------------------------------------------------------------------------------------


def test_builtin_proxies_are_registered():
    assert set(BUILTIN) <= set(proxy_names())
    assert proxy_names() == list(PROXIES)


def test_register_duplicate_raises_and_unregister_removes():
    @register_proxy("test_const")
    def const(model, x, y):
        return 1.5

    try:
        with pytest.raises(ValueError, match="already registered"):
            register_proxy("test_const")(const)
        with pytest.raises(ValueError, match="already registered"):
            register_proxy("synflow")(const)
        x, y = batch()
        assert compute_proxy("test_const", nn.Linear(64, 10), x.flatten(1), y) == 1.5
    finally:
        unregister_proxy("test_const")
    assert "test_const" not in proxy_names()


def test_unknown_proxy_names_the_known_ones():
    with pytest.raises(KeyError, match="synflow"):
        get_proxy("nope")
    with pytest.raises(KeyError, match="nope"):
        compute_proxy("nope", nn.Linear(2, 2), torch.ones(1, 2), torch.zeros(1, dtype=torch.long))


def test_compute_proxies_returns_every_proxy_as_float():
    x, y = batch()
    scores = compute_proxies(digits_cnn(0), x, y, BUILTIN)
    assert list(scores) == list(BUILTIN)
    assert all(isinstance(v, float) and math.isfinite(v) for v in scores.values())


# --- hand-worked scores ----------------------------------------------------------------------------------


def test_synflow_one_linear_layer_by_hand():
    # Linearized: W -> |W|, b -> |b|; input x = 1 (all ones). R = sum_i (sum_j |W_ij| + |b_i|), so
    # dR/dW_ij = 1 and dR/db_i = 1, and synflow = sum |W_ij| * 1 + sum |b_i| * 1
    #   = (1 + 2 + 3 + 4 + 5 + 6) + (0.5 + 0.5) = 21 + 1 = 22.
    model = linear([[1.0, -2.0, 3.0], [-4.0, 5.0, -6.0]], [0.5, -0.5])
    assert compute_proxy("synflow", model, torch.randn(4, 3), torch.zeros(4, dtype=torch.long)) == 22.0


def test_synflow_two_layers_with_relu_and_batchnorm_by_hand():
    # W1 = [[1, -2], [3, 4]], W2 = [[-1, 2]], no biases; ReLU sees only positive values (identity) and
    # BatchNorm is bypassed. Hidden h = |W1| 1 = [3, 7]; R = |W2| h = 1*3 + 2*7 = 17.
    # Layer 2: sum_j |W2_j| * dR/dW2_j = sum_j |W2_j| h_j = R = 17.
    # Layer 1: dR/dW1_jk = |W2_j| * 1, so sum_jk |W1_jk| |W2_j| = 1*(1+2) + 2*(3+4) = 17 = R.
    # synflow = 2 R = 34 (synaptic flow is conserved layer by layer: each layer carries R).
    model = nn.Sequential(
        linear([[1.0, -2.0], [3.0, 4.0]]), nn.BatchNorm1d(2), nn.ReLU(), linear([[-1.0, 2.0]])
    )
    assert compute_proxy("synflow", model, torch.randn(4, 2), torch.zeros(4, dtype=torch.long)) == 34.0


def test_naswot_by_hand():
    # One ReLU over 2 units, 3 samples: x = [[1, -1], [1, 1], [-1, -1]] -> codes [1,0], [1,1], [0,0].
    # K[i, j] = units on which i and j agree: K = [[2, 1, 1], [1, 2, 0], [1, 0, 2]];
    # det K = 2*(4 - 0) - 1*(2 - 0) + 1*(0 - 2) = 4, so naswot = log 4.
    x = torch.tensor([[1.0, -1.0], [1.0, 1.0], [-1.0, -1.0]])
    y = torch.zeros(3, dtype=torch.long)
    for act in (nn.ReLU(), nn.ReLU(inplace=True), nn.SiLU(), nn.Hardswish(), nn.GELU()):
        # the code is the sign of the activation's input, whatever the activation
        assert compute_proxy("naswot", nn.Sequential(act), x, y) == pytest.approx(math.log(4.0), abs=1e-12)


def test_naswot_sums_kernels_over_activations():
    # Two ReLUs that see the same input: K doubles, det(2K) = 2^3 det K for 3 samples: log 4 + 3 log 2.
    x = torch.tensor([[1.0, -1.0], [1.0, 1.0], [-1.0, -1.0]])
    model = nn.Sequential(nn.Identity(), nn.ReLU(), nn.Identity())
    model[0] = nn.ReLU()
    # the first ReLU clips negatives to 0, so the second sees codes of (x > 0) again: same codes
    expected = math.log(4.0) + 3 * math.log(2.0)
    assert compute_proxy("naswot", model, x, torch.zeros(3, dtype=torch.long)) == pytest.approx(expected)


def test_naswot_repeated_inputs_and_missing_activations():
    x = torch.tensor([[1.0, -1.0], [1.0, -1.0]])
    assert compute_proxy("naswot", nn.Sequential(nn.ReLU()), x, torch.zeros(2, dtype=torch.long)) == -math.inf
    with pytest.raises(ValueError, match="no activation module"):
        compute_proxy("naswot", nn.Linear(2, 2), x, torch.zeros(2, dtype=torch.long))


def test_snip_and_grad_norm_by_hand():
    # One sample x, Linear z = W x (no bias), L = cross_entropy(z, y) = -log softmax(z)_y.
    # dL/dz = p - e_y with p = softmax(z); dL/dW = (p - e_y) x^T.
    # snip = sum |W * dL/dW|; grad_norm = ||(p - e_y) x^T||_F = ||p - e_y|| * ||x||.
    w = [[0.5, -1.0], [2.0, 0.25], [-0.75, 1.5]]
    model = linear(w)
    x = torch.tensor([[2.0, -1.0]])
    y = torch.tensor([1])
    wt = torch.tensor(w)
    p = torch.softmax(x[0] @ wt.T, dim=0)
    delta = p - F.one_hot(y, 3)[0].float()
    grad = torch.outer(delta, x[0])
    assert compute_proxy("snip", model, x, y) == pytest.approx(float((wt * grad).abs().sum()), rel=1e-6)
    assert compute_proxy("grad_norm", model, x, y) == pytest.approx(
        float(delta.norm() * x[0].norm()), rel=1e-6
    )


def test_params_counts_every_parameter():
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))  # 3*2 + 2 + 2 + 2 = 12
    assert compute_proxy("params", model, torch.ones(2, 3), torch.zeros(2, dtype=torch.long)) == 12.0


# --- the model is left as it was ------------------------------------------------------------------------


def snapshot(model: nn.Module) -> dict:
    return {
        "state": {k: v.clone() for k, v in model.state_dict().items()},
        "grads": {n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()},
        "requires_grad": {n: p.requires_grad for n, p in model.named_parameters()},
        "training": {n: m.training for n, m in model.named_modules()},
        "modules": [type(m) for m in model.modules()],
    }


def assert_same(before: dict, after: dict) -> None:
    assert before["state"].keys() == after["state"].keys()
    for k, v in before["state"].items():
        w = after["state"][k]
        assert v.dtype == w.dtype and torch.equal(v, w), k
    for n, g in before["grads"].items():
        h = after["grads"][n]
        assert (g is None and h is None) or (g is not None and h is not None and torch.equal(g, h)), n
    assert before["requires_grad"] == after["requires_grad"]
    assert before["training"] == after["training"]
    assert before["modules"] == after["modules"]


@pytest.mark.parametrize("name", BUILTIN)
@pytest.mark.parametrize("mode", ["eval_with_grads", "train_no_grads"])
def test_proxy_leaves_model_unchanged(name, mode):
    models = [MixedNet(), digits_cnn(0), digits_cnn(3), digits_cnn(5)]
    x, y = batch()
    for model in models:
        if mode == "eval_with_grads":
            model.eval()
            if isinstance(model, MixedNet):
                model.head[1].train()  # a mix of modes must survive too
            F.cross_entropy(model(x), y).backward()  # leaves .grad set on every parameter
        rng = torch.get_rng_state()
        before = snapshot(model)
        compute_proxy(name, model, x, y)
        assert_same(before, snapshot(model))
        assert torch.equal(torch.get_rng_state(), rng), "the global RNG must be left untouched"


@pytest.mark.parametrize("name", BUILTIN)
def test_proxy_is_deterministic(name):
    x, y = batch()
    for sample_seed in (0, 5):
        a, b = digits_cnn(sample_seed), digits_cnn(sample_seed)  # same space, params and seed: same weights
        assert compute_proxy(name, a, x, y) == compute_proxy(name, b, x, y)
        assert compute_proxy(name, a, x, y) == compute_proxy(name, a, x, y)


def test_proxy_is_deterministic_with_dropout_in_train_mode():
    model = MixedNet().train()
    x, y = batch()
    assert compute_proxy("snip", model, x, y) == compute_proxy("snip", model, x, y)


@pytest.mark.parametrize("activation", ["relu", "gelu", "silu", "tanh", "hardswish"])
@pytest.mark.parametrize("norm", ["none", "batch", "layer"])
def test_every_proxy_scores_every_mlp_variant(activation, norm):
    space = load_space(ROOT / "search_spaces" / "mlp.yaml")
    params = {"width": 32, "depth": 2, "activation": activation, "norm": norm, "dropout": 0.2}
    model = build(space, params, seed=0)
    x, y = batch(16)
    scores = compute_proxies(model, x, y, BUILTIN)
    assert all(math.isfinite(v) for v in scores.values()), scores
    assert scores["synflow"] > 0 and scores["snip"] > 0 and scores["grad_norm"] > 0


# --- spearman ----------------------------------------------------------------------------------------------


def test_spearman_known_rankings():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [40, 30, 20, 10]) == pytest.approx(-1.0)
    # ranks (1, 2, 3, 4, 5) vs (2, 1, 4, 3, 5): sum d^2 = 4; rho = 1 - 6*4 / (5*24) = 0.8
    assert spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(0.8)
    # monotone transforms do not change rho (synflow's raw value vs NASLib's log)
    assert spearman([1e10, 1e20, 1e15], [0.1, 0.3, 0.2]) == pytest.approx(1.0)


def test_spearman_edge_cases():
    assert math.isnan(spearman([1.0], [2.0]))
    assert math.isnan(spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))
    assert spearman([1.0, float("nan"), 3.0, 2.0], [1.0, 5.0, 3.0, 2.0]) == pytest.approx(1.0)
    assert spearman([-math.inf, 1.0, 2.0, math.inf], [0.1, 0.2, 0.3, 0.4]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="equal-length"):
        spearman([1.0, 2.0], [1.0])


# --- ProxyRanker ---------------------------------------------------------------------------------------------


def test_ranker_falls_back_to_params_until_enough_pairs():
    ranker = ProxyRanker()
    for i in range(4):
        ranker.add({"synflow": float(i), "params": float(-i)}, accuracy=float(i))
    assert ranker.best_proxy(min_pairs=5) == "params"  # 4 pairs: too few to trust anything
    ranker.add({"synflow": 4.0, "params": -4.0}, accuracy=4.0)
    assert ranker.correlations() == {"synflow": pytest.approx(1.0), "params": pytest.approx(-1.0)}
    assert ranker.best_proxy(min_pairs=5) == "synflow"
    assert len(ranker) == 5 and ranker.n_pairs("synflow") == 5


def test_ranker_keeps_params_unless_a_proxy_beats_it():
    ranker = ProxyRanker()
    accs = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    params = [1, 2, 3, 4, 6, 5]  # rho = 1 - 6*2/(6*35) = 0.943
    naswot = [1, 2, 4, 3, 6, 5]  # two swaps: rho = 1 - 6*4/210 = 0.886
    synflow = [1, 2, 3, 4, 6, 5]  # ties params exactly: not strictly better
    for a, p, n, s in zip(accs, params, naswot, synflow, strict=True):
        ranker.add({"params": p, "naswot": n, "synflow": s}, accuracy=a)
    assert ranker.rho("params") == pytest.approx(1 - 12 / 210)
    assert ranker.best_proxy() == "params"
    ranker.add({"params": 0.0, "naswot": 7.0, "synflow": 7.0}, accuracy=0.7)  # params now ranks one badly
    assert ranker.rho("naswot") > ranker.rho("params")
    assert ranker.best_proxy() in {"naswot", "synflow"}
    assert ranker.best_proxy() == max(("naswot", "synflow"), key=ranker.rho)
    assert ranker.best_proxy(margin=1.0) == "params"  # nothing beats params by a whole unit of rho


def test_ranker_ignores_nan_and_proxies_with_few_pairs():
    ranker = ProxyRanker()
    for i in range(6):
        ranker.add({"params": float(i), "snip": float(i) if i < 3 else float("nan")}, accuracy=float(i))
    ranker.add({"params": 9.0}, accuracy=float("nan"))
    assert ranker.n_pairs("snip") == 3 and ranker.n_pairs("params") == 6
    assert ranker.best_proxy() == "params"
    assert ranker.proxies == ["params", "snip"]


# --- real NAS-Bench-201 cells ----------------------------------------------------------------------------


@pytest.mark.slow
def test_synflow_and_naswot_rank_nb201_cells():
    cells = json.loads(NASLIB.read_text())
    space = load_space(ROOT / "search_spaces" / "nb201.yaml")
    g = torch.Generator().manual_seed(0)
    x = torch.rand((16, 3, 32, 32), generator=g)  # U[0, 1) pixels: see benchmarks/proxy_check.py
    y = torch.randint(0, 10, (16,), generator=g)
    scores: dict[str, list[float]] = {"synflow": [], "naswot": [], "params": []}
    accs = []
    for key in list(cells)[:30]:
        ops = [NASLIB_OPS[int(i)] for i in key.strip("()").split(",")]
        model = build(space, dict(zip(NASLIB_EDGES, ops, strict=True)), seed=0)
        assert compute_proxy("params", model, x, y) / 1e6 == pytest.approx(
            cells[key]["params"]["score"], abs=1e-6
        )
        for name in scores:
            scores[name].append(compute_proxy(name, model, x, y))
        accs.append(cells[key]["val_accuracy"])
    assert spearman(scores["synflow"], accs) > 0.3
    assert spearman(scores["naswot"], accs) > 0.3
