"""Data registry, splits and the generated/bundled datasets (digits, mnist1d), torchvision error paths."""

from __future__ import annotations

import random
import sys
import types

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nas.data import DataError, Splits, dataset_names, load_data, register_dataset, unregister_dataset
from nas.data.base import split_sizes, stratified_indices, tensor_dataset


@pytest.fixture(scope="module")
def digits() -> Splits:
    return load_data("digits", seed=0)


def _labels(ds) -> np.ndarray:
    return ds.tensors[1].numpy()


def test_builtin_names_are_registered() -> None:
    assert {"digits", "mnist1d", "cifar10", "mnist", "fashion_mnist", "image_folder", "csv"} <= set(dataset_names())


def test_digits_shapes_and_contract(digits: Splits) -> None:
    assert digits.input_shape == (1, 8, 8) and digits.num_classes == 10 and digits.name == "digits"
    x, y = digits.train.tensors
    assert x.dtype == torch.float32 and y.dtype == torch.int64 and x.shape[1:] == (1, 8, 8)
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    # 1797 samples: round(0.2 * 1797) = 359 for val and test, the rest for train.
    assert digits.sizes() == {"train": 1079, "val": 359, "test": 359} == digits.info["sizes"]
    assert digits.info["seed"] == 0 and digits.info["source"] == "sklearn.datasets.load_digits"


def test_digits_splits_are_stratified(digits: Splits) -> None:
    total = np.bincount(np.concatenate([_labels(getattr(digits, p)) for p in ("train", "val", "test")]))
    for part in ("train", "val", "test"):
        y = _labels(getattr(digits, part))
        expected = total * len(y) / total.sum()
        assert np.all(np.abs(np.bincount(y, minlength=10) - expected) < 2)


def test_same_seed_same_tensors_other_seed_other_split(digits: Splits) -> None:
    again = load_data("digits", seed=0)
    other = load_data("digits", seed=1)
    for part in ("train", "val", "test"):
        for a, b in zip(getattr(digits, part).tensors, getattr(again, part).tensors, strict=True):
            assert torch.equal(a, b)
    assert not torch.equal(digits.train.tensors[0], other.train.tensors[0])


def test_fractions_change_sizes_and_bad_fractions_raise() -> None:
    s = load_data("digits", val_fraction=0.1, test_fraction=0.3)
    assert s.sizes() == {"train": 1078, "val": 180, "test": 539}
    with pytest.raises(DataError, match="val_fraction"):
        load_data("digits", val_fraction=1.5)
    with pytest.raises(DataError, match="leaves no training data"):
        load_data("digits", val_fraction=0.5, test_fraction=0.5)


@settings(max_examples=60, deadline=None)
@given(
    labels=st.lists(st.integers(0, 6), min_size=4, max_size=300),
    val=st.floats(0.0, 0.45),
    test=st.floats(0.0, 0.45),
    seed=st.integers(0, 2**31),
)
def test_stratified_indices_partition_exact_sizes_and_proportions(labels, val, test, seed) -> None:
    y = np.array(labels)
    try:
        sizes = split_sizes(len(y), val, test, name="prop")
    except DataError:
        return
    parts = stratified_indices(y, sizes, seed)
    assert [len(p) for p in parts] == list(sizes)
    assert sorted(np.concatenate(parts).tolist()) == list(range(len(y)))
    counts = np.bincount(y, minlength=7)
    for part, size in zip(parts, sizes, strict=True):
        share = counts * size / len(y)
        assert np.all(np.abs(np.bincount(y[part], minlength=7) - share) < 2)


def test_unknown_dataset_suggests_a_name() -> None:
    with pytest.raises(DataError, match=r"unknown dataset 'digit'\. Did you mean 'digits'\?"):
        load_data("digit")


def test_unknown_option_lists_valid_ones() -> None:
    with pytest.raises(DataError, match=r"no option 'num_sample'\. Did you mean 'num_samples'\?"):
        load_data("mnist1d", num_sample=100)


def test_register_dataset_rejects_duplicates_and_checks_the_contract() -> None:
    def tiny(*, seed, data_dir, val_fraction, test_fraction, scale: float = 1.0) -> Splits:
        x = np.arange(40, dtype=np.float32).reshape(20, 2) * scale
        y = np.arange(20) % 2
        ds = tensor_dataset(x, y)
        return Splits(ds, ds, ds, (2,), 2, "tiny", {"seed": seed})

    register_dataset("tiny_test_set")(tiny)
    try:
        with pytest.raises(ValueError, match="already registered"):
            register_dataset("tiny_test_set")(tiny)
        assert load_data("tiny_test_set", seed=3, scale=2.0).info == {"seed": 3}
    finally:
        unregister_dataset("tiny_test_set")
    with pytest.raises(TypeError, match="seed"):
        register_dataset("no_seed")(lambda data_dir, val_fraction, test_fraction: None)
    with pytest.raises(ValueError, match="':'"):
        register_dataset("a:b")(tiny)


def test_bad_loader_output_is_a_data_error() -> None:
    def wrong_dtype(*, seed, data_dir, val_fraction, test_fraction) -> Splits:
        ds = torch.utils.data.TensorDataset(torch.zeros(4, 2, dtype=torch.float64), torch.zeros(4, dtype=torch.int64))
        return Splits(ds, ds, ds, (2,), 2, "bad", {})

    register_dataset("bad_dtype_set")(wrong_dtype)
    try:
        with pytest.raises(DataError, match="float64"):
            load_data("bad_dtype_set")
    finally:
        unregister_dataset("bad_dtype_set")


def test_module_function_reference_loads_a_user_function(tmp_path, monkeypatch) -> None:
    (tmp_path / "my_nas_loader.py").write_text(
        "import numpy as np\n"
        "from nas.data import Splits\n"
        "from nas.data.base import splits_from_arrays\n"
        "def make(seed=0, val_fraction=0.2, test_fraction=0.2, n=50):\n"
        "    x = np.random.default_rng(0).normal(size=(n, 3)).astype('float32')\n"
        "    y = np.arange(n) % 2\n"
        "    return splits_from_arrays(x, y, name='mine', seed=seed, val_fraction=val_fraction,\n"
        "                              test_fraction=test_fraction, num_classes=2, info={})\n"
        "def broken(**kw):\n"
        "    return 42\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    s = load_data("my_nas_loader:make", seed=1, n=60)
    assert s.name == "mine" and s.sizes() == {"train": 36, "val": 12, "test": 12} and s.info["seed"] == 1
    with pytest.raises(DataError, match="returned int"):
        load_data("my_nas_loader:broken")
    with pytest.raises(DataError, match="has no attribute 'mak'"):
        load_data("my_nas_loader:mak")
    with pytest.raises(DataError, match="no module named 'no_such_module_xyz'.*PYTHONPATH"):
        load_data("no_such_module_xyz:make")


def test_mnist1d_shapes_split_and_cache(tmp_path, monkeypatch) -> None:
    np.random.seed(123)
    random.seed(123)
    np_before, py_before = np.random.get_state()[1].copy(), random.getstate()
    s = load_data("mnist1d", data_dir=tmp_path, num_samples=500)
    assert s.input_shape == (1, 40) and s.num_classes == 10
    # 500 samples: the package's own test split is the last 20% (100), val is round(0.2 * 500) of the rest.
    assert s.sizes() == {"train": 300, "val": 100, "test": 100}
    assert not s.info["cache_hit"] and len(list(tmp_path.glob("mnist1d-*.npz"))) == 1
    # the package reseeds the global RNGs; the loader must put them back
    assert np.array_equal(np.random.get_state()[1], np_before) and random.getstate() == py_before

    import nas.data.mnist1d as m1d

    def refuse(args):
        raise AssertionError("cache miss: generated again")

    monkeypatch.setattr(m1d, "_generate", refuse)
    again = load_data("mnist1d", data_dir=tmp_path, num_samples=500)
    assert again.info["cache_hit"]
    for part in ("train", "val", "test"):
        assert torch.equal(getattr(s, part).tensors[0], getattr(again, part).tensors[0])
    other_seed = load_data("mnist1d", data_dir=tmp_path, num_samples=500, seed=5)
    assert torch.equal(other_seed.test.tensors[0], s.test.tensors[0])
    assert not torch.equal(other_seed.train.tensors[0], s.train.tensors[0])
    with pytest.raises(AssertionError, match="cache miss"):
        load_data("mnist1d", data_dir=tmp_path, num_samples=510)


def test_mnist1d_too_few_samples() -> None:
    with pytest.raises(DataError, match="num_samples=5"):
        load_data("mnist1d", num_samples=5)


@pytest.mark.parametrize("name", ["cifar10", "mnist", "fashion_mnist"])
def test_torchvision_sets_without_torchvision_say_what_to_install(name, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "torchvision", None)
    monkeypatch.setitem(sys.modules, "torchvision.datasets", None)
    with pytest.raises(DataError, match=r"needs torchvision.*pip install 'nas\[vision\]'"):
        load_data(name)


def _fake_torchvision(monkeypatch, mnist_cls: type) -> None:
    datasets = types.ModuleType("torchvision.datasets")
    datasets.MNIST = mnist_cls
    monkeypatch.setitem(sys.modules, "torchvision", types.ModuleType("torchvision"))
    monkeypatch.setitem(sys.modules, "torchvision.datasets", datasets)


def test_torchvision_missing_files_say_where_to_put_them(tmp_path, monkeypatch) -> None:
    class MissingMNIST:
        def __init__(self, root, train, download):
            raise RuntimeError("Dataset not found. You can use download=True to download it")

    _fake_torchvision(monkeypatch, MissingMNIST)
    with pytest.raises(DataError, match=r"MNIST/raw/.*download=True") as err:
        load_data("mnist", data_dir=tmp_path)
    assert str(tmp_path) in str(err.value)


def test_torchvision_arrays_become_nchw_float_splits(tmp_path, monkeypatch) -> None:
    class TinyMNIST:
        classes = [str(i) for i in range(10)]

        def __init__(self, root, train, download):
            n = 100 if train else 30
            self.data = torch.arange(n * 28 * 28, dtype=torch.int64).remainder(256).to(torch.uint8).view(n, 28, 28)
            self.targets = torch.arange(n) % 10

    _fake_torchvision(monkeypatch, TinyMNIST)
    s = load_data("mnist", data_dir=tmp_path, val_fraction=0.1)
    assert s.input_shape == (1, 28, 28) and s.sizes() == {"train": 90, "val": 10, "test": 30}
    assert float(s.test.tensors[0].max()) == 1.0 and np.bincount(_labels(s.val)).tolist() == [1] * 10
