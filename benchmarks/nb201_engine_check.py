"""Before/after check of the move of ``nas bench`` onto the one search loop: the plain Optuna peers (random,
NSGA-II; every proposal trains, ``reuse=False``) must give the same hypervolume trajectory, evaluation for
evaluation, through the old ``run_bench`` and the new ``search_table`` (same sampler seeds, same table).

    PYTHONPATH=<checkout> python benchmarks/nb201_engine_check.py > out.json   # in each of the two checkouts

Prints one JSON object: per ``method/seed`` the hypervolume fraction after each evaluation, the compute spent
(full-training equivalents) and the CPU seconds of the run. Compare the two outputs with ``diff``.
"""

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nb201_search as nb  # noqa: E402

import nas.bench as bench  # noqa: E402
from nas.bench import load_table, reference, true_hypervolume  # noqa: E402
from nas.config.experiment import load_experiment  # noqa: E402

SEEDS, EVALUATIONS = (10, 11, 12), 300


def main() -> dict:
    run = getattr(bench, "search_table", None) or bench.run_bench  # new, or the old loop
    out = {}
    for method in ("random", "nsga2"):
        exp = nb.method_experiment(nb.pair_experiment(load_experiment(nb.EXPERIMENT), "mflops", "flops_M"), method)
        table = load_table(exp)
        hv = true_hypervolume(exp, table, reference(exp, table))
        for seed in SEEDS:
            t0 = time.process_time()
            r = run(exp, table, seed=seed, max_evaluations=EVALUATIONS, reuse=False)
            out[f"{method}/{seed}"] = {"hv": [round(p.hypervolume / hv, 10) for p in r.trajectory],
                                       "compute": r.last.compute, "cpu_s": time.process_time() - t0}
    return out


if __name__ == "__main__":
    print(json.dumps(main()))
