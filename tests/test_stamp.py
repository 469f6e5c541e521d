"""Stamped results and the README table regenerated from them."""

from __future__ import annotations

import json

import pytest

from benchmarks._stamp import Stamp, is_stamped, write_results
from benchmarks.readme_figures import BEGIN, END, render, table


def test_results_are_stamped(tmp_path):
    stamp = Stamp.start(["benchmarks/x.py", "--seeds", "2"])
    with pytest.raises(ValueError):
        write_results("x", {}, stamp=stamp, folder=tmp_path)
    path = write_results("x", {"a": 1}, stamp=stamp.finish(), markdown="| t |", folder=tmp_path,
                         readme=[{"what": "w", "figure": "f"}])
    doc = json.loads(path.read_text())
    assert is_stamped(doc) and doc["a"] == 1 and doc["stamp"]["command"] == "python benchmarks/x.py --seeds 2"
    assert len(doc["stamp"]["commit"]) == 40 and doc["stamp"]["machine"]["cores"] >= 1
    assert (tmp_path / "x.md").read_text().startswith("`python benchmarks/x.py --seeds 2`")
    assert not is_stamped({"a": 1})



def test_readme_quotes_only_stamped_files(tmp_path):
    stamp = Stamp.start(["benchmarks/y.py"]).finish()
    write_results("y", {}, stamp=stamp, folder=tmp_path, readme=[{"what": "rho | passes", "figure": "0.95"}])
    (tmp_path / "old.json").write_text(json.dumps({"figure": 1}))
    block = table(tmp_path)
    assert "| rho \\| passes | 0.95 | `python benchmarks/y.py` | [y.json]" in block
    assert "Not stamped" in block and "old.json" in block and "| 1 |" not in block
    readme = f"intro\n{BEGIN}\nstale\n{END}\nrest\n"
    out = render(readme, block)
    assert out.startswith("intro\n") and out.endswith("rest\n") and "stale" not in out and block in out
