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
    from nas.search.preflight import resolve_paths
    from nas.search.progress import failure_summary

    exp = resolve_paths(load_experiment(args.experiment).with_overrides(trials=args.trials, seed=args.seed,
                                                                         tracking_uri=args.tracking_uri))
    if args.dry_run:
        return dry_run(exp)
    if args.resume:
        exp, args.resume = _resume_settings(exp, args)
    _announce_start(args)
    try:
        if args.quiet:
            result = run_search(exp, address=args.address, resume=args.resume, storage_path=args.storage_path)
        else:
            from nas.search.progress import LiveProgress

            with LiveProgress() as live:
                result = run_search(exp, address=args.address, on_update=live.update, resume=args.resume,
                                    storage_path=args.storage_path)
    except SearchAbortedError as e:
        _print_failures(exp.tracking.uri, _STARTED.get("run_id"))
        print(f"error: {e}", file=sys.stderr)
        return 1
    except SearchInterruptedError as e:  # Ctrl-C / SIGTERM: recorded, resumable; the shell's 128 + signal
        print(f"interrupted (signal {e.signum}): everything so far is recorded; continue with\n"
              f"  nas search {args.experiment} --resume {e.run_id}", file=sys.stderr)
        return 128 + e.signum
    failures = failure_summary(result.records)
    completed = [r for r in result.records if r.status == "complete"]
    if completed:
        rows = [{"trial": r.number, **{k: r.metrics.get(k) for k in PARETO_COLUMNS if k in r.metrics}}
                for r in result.pareto]
        console.print(_table(rows, f"Pareto set ({len(rows)} of {result.state.done} trials, hypervolume "
                                   f"{result.hypervolume:.4g})"))
    if result.state.stop_reason and result.state.stop_reason != "trials":
        print(f"stopped: {result.state.stop_reason}")
    if failures:
        print(f"{result.state.failed} of {result.state.done} trials failed:", file=sys.stderr)
        for line in failures:
            print(f"  {line}", file=sys.stderr)
    print(f"run_id: {result.run_id}")
    from nas.tracking.tracker import runs_url

    print(f"mlflow ui --backend-store-uri {result.tracking_uri}")
    print(f"then open {runs_url(result.experiment_id)}")
    if not completed:
        print(f"error: no trial of search {result.run_id} completed, so it has no Pareto set"
              + (" (the failures are listed above)" if failures else "")
              + ". Fix the cause, then start a new search.", file=sys.stderr)
        return 1
    return 0


#: metrics shown for the Pareto set after a search (test accuracy is shown, never used to choose)
PARETO_COLUMNS = ("val_accuracy", "test_accuracy", "mflops", "params", "latency_ms")


def _resume_settings(exp: Any, args: argparse.Namespace) -> tuple[Any, str]:
    """The experiment a resume continues with (the original run's trials and seed unless given again) and the
    full run id (``--resume`` takes a unique prefix). Says what it continues with."""
    from nas.tracking.tracker import get_search_run, resolve_run_id

    client = _client(exp.tracking.uri, "--resume")
    run = get_search_run(client, resolve_run_id(client, args.resume))
    params = run.data.params
    trials = args.trials if args.trials is not None else int(params.get("trials", exp.search.trials))
    seed = args.seed if args.seed is not None else int(params.get("seed", exp.search.seed))
    exp = exp.with_overrides(trials=trials, seed=seed)
    said = {"trials": "given now" if args.trials is not None else "as the search started",
            "seed": "given now" if args.seed is not None else "as the search started"}
    print(f"resuming search {run.info.run_id}: {trials} trials in all ({said['trials']}), seed {seed} "
          f"({said['seed']})", flush=True)
    return exp, run.info.run_id


#: the run id of the search this process started or resumed (set by the start announcement)
_STARTED: dict[str, str] = {}


def _print_failures(uri: str, run_id: str | None) -> None:
    """The failed trials of search ``run_id``, grouped and counted, read back from the tracking store."""
    if not run_id:
        return
    from nas.search.progress import failure_summary
    from nas.tracking.tracker import client_for, trial_runs
    from nas.training.records import TrialRecord

    client = client_for(uri)
    runs = trial_runs(client, client.get_run(run_id))
    recs = [TrialRecord(number=int(r.data.tags.get("nas.trial_number", -1)), params={}, training={}, profile={},
                        status=r.data.tags.get("nas.status", ""), reason=r.data.tags.get("nas.failure_reason", ""))
            for r in runs]
    lines = failure_summary(sorted(recs, key=lambda r: r.number))
    if lines:
        print(f"{len([r for r in recs if r.status == 'failed'])} of {len(recs)} trials failed:", file=sys.stderr)
        for line in lines:
            print(f"  {line}", file=sys.stderr)


def _announce_start(args: argparse.Namespace) -> None:
    """Print the run id and the exact resume command as soon as the search's parent run exists."""
    import shlex

    command = ["nas", "search", args.experiment]
    if args.tracking_uri:
        command += ["--tracking-uri", args.tracking_uri]
    if args.address:
        command += ["--address", args.address]

    class _Started(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            run_id = getattr(record, "nas_run_id", None)
            if run_id:
                _STARTED["run_id"] = run_id
                what = "resumed" if getattr(record, "nas_resumed", False) else "started"
                print(f"search {what}: run_id {run_id}\n  if it stops, resume with: "
                      f"{shlex.join([*command, '--resume', run_id])}", flush=True)

    started = logging.getLogger("nas.search.started")
    started.handlers = [_Started()]
    started.setLevel(logging.INFO)
    started.propagate = False


def _client(uri: str | None, flag: str = "--tracking-uri") -> Any:
    """A client of an existing tracking store; ConfigError (never a new, empty store) when it does not exist."""
    from nas.tracking.tracker import client_for, default_tracking_uri, store_exists

    uri = uri or default_tracking_uri()
    if not store_exists(uri):
        raise ConfigError(flag, "", f"no tracking store at {uri!r} (this command only reads one)",
                          "run it in the folder where `nas search` ran, or pass --tracking-uri sqlite:///path/mlflow.db")
    return client_for(uri)


def _search_id(args: argparse.Namespace) -> str:
    """The full search run id of ``args.run_id`` (a unique prefix is enough), in an existing store."""
    from nas.tracking.tracker import get_search_run, resolve_run_id

    client = _client(args.tracking_uri)
    return str(get_search_run(client, resolve_run_id(client, args.run_id)).info.run_id)


#: never a criterion to choose a model by: it would make the test split a second validation split
_REPORTED_ONLY = ("test_accuracy",)


def _query(rows: list[dict[str, Any]], where: str | None, best: str | None, run_id: str) -> list[dict[str, Any]]:
    """``rows`` meeting ``--where``, best first by ``--best``; ConfigError naming the real metric names."""
    from nas.config.objectives import METRICS
    from nas.errors import did_you_mean
    from nas.pareto import parse_where, select

    names = sorted({k for r in rows for k in r if "/" not in k and not k.startswith("_")} - set(_REPORTED_ONLY))
    flag = "--where"
    try:
        conds = parse_where(where) if where else []
    except ValueError as e:
        raise ConfigError(flag, "", str(e), "write conditions such as \"mflops<=5, val_accuracy>=0.9\"") from None
    asked = [(flag, m) for m, _, _ in conds] + ([("--best", best)] if best else [])
    for flag, metric in asked:
        if metric in _REPORTED_ONLY:
            raise ConfigError(flag, "", f"{metric} is reported, never used to choose a model (choosing by it "
                              "would tune on the test split)", "choose by val_accuracy or a cost")
        if metric not in names:
            raise ConfigError(flag, "", f"no metric {metric!r} in the Pareto set of {run_id}"
                              f"{did_you_mean(metric, names)}", f"use one of: {', '.join(names)}")
    direction = METRICS[best].natural_direction if best in METRICS else "maximize"
    return [dict(r) for r in select(rows, where=where, best=best, direction=direction)]


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
    from nas.tracking.models import pareto_set

    run_id = _search_id(args)
    rows = [e.row() for e in pareto_set(run_id, args.tracking_uri)]
    if not rows:
        print(f"search {run_id} has no Pareto set (no trial completed, or it is still running)", file=sys.stderr)
        return 1
    if args.where:
        rows = _query(rows, args.where, None, run_id)
        if not rows:
            print(f"no Pareto model of {run_id} meets {args.where!r}; `nas pareto {run_id[:8]}` lists them all",
                  file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps(rows))
    else:
        shown = [{k: r[k] for k in ("rank", "trial", *PARETO_COLUMNS) if k in r} for r in rows]  # fits 80 columns
        console.print(_table(shown, f"Pareto set of {run_id[:8]} (test_accuracy: held out, never used to choose)"))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from nas.tracking.models import export_model, pareto_set

    run_id = _search_id(args)
    out = Path(args.output)
    if not out.parent.expanduser().resolve().is_dir():
        raise ConfigError("-o/--output", "", f"the folder {str(out.parent)!r} does not exist",
                          "create it first, or write to an existing folder")
    if out.is_dir():
        raise ConfigError("-o/--output", "", f"{str(out)!r} is a folder", "give a file name, e.g. model.pt")
    _query([{**e.row(), **e.metrics} for e in pareto_set(run_id, args.tracking_uri)], args.where, args.best, run_id)
    entry, result = export_model(run_id, out, where=args.where, best=args.best, tracking_uri=args.tracking_uri,
                                 fmt=args.format, trust_code=args.trust_code)
    print(f"wrote {args.output} ({args.format}): trial {entry.trial} (rank {entry.rank}), "
          + ", ".join(f"{k}={v:.4g}" for k, v in entry.row().items() if k not in ("rank", "trial")))
    searched = entry.metrics.get("latency_ms")
    print(f"loaded back in {result.runtime}: outputs within {result.max_abs_diff:.2g} of PyTorch's; latency "
          f"{result.latency_ms:.4g} ms per sample there"
          + (f" (the search measured {searched:.4g} ms in PyTorch)" if searched is not None else ""))
    print("it takes raw inputs (the data's preprocessing is inside)" if result.raw_inputs else
          f"load it with nas.load_model({str(out)!r}); it takes preprocessed inputs (model.nas_arch['preprocessing'])")
    return 0


def cmd_compress(args: argparse.Namespace) -> int:
    from nas.search.compress_front import PLANS, compress_search

    methods = list(PLANS) if args.method == "all" else [args.method]
    args.run_id = _search_id(args)
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

    args.run_id = _search_id(args)
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
    from nas.bench import load_table
    from nas.bench.overrides import with_bench_overrides
    from nas.bench.reference import with_accuracy_reference
    from nas.bench.session import bench_experiment
    from nas.config.experiment import load_experiment

    exp = with_bench_overrides(load_experiment(args.experiment), table=args.table,
                               accuracy_column=args.accuracy_column, low_fidelity_column=args.low_fidelity_column,
                               cost_column=args.cost_column)
    exp = exp.with_overrides(trials=args.trials, seed=args.first_seed)
    table = load_table(exp)
    exp = with_accuracy_reference(exp, table.values("val_accuracy"), args.reference_quantile)
    if args.max_compute is not None and args.max_compute <= 0:
        raise ConfigError("--max-compute", "", f"must be > 0, got {args.max_compute}", "pass e.g. --max-compute 100")
    result = bench_experiment(exp, seeds=args.seeds, table=table, max_compute=args.max_compute)
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
    s.add_argument("--storage-path", help="where trials write checkpoints, reachable from every Ray node "
                   "(a shared directory, s3://..., gs://...; default: nas_runs/ beside a sqlite store)")
    s.add_argument("--quiet", action="store_true", help="no live progress display")
    s.add_argument("--resume", metavar="RUN_ID", help="continue the search RUN_ID (or a unique prefix) after its "
                   "driver stopped, with its original --trials/--seed unless given again")
    s.add_argument("--dry-run", action="store_true", help="forecast the compute, energy and CO2; train nothing")
    s.set_defaults(fn=cmd_search)

    for name, fn, helptext in (("pareto", cmd_pareto, "print the Pareto set of a search"),
                               ("export", cmd_export, "write one Pareto model to a file")):
        c = sub.add_parser(name, help=helptext)
        c.add_argument("run_id", help="the search's run id (printed by `nas search`; a unique prefix is enough)")
        c.add_argument("--tracking-uri", default=None, help="default: MLFLOW_TRACKING_URI or sqlite:///mlflow.db")
        c.add_argument("--where", help='conditions, e.g. "mflops<=5, val_accuracy>=0.9"')
        if name == "pareto":
            c.add_argument("--json", action="store_true")
        else:
            c.add_argument("--best", default="val_accuracy", help="metric to pick the best by (default val_accuracy)")
            c.add_argument("-o", "--output", required=True, help="output file (.pt, .ts, .onnx)")
            c.add_argument("--format", choices=["pt", "torchscript", "onnx"], default="pt",
                           help="pt: for nas.load_model; torchscript: torch.jit.load; onnx: onnxruntime (default pt)")
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
    bench.add_argument("--low-fidelity-column", help="override the low-fidelity accuracy column (e.g. 12 epochs)")
    bench.add_argument("--cost-column", help="override the column of the first cost objective")
    bench.add_argument("--reference-quantile", type=float,
                       help="accuracy reference = this quantile of the table's accuracies (default 0.146 where "
                            "the experiment sets no accuracy reference)")
    bench.add_argument("--seeds", type=int, default=1, help="seeds search.seed, search.seed+1, ... (default 1)")
    bench.add_argument("--first-seed", type=int, help="override search.seed (the first seed)")
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
