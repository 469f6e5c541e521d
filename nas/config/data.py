"""``data:``: which dataset, split how, in batches of what size."""

from __future__ import annotations

from dataclasses import field
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from nas.config._schema import Float, Int, Str, check, in_unit, known, section
from nas.config.names import registered


@section
class DataConfig:
    """``name``: a registered dataset or ``package.module:function``; ``val_fraction``/``test_fraction``: shares
    of all samples, leaving some for training; ``options``: the dataset's own keywords."""

    name: Str = "digits"
    seed: Int = Field(0, ge=0)
    batch_size: Int = Field(64, ge=1)
    val_fraction: Annotated[Float, in_unit("val_fraction", 0.2)] = 0.2
    test_fraction: Float = 0.2
    data_dir: Str | None = None
    options: dict[Str, Any] = field(default_factory=dict)

    @field_validator("name", mode="after")
    @classmethod
    def _dataset(cls, name: str) -> str:
        if ":" not in name:
            known(name, registered("dataset"), "dataset")
        return name

    @model_validator(mode="after")
    def _leaves_training_data(self) -> DataConfig:
        check(0 <= self.test_fraction < 1 and self.val_fraction + self.test_fraction < 1,
              "val_fraction + test_fraction must leave training data", "lower the fractions", "test_fraction")
        return self
