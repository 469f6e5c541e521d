"""Every broken space in tests/broken_spaces/ fails with a SpaceError naming its file, path and problem."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from torch import nn

from nas.space import SpaceError, load_space, parse_space
from nas.space.registry import register_builder, unregister_builder

BROKEN = Path(__file__).parent / "broken_spaces"

# (file, expected error path, expected substring of str(err): problem or fix)
CASES = [
    ("yaml_syntax.yaml", "", "line 5"),
    ("empty.yaml", "", "empty"),
    ("top_not_mapping.yaml", "", "must be a mapping"),
    ("missing_builder.yaml", "", "no `builder`"),
    ("missing_params.yaml", "", "no `params`"),
    ("unknown_top_key.yaml", "descripton", "did you mean 'description'"),
    ("params_not_mapping.yaml", "params", "must be a mapping"),
    ("dim_unknown_key.yaml", "params/stages/each/channels/hgih", "did you mean 'high'"),
    ("unknown_type.yaml", "params/dropout/type", "did you mean 'float'"),
    ("choices_on_int.yaml", "params/width/choices", "belongs to a categorical"),
    ("low_gt_high.yaml", "params/width/low", "greater than high"),
    ("step_too_small.yaml", "params/dropout/step", "into more than"),
    ("missing_high.yaml", "params/dropout", "needs `high`"),
    ("log_nonpositive.yaml", "params/lr/low", "low > 0"),
    ("log_with_step.yaml", "params/lr/step", "cannot be combined"),
    ("log_not_bool.yaml", "params/lr/log", "true or false"),
    ("step_nonpositive.yaml", "params/width/step", "must be > 0"),
    ("step_not_multiple.yaml", "params/width/high", "set high to 56 or 64"),
    ("bound_not_number.yaml", "params/dropout/high", "must be a number"),
    ("int_float_bounds.yaml", "params/width/low", "integer bounds"),
    ("empty_choices.yaml", "params/act/choices", "`choices` is empty"),
    ("nonscalar_choice.yaml", "params/act/choices/1", "must be a scalar"),
    ("duplicate_choices.yaml", "params/width/choices/2", "duplicates 1 at index 0"),
    ("empty_choice_mapping.yaml", "params/head/choice", "no branches"),
    ("branch_not_mapping.yaml", "params/head/choice/mlp", "mapping of fields or null"),
    ("branch_is_dimension.yaml", "params/head/choice/mlp/type", "cannot itself be a dimension"),
    ("repeat_negative.yaml", "params/stages/repeat", ">= 0"),
    ("repeat_low_gt_high.yaml", "params/stages/repeat/low", "greater than high"),
    ("repeat_not_int.yaml", "params/stages/repeat", "int >= 0 or {low, high}"),
    ("repeat_unknown_key.yaml", "params/stages/repeat/hihg", "did you mean 'high'"),
    ("repeat_without_each.yaml", "params/stages", "`repeat` without `each`"),
    ("each_not_mapping.yaml", "params/stages/each", "`each` must be a mapping"),
    ("each_without_repeat.yaml", "params/stages", "`each` without `repeat`"),
    ("two_markers.yaml", "params/stages", "only one of"),
    ("unknown_builder.yaml", "builder", "did you mean '_toy'"),
    ("unknown_builder_param.yaml", "params/widht", "did you mean 'width'"),
    ("missing_required_param.yaml", "params", "needs parameter(s) width"),
    ("reserved_in_params.yaml", "params/num_classes", "to the top level"),
    ("bad_input_shape.yaml", "input_shape/1", "positive ints"),
    ("input_shape_too_long.yaml", "input_shape", "1 to 3 ints"),
    ("bad_num_classes.yaml", "num_classes", "int >= 2"),
    ("duplicate_key.yaml", "params/width/high", "appears twice (lines 7 and 8)"),
    ("key_with_slash.yaml", "params/head", "contains '/'"),
    ("nested_list_constant.yaml", "params/act/1", "only scalars"),
    ("date_constant.yaml", "params/act", "quote it"),
    ("non_string_key.yaml", "params/head/choice/1", "keys must be strings"),
]


@pytest.fixture(scope="module", autouse=True)
def toy_builder():
    unregister_builder("_toy")

    @register_builder("_toy")
    def _toy(*, input_shape, num_classes, width, stages=None, dropout=0.0, lr=1e-3, act="relu", head=None):
        """A toy builder: only its keyword names matter here."""
        return nn.Identity()

    yield
    unregister_builder("_toy")


def _error(path: Path | str) -> SpaceError:
    with pytest.raises(SpaceError) as info:
        load_space(path)
    return info.value


@pytest.mark.parametrize(("name", "where", "needle"), CASES, ids=[c[0] for c in CASES])
def test_broken_space(name: str, where: str, needle: str) -> None:
    path = BROKEN / name
    err = _error(path)
    assert err.file == str(path)
    assert err.path == where
    assert needle in str(err)
    assert str(err) == f"{path}: {where or '<top>'}: {err.problem}. Fix: {err.fix}"
    assert "\n" not in str(err) and err.problem and err.fix


def test_table_covers_every_broken_file_and_each_says_what_is_broken() -> None:
    files = sorted(p.name for p in BROKEN.glob("*.yaml"))
    assert files == sorted(c[0] for c in CASES)
    assert len(files) >= 20
    for name in files:
        first = (BROKEN / name).read_text().splitlines()[0]
        assert first.startswith("# Broken: "), name


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        ("dim_unknown_key.yaml", "high"),
        ("unknown_type.yaml", "float"),
        ("unknown_top_key.yaml", "description"),
        ("unknown_builder.yaml", "_toy"),
        ("unknown_builder_param.yaml", "width"),
        ("repeat_unknown_key.yaml", "high"),
    ],
)
def test_did_you_mean(name: str, suggestion: str) -> None:
    assert _error(BROKEN / name).fix.startswith(f"did you mean {suggestion!r}?")


def test_errors_carry_the_line() -> None:
    assert _error(BROKEN / "dim_unknown_key.yaml").line == 8
    assert _error(BROKEN / "yaml_syntax.yaml").line == 5
    assert _error(BROKEN / "duplicate_key.yaml").line == 8


def test_missing_file_and_directory_are_space_errors(tmp_path: Path) -> None:
    err = _error(tmp_path / "nope.yaml")
    assert (err.file, err.path) == (str(tmp_path / "nope.yaml"), "")
    assert "does not exist" in err.problem
    assert "directory" in _error(tmp_path).problem


def test_unknown_builder_lists_known_ones() -> None:
    assert "_toy" in _error(BROKEN / "unknown_builder.yaml").fix


def test_error_is_a_picklable_value_error() -> None:
    err = _error(BROKEN / "low_gt_high.yaml")
    assert isinstance(err, ValueError)
    back = pickle.loads(pickle.dumps(err))
    assert (back.file, back.path, back.problem, back.fix, back.line) == (
        err.file,
        err.path,
        err.problem,
        err.fix,
        err.line,
    )
    assert str(back) == str(err)


@pytest.mark.parametrize(
    ("data", "where", "needle"),
    [
        ("builder: _toy", "", "must be a mapping"),
        ({"builder": 3, "params": {}}, "builder", "must be a name"),
        (
            {"builder": "_toy", "params": {"width": {"type": "categorical"}}},
            "params/width",
            "needs `choices`",
        ),
        (
            {"builder": "_toy", "params": {"width": {"type": "categorical", "choices": "ab"}}},
            "params/width/choices",
            "must be a list",
        ),
        (
            {"builder": "_toy", "params": {"width": {"type": "categorical", "choices": [float("nan")]}}},
            "params/width/choices/0",
            "NaN",
        ),
        (
            {"builder": "_toy", "params": {"width": {"type": "float", "low": 0, "high": float("inf")}}},
            "params/width/high",
            "finite",
        ),
        (
            {"builder": "_toy", "params": {"width": {"type": "int", "low": 0, "high": 4, "step": 1.5}}},
            "params/width/step",
            "integer step",
        ),
        (
            {"builder": "_toy", "params": {"width": {"type": "float", "low": 0, "high": 1, "step": 0.3}}},
            "params/width/high",
            "0.9 or 1.2",
        ),
        (
            {"builder": "_toy", "params": {"width": 8, "stages": {"repeat": {"low": 1}, "each": {}}}},
            "params/stages/repeat",
            "no `high`",
        ),
        (
            {"builder": "_toy", "params": {"width": 8, "head": {"choice": {"a": {}}, "x": 1}}},
            "params/head/x",
            "unknown key 'x' in a choice",
        ),
        (
            {"builder": "_toy", "params": {"width": 8, "stages": {"repeat": 1, "each": {"repeat": 2}}}},
            "params/stages/each/repeat",
            "cannot itself be a repeat",
        ),
        ({"builder": "_toy", "description": 3, "params": {"width": 8}}, "description", "must be text"),
    ],
)
def test_parse_space_errors(data: object, where: str, needle: str) -> None:
    with pytest.raises(SpaceError) as info:
        parse_space(data)
    assert (info.value.file, info.value.path) == ("<string>", where)
    assert needle in str(info.value)
