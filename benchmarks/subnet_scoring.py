"""How cheaply a one-shot search scores subnets: thousands of architectures of the demo space on one supernet.

The one-shot stage that scores (``nas.search.oneshot.score.score_subnets``) runs as in a search: the controller
(NSGA-II, hard constraints from the real profiler) proposes ``--batch`` architectures at a time; each is extracted
from the supernet with its inherited weights, its BatchNorm statistics recalibrated on ``--calibration`` training
batches, and evaluated on the validation split; the batch is told back. The supernet is trained for
``--supernet-epochs`` (SPOS) first; throughput hardly depends on it, the scores do.

Reported: subnets scored, distinct ones, wall seconds and ms per subnet (driver, one torch thread, CPU), the
scoring's forward FLOPs, and what they amount to in stand-alone trainings of the median scored architecture
(``training.epochs`` epochs over the training split, 3x forward FLOPs per sample).

    python benchmarks/subnet_scoring.py [--subnets 2000] [--batch 100] [--supernet-epochs 2] [--out subnet_scoring]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import asdict, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `benchmarks.*` importable
    sys.path.insert(0, str(ROOT))

from benchmarks._stamp import Stamp, write_results  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--experiment", default=str(ROOT / "experiments" / "digits_cnn.yaml"))
    ap.add_argument("--subnets", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--calibration", type=int, default=2, help="BatchNorm recalibration batches per subnet")
    ap.add_argument("--supernet-epochs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="results name (benchmarks/results/NAME.json and .md)")
    args = ap.parse_args(argv)
    stamp = Stamp.start(None if argv is None else ["benchmarks/subnet_scoring.py", *argv])

    import torch

    from nas.config.experiment import load_experiment
    from nas.config.one_shot import OneShotConfig
    from nas.oneshot.supernet import Supernet, arch_key
    from nas.oneshot.train import train_supernet
    from nas.profile import training_flops
    from nas.search.controller.core import Controller
    from nas.search.oneshot.run import finalists_experiment
    from nas.search.oneshot.score import score_subnets
    from nas.space import load_space
    from nas.training.trial import cached_splits

    torch.set_num_threads(1)
    exp = load_experiment(args.experiment)
    exp = replace(exp, one_shot=OneShotConfig(subnets=args.subnets, batch=args.batch))
    space = load_space(exp.space)
    splits = cached_splits(asdict(exp.data))
    supernet = Supernet(space, splits.input_shape, splits.num_classes, seed=args.seed)
    train_supernet(supernet, splits, epochs=args.supernet_epochs, seed=args.seed)
    scoring = replace(finalists_experiment(exp), search=replace(exp.search, trials=args.subnets, seed=args.seed))
    samples_per_training = exp.training.epochs * len(splits.train)
    controller = Controller(scoring, space, input_shape=splits.input_shape, num_classes=splits.num_classes,
                            train_samples_per_trial=samples_per_training)
    result = score_subnets(controller, supernet, splits, subnets=args.subnets, batch=args.batch,
                           calibration=args.calibration, calibration_batch_size=64, seed=args.seed)
    stamp.finish()
    scored = [r for r in result.rows if not r.error]
    distinct = {arch_key(r.params) for r in scored}
    median_mflops = statistics.median(r.mflops for r in scored)
    one_training = training_flops(median_mflops * 1e6, samples_per_training)
    figures = {
        "subnets": len(result.rows), "scored": len(scored), "distinct": len(distinct),
        "rejected_by_constraints": controller.stats.rejected, "seconds": result.seconds,
        "ms_per_subnet": 1000 * result.seconds / max(1, len(distinct)),
        "scoring_tflops": result.forward_flops / 1e12, "median_mflops": median_mflops,
        "one_training_tflops": one_training / 1e12,
        "scoring_in_trainings": result.forward_flops / one_training,
        "supernet_epochs": args.supernet_epochs, "calibration_batches": args.calibration,
        "validation_samples": len(splits.val), "train_samples": len(splits.train),
    }
    text = (f"{figures['subnets']} subnets of {Path(args.experiment).name}'s space proposed by "
            f"{exp.search.sampler} in batches of {args.batch} ({figures['rejected_by_constraints']} infeasible ones "
            f"rejected by the profiler before scoring), on a supernet trained {args.supernet_epochs} epochs; "
            f"each scored with BN recalibration on {args.calibration} batches of 64 and evaluation on "
            f"{figures['validation_samples']} validation samples, one torch thread, CPU.\n\n"
            "| distinct subnets scored | wall (s) | ms per subnet | scoring forward TFLOPs | one stand-alone "
            "training of the median subnet (TFLOPs) | scoring, in such trainings |\n|---|---|---|---|---|---|\n"
            f"| {figures['distinct']} | {figures['seconds']:.1f} | {figures['ms_per_subnet']:.1f} | "
            f"{figures['scoring_tflops']:.4f} | {figures['one_training_tflops']:.4f} | "
            f"{figures['scoring_in_trainings']:.2f} |\n")
    print(text)
    if args.out:
        readme = [{"what": f"one-shot scoring throughput: {figures['distinct']} distinct subnets of the demo space "
                           "on one supernet (BN recalibration + validation each, CPU, one thread)",
                   "figure": f"{figures['ms_per_subnet']:.1f} ms per subnet ({figures['seconds']:.0f} s in all); "
                             f"the scoring's forward passes cost {figures['scoring_in_trainings']:.2f} stand-alone "
                             "trainings of the median subnet"}]
        write_results(args.out, figures, stamp=stamp, markdown=text, readme=readme)
    return figures


if __name__ == "__main__":
    main()
