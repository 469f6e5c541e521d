"""The ``nas`` command: thin wrappers over the library. Errors about input print one paragraph and exit 2."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from nas.data.base import DataError
from nas.errors import ConfigError

console = Console()


def _table(rows: Sequence[dict[str, Any]], title: str) -> Table:
    t = Table(title=title)
    cols = list(rows[0]) if rows else []
    for c in cols:
        t.add_column(c, justify="right")
    for r in rows:
        t.add_row(*[f"{v:.4g}" if isinstance(v, float) else str(v) for v in r.values()])
    return t


# ---- nas space show ---------------------------------------------------------------------------------------------

def cmd_space_show(args: argparse.Namespace) -> int:
    from nas.builders import build
    from nas.profile import count_flops
    from nas.space import load_space

    for path in args.files:
        space = load_space(path)
        t = Table(title=f"{path}  (builder: {space.builder})")
        for c in ("name", "type", "values"):
            t.add_column(c)
        for d in space.dimensions():
            values = ", ".join(map(str, d.choices)) if d.choices is not None else (
                f"[{d.low}, {d.high}]" + (f" step {d.step}" if d.step else "") + (" log" if d.log else ""))
            t.add_row(d.name, d.kind, values)
        console.print(t)
        size = space.size()
        console.print(f"size: {'continuous' if size is None else f'{size:,} architectures'}")
        console.print(f"hash: {space.hash}")
        shape = space.input_shape
        if shape is None or space.num_classes is None:
            console.print("sample: (no default input_shape/num_classes in the space; use `nas profile --input-shape`)")
            continue
        params = space.sample_random(args.seed)
        model = build(space, params, input_shape=shape, num_classes=space.num_classes, seed=args.seed)
        flops, _, unsupported = count_flops(model, shape)
        n = sum(p.numel() for p in model.parameters())
        console.print(f"sample (seed {args.seed}): {flops / 1e6:.4g} MFLOPs, {n:,} params"
                      + (f", uncounted ops: {unsupported}" if unsupported else ""))
        console.print(f"  params: {json.dumps(params)}")
    return 0


# ---- nas profile ------------------------------------------------------------------------------------------------

def _shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a shape; write C,H,W e.g. 3,32,32") from None
    if not shape or any(s <= 0 for s in shape):
        raise argparse.ArgumentTypeError(f"{text!r}: every dimension must be a positive int")
    return shape


def cmd_profile(args: argparse.Namespace) -> int:
    from nas.builders import build
    from nas.profile import profile_model
    from nas.space import load_space

    space = load_space(args.file)
    try:
        params = json.loads(args.params)
    except json.JSONDecodeError as e:
        raise ConfigError("--params", "", f"not valid JSON: {e}", """pass a JSON object, e.g. '{"width": 64}'""") from None
    if not isinstance(params, dict):
        raise ConfigError("--params", "", "must be a JSON object", """e.g. '{"arch": "|nor_conv_3x3~0|+|...|"}'""")
    shape = args.input_shape or space.input_shape
    classes = args.num_classes or space.num_classes
    if shape is None or classes is None:
        raise ConfigError("--input-shape", "", "the space sets no default input shape or class count",
                          "pass --input-shape C,H,W and --num-classes N")
    model = build(space, params, input_shape=shape, num_classes=classes)
    prof = profile_model(model, shape, device=args.device, batch_size=args.batch_size)
    d = prof.as_dict()
    if args.json:
        print(json.dumps(d, default=float))
    else:
        console.print(_table([{k: v for k, v in d.items() if not isinstance(v, dict)}], f"profile of {args.file}"))
        if d.get("unsupported_ops"):
            console.print(f"uncounted ops: {d['unsupported_ops']}")
    return 0


# ---- nas search -------------------------------------------------------------------------------------------------

def cmd_search(args: argparse.Namespace) -> int:
    from nas.config.experiment import load_experiment
    from nas.search.api import SearchAbortedError, SearchInterruptedError, run_search

    exp = load_experiment(args.experiment).with_overrides(trials=args.trials, seed=args.seed,
                                                          tracking_uri=args.tracking_uri)
    if args.dry_run:
        return dry_run(exp)
    try:
        if args.quiet:
            result = run_search(exp, address=args.address, resume=args.resume)
        else:
            from nas.search.progress import LiveProgress

            with LiveProgress() as live:
                result = run_search(exp, address=args.address, on_update=live.update, resume=args.resume)
    except SearchAbortedError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except SearchInterruptedError as e:  # Ctrl-C / SIGTERM: recorded, resumable; the shell's 128 + signal
        print(f"interrupted (signal {e.signum}): everything so far is recorded; continue with\n"
              f"  nas search {args.experiment} --resume {e.run_id}", file=sys.stderr)
        return 128 + e.signum
    rows = [{"trial": r.number, **{k: r.metrics.get(k) for k in ("val_accuracy", "mflops", "params", "latency_ms")
                                   if k in r.metrics}} for r in result.pareto]
    console.print(_table(rows, f"Pareto set ({len(rows)} of {result.state.done} trials, hypervolume "
                               f"{result.hypervolume:.4g})"))
    if result.state.stop_reason and result.state.stop_reason != "trials":
        print(f"stopped: {result.state.stop_reason}")
    print(f"run_id: {result.run_id}")
    from nas.tracking.tracker import runs_url

    print(f"mlflow ui --backend-store-uri {result.tracking_uri}")
    print(f"then open {runs_url(result.experiment_id)}")
    return 0


def dry_run(exp: Any) -> int:
    """Print the search's forecast: compute, device-hours, kWh, CO2, cost. Nothing trains, nothing is written."""
    from dataclasses import asdict

    from nas.cost.forecast import forecast
    from nas.space import load_space
    from nas.training.trial import cached_splits

    space = load_space(exp.space)
    splits = cached_splits(asdict(exp.data))
    fc = forecast(space, splits.input_shape, splits.num_classes, trials=exp.search.trials, epochs=exp.training.epochs,
                  train_samples=len(splits.train), val_samples=len(splits.val), resources=exp.resources,
                  energy_config=exp.energy, seed=exp.search.seed, constraints=exp.constraints,
                  workers=exp.search.concurrency, batch_size=exp.data.batch_size)
    for line in fc.lines():
        print(line)
    return 0


# ---- nas pareto / export ----------------------------------------------------------------------------------------

def cmd_pareto(args: argparse.Namespace) -> int:
    from nas.pareto import select
    from nas.tracking.models import pareto_set

    entries = pareto_set(args.run_id, args.tracking_uri)
    rows = [e.row() for e in entries]
    if args.where:
        rows = select(rows, where=args.where)
    if args.json:
        print(json.dumps(rows))
    else:
        console.print(_table(rows, f"Pareto set of {args.run_id}"))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from nas.tracking.models import export_model

    entry = export_model(args.run_id, args.output, where=args.where, best=args.best, tracking_uri=args.tracking_uri,
                         trust_code=args.trust_code)
    print(f"wrote {args.output}: trial {entry.trial} (rank {entry.rank}), "
          + ", ".join(f"{k}={v:.4g}" for k, v in entry.row().items() if k not in ("rank", "trial")))
    return 0


def cmd_compress(args: argparse.Namespace) -> int:
    from nas.compress.stage import PLANS, compress_search

    methods = list(PLANS) if args.method == "all" else [args.method]
    rows, merged = compress_search(args.run_id, methods=methods, finetune_epochs=args.finetune_epochs,
                                   tracking_uri=args.tracking_uri, trust_code=args.trust_code)
    def arrow(before: float | None, after: float | None) -> str:
        return f"{before:.4g} -> {after:.4g}" if before is not None and after is not None else f"{after:.4g}"

    table = [{"trial": r.source_trial, "method": r.method,
              "val_accuracy": arrow(r.before.get("val_accuracy"), r.after.get("val_accuracy")),
              "MFLOPs": arrow(r.before.get("mflops"), r.after.get("mflops")),
              "size MiB": arrow(r.before.get("size_mb"), r.after.get("size_mb")),
              "latency ms": arrow(r.before.get("latency_ms"), r.after.get("latency_ms")),
              "merged front": "yes" if r.on_merged_front else ""} for r in rows]
    console.print(_table(table, f"compressed Pareto models of {args.run_id}"))
    console.print(_table([{"model": m["label"], "val_accuracy": m["val_accuracy"], "MFLOPs": m["mflops"]}
                          for m in merged], "merged front"))
    joined = sum(r.on_merged_front for r in rows)
    print(f"{joined} compressed model(s) joined the merged front" if joined else
          "no compressed model joined the merged front: none dominated or matched an uncompressed one")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from nas.report.run import build_report

    html = build_report(args.run_id, args.output, tracking_uri=args.tracking_uri, baselines=not args.no_baselines,
                        reference=args.reference)
    print(f"wrote {html} (and logged it on the search's parent run under report/)")
    return 0


# ---- nas doctor ---------------------------------------------------------------------------------------------------

def cmd_doctor(args: argparse.Namespace) -> int:
    from nas.search.doctor import doctor
    from nas.tracking.tracker import default_tracking_uri

    findings = doctor(args.run_id, args.tracking_uri or default_tracking_uri(), repair=args.repair)
    console.print(_table([{"check": f.check, "ok": "yes" if f.ok else "NO", "repaired": "yes" if f.repaired else "",
                           "detail": f.detail} for f in findings], f"nas doctor {args.run_id}"))
    return 0 if all(f.ok for f in findings) else 1


# ---- nas bench --------------------------------------------------------------------------------------------------

def cmd_bench(args: argparse.Namespace) -> int:
    from nas.bench.overrides import with_bench_overrides
    from nas.bench.session import bench_experiment
    from nas.config.experiment import load_experiment

    exp = with_bench_overrides(load_experiment(args.experiment), table=args.table,
                               accuracy_column=args.accuracy_column, cost_column=args.cost_column)
    exp = exp.with_overrides(trials=args.trials)
    if args.max_compute is not None and args.max_compute <= 0:
        raise ConfigError("--max-compute", "", f"must be > 0, got {args.max_compute}", "pass e.g. --max-compute 100")
    result = bench_experiment(exp, seeds=args.seeds, max_compute=args.max_compute)
    d = result.as_dict()
    if args.json:
        print(json.dumps(d, default=float))
        return 0
    rows = [{"seed": r["seed"], "evals": r["evaluations"], "full": r["full_trainings"], "compute": r["compute"],
             "HV %": 100 * r["hv_fraction"],
             **{f"to {t[2:]}%": "-" if r[t] is None else f"{r[t]['compute']:.4g}" for t in ("hv95", "hv99", "hv100")}}
            for r in d["runs"]]
    console.print(_table(rows, "compute in full trainings; 'to N%': compute to reach N% of the table's hypervolume"))
    for r in d["runs"]:
        print(f"seed {r['seed']}: {r['stopped_early']} stopped early, {r['promoted']} promoted, {r['screened_out']} screened out, "
              f"{r['repeats']} re-proposals answered free; stopped: {r['stop_reason']}")
    print(f"table {d['table']}: true hypervolume {d['true_hypervolume']:.4g} (reference {d['reference']})")
    for t, s in d["summary"].items():
        med = "not reached by half the seeds" if s["compute_median"] is None else (
            f"median {s['compute_median']:.4g} full trainings, {s['evals_median']:.4g} evaluations")
        print(f"{t}: {med} ({s['reached']}/{s['runs']} seeds reached it)")
    return 0


_TRUST_HELP = ("let the stored model run code: import its builder's module:function, load a pickled module "
               "(only for tracking stores you trust)")


# ---- parser -----------------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nas", description="Efficiency-aware neural architecture search.")
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = p.add_subparsers(dest="command", required=True)

    space = sub.add_parser("space", help="inspect search spaces").add_subparsers(dest="space_command", required=True)
    show = space.add_parser("show", help="dimensions, size, hash and one sampled model of each space file")
    show.add_argument("files", nargs="+")
    show.add_argument("--seed", type=int, default=0)
    show.set_defaults(fn=cmd_space_show)

    prof = sub.add_parser("profile", help="MFLOPs, params, latency and memory of one architecture")
    prof.add_argument("file", help="search-space YAML file")
    prof.add_argument("--params", required=True, help="architecture params as a JSON object")
    prof.add_argument("--input-shape", type=_shape, help="C,H,W (default: the space's)")
    prof.add_argument("--num-classes", type=int, help="default: the space's")
    prof.add_argument("--batch-size", type=int, default=1)
    prof.add_argument("--device", default="cpu")
    prof.add_argument("--json", action="store_true", help="print one JSON object")
    prof.set_defaults(fn=cmd_profile)

    s = sub.add_parser("search", help="run a search described by an experiment file")
    s.add_argument("experiment")
    s.add_argument("--trials", type=int, help="override search.trials")
    s.add_argument("--seed", type=int, help="override search.seed")
    s.add_argument("--tracking-uri", help="override tracking.uri (default sqlite:///mlflow.db)")
    s.add_argument("--address", help="join an existing Ray cluster (default: RAY_ADDRESS, else a local cluster)")
    s.add_argument("--quiet", action="store_true", help="no live progress display")
    s.add_argument("--resume", metavar="RUN_ID", help="continue the search RUN_ID after its driver stopped")
    s.add_argument("--dry-run", action="store_true", help="forecast the compute, energy and CO2; train nothing")
    s.set_defaults(fn=cmd_search)

    for name, fn, helptext in (("pareto", cmd_pareto, "print the Pareto set of a search"),
                               ("export", cmd_export, "write one Pareto model to a file")):
        c = sub.add_parser(name, help=helptext)
        c.add_argument("run_id", help="the search's run id (printed by `nas search`)")
        c.add_argument("--tracking-uri", default=None, help="default: MLFLOW_TRACKING_URI or sqlite:///mlflow.db")
        c.add_argument("--where", help='conditions, e.g. "mflops<=5, val_accuracy>=0.9"')
        if name == "pareto":
            c.add_argument("--json", action="store_true")
        else:
            c.add_argument("--best", default="val_accuracy", help="metric to pick the best by (default val_accuracy)")
            c.add_argument("-o", "--output", required=True, help="output file (.pt)")
            c.add_argument("--trust-code", action="store_true", help=_TRUST_HELP)
        c.set_defaults(fn=fn)
    rep = sub.add_parser("report", help="write the search's HTML report (and log it on the parent run)")
    rep.add_argument("run_id", help="the search's run id")
    rep.add_argument("-o", "--output", default="nas_report", help="output folder (default nas_report/)")
    rep.add_argument("--reference", type=int, help="trial number of the break-even reference (default: most accurate)")
    rep.add_argument("--no-baselines", action="store_true", help="skip the classical baselines")
    rep.add_argument("--tracking-uri", default=None, help="default: MLFLOW_TRACKING_URI or sqlite:///mlflow.db")
    rep.set_defaults(fn=cmd_report)

    comp = sub.add_parser("compress", help="compress the Pareto models of a search and merge the fronts")
    comp.add_argument("run_id", help="the search's run id")
    comp.add_argument("--method", choices=["prune", "int8", "lowrank", "all"], default="all")
    comp.add_argument("--finetune-epochs", type=int, default=0, help="fine-tune after pruning / low rank")
    comp.add_argument("--tracking-uri", default=None, help="default: MLFLOW_TRACKING_URI or sqlite:///mlflow.db")
    comp.add_argument("--trust-code", action="store_true", help=_TRUST_HELP)
    comp.set_defaults(fn=cmd_compress)

    doc = sub.add_parser("doctor", help="check a search's study, child runs, tags and models; --repair fixes")
    doc.add_argument("run_id", help="the search's run id")
    doc.add_argument("--repair", action="store_true", help="repair what can be (needs no live driver on the run)")
    doc.add_argument("--tracking-uri", default=None, help="default: MLFLOW_TRACKING_URI or sqlite:///mlflow.db")
    doc.set_defaults(fn=cmd_doctor)

    bench = sub.add_parser("bench", help="search a tabular benchmark (accuracies looked up, not trained)")
    bench.add_argument("experiment", help="experiment file with a `bench:` section")
    bench.add_argument("--table", help="override bench.table (CSV path)")
    bench.add_argument("--accuracy-column", help="override the full-fidelity accuracy column")
    bench.add_argument("--cost-column", help="override the column of the first cost objective")
    bench.add_argument("--seeds", type=int, default=1, help="seeds search.seed, search.seed+1, ... (default 1)")
    bench.add_argument("--trials", type=int, help="override search.trials (trainings started per seed)")
    bench.add_argument("--max-compute", type=float,
                       help="stop each seed at this many full-training equivalents of simulated compute")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.set_defaults(fn=cmd_bench)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    import optuna

    optuna.logging.set_verbosity(logging.INFO if args.verbose else logging.WARNING)
    try:
        return int(args.fn(args) or 0)
    except (ConfigError, DataError) as e:  # bad input (SpaceError is a ConfigError): one paragraph, exit 2
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
