"""File-backed datasets: ``csv`` and ``image_folder`` (tiny files written to a temporary folder)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nas.data import DataError, load_data


def _write_csv(path, rows: int = 30, label=lambda i: ["cat", "dog", "emu"][i % 3]) -> None:
    lines = ["height,weight,label"] + [f"{i},{100 + 3 * i},{label(i)}" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")


def test_csv_happy_path_maps_labels_and_standardizes_with_train_statistics(tmp_path) -> None:
    file = tmp_path / "animals.csv"
    _write_csv(file)
    s = load_data("csv", path=file, seed=0)
    assert s.input_shape == (2,) and s.num_classes == 3
    assert s.info["class_names"] == ["cat", "dog", "emu"] and s.info["feature_columns"] == ["height", "weight"]
    assert s.sizes() == {"train": 18, "val": 6, "test": 6}
    assert np.bincount(s.val.tensors[1].numpy()).tolist() == [2, 2, 2]
    x_train = s.train.tensors[0]
    assert torch.allclose(x_train.mean(0), torch.zeros(2), atol=1e-5)
    assert torch.allclose(x_train.std(0, unbiased=False), torch.ones(2), atol=1e-5)
    # the stored statistics are the raw training rows' mean and std, so they undo the scaling exactly
    norm = s.info["normalization"]
    raw_height = x_train[:, 0] * norm["std"][0] + norm["mean"][0]
    assert torch.allclose(raw_height, raw_height.round(), atol=1e-3)
    # a row's label survives: height i has label i % 3
    for x, y in zip(*s.test.tensors, strict=True):
        assert int(round(float(x[0]) * norm["std"][0] + norm["mean"][0])) % 3 == int(y)


def test_csv_relative_path_under_data_dir_and_custom_label_column(tmp_path) -> None:
    (tmp_path / "t.csv").write_text("a,b,kind\n" + "".join(f"{i},{i % 5},{i % 2 + 7}\n" for i in range(20)))
    s = load_data("csv", data_dir=tmp_path, path="t.csv", label_column="kind", feature_columns=["a"])
    assert s.input_shape == (1,) and s.info["class_names"] == ["7", "8"]


def test_csv_missing_file(tmp_path) -> None:
    with pytest.raises(DataError, match=r"nope\.csv does not exist"):
        load_data("csv", path=tmp_path / "nope.csv")


def test_csv_missing_path_option() -> None:
    with pytest.raises(DataError, match="needs a CSV file: pass path="):
        load_data("csv")


def test_csv_missing_label_column_suggests_one(tmp_path) -> None:
    file = tmp_path / "animals.csv"
    _write_csv(file)
    with pytest.raises(DataError, match=r"animals\.csv has no label column 'lable'\. Did you mean 'label'\?") as e:
        load_data("csv", path=file, label_column="lable")
    assert "height, weight, label" in str(e.value)


def test_csv_non_numeric_feature(tmp_path) -> None:
    file = tmp_path / "mixed.csv"
    file.write_text("size,colour,label\n" + "".join(f"{i},red,{i % 2}\n" for i in range(10)))
    with pytest.raises(DataError, match=r"mixed\.csv: feature column\(s\) 'colour' are not numeric"):
        load_data("csv", path=file)


def test_csv_needs_two_classes(tmp_path) -> None:
    file = tmp_path / "one.csv"
    _write_csv(file, label=lambda i: "only")
    with pytest.raises(DataError, match=r"one\.csv: label column 'label' has 1 distinct value"):
        load_data("csv", path=file)


def test_csv_empty_feature_cell(tmp_path) -> None:
    file = tmp_path / "holes.csv"
    file.write_text("x,label\n1,a\n,b\n3,a\n4,b\n5,a\n")
    with pytest.raises(DataError, match=r"'x' have empty or NaN cells"):
        load_data("csv", path=file)


def _write_images(root, sizes: dict[str, int]) -> None:
    image = pytest.importorskip("PIL.Image", reason="pillow is not installed: add it to the dev extras")
    rng = np.random.default_rng(0)
    for class_index, (name, count) in enumerate(sizes.items()):
        (root / name).mkdir(parents=True)
        for i in range(count):
            side = 6 + i % 3  # mixed sizes, all resized to image_size
            pixels = np.full((side, side, 3), 60 * class_index, dtype=np.uint8) + rng.integers(0, 5, (side, side, 3),
                                                                                              dtype=np.uint8)
            image.fromarray(pixels).save(root / name / f"{i}.png")


def test_image_folder_happy_path(tmp_path) -> None:
    _write_images(tmp_path / "imgs", {"a": 5, "b": 5, "c": 5})
    (tmp_path / "imgs" / "a" / "notes.txt").write_text("not an image")
    s = load_data("image_folder", path=tmp_path / "imgs", image_size=4, channels=3, seed=0)
    assert s.input_shape == (3, 4, 4) and s.num_classes == 3 and s.info["class_names"] == ["a", "b", "c"]
    assert s.sizes() == {"train": 9, "val": 3, "test": 3}
    x, y = s.train.tensors
    # class k was painted 60 * k (+ up to 4) on every channel
    assert torch.allclose(x.mean(dim=(1, 2, 3)), y.float() * 60 / 255, atol=5 / 255)
    grey = load_data("image_folder", data_dir=tmp_path / "imgs", image_size=(2, 3), channels=1)
    assert grey.input_shape == (1, 2, 3)


def test_image_folder_empty_or_missing_folder(tmp_path) -> None:
    with pytest.raises(DataError, match="has 0 class sub-folder"):
        load_data("image_folder", path=tmp_path)
    with pytest.raises(DataError, match="is not a folder"):
        load_data("image_folder", path=tmp_path / "missing")


def test_image_folder_class_without_images(tmp_path) -> None:
    _write_images(tmp_path, {"a": 3})
    (tmp_path / "b").mkdir()
    with pytest.raises(DataError, match=r"class folder .*b holds no image file"):
        load_data("image_folder", path=tmp_path)
