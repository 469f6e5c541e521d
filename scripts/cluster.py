"""Start a throwaway cluster (PostgreSQL, MLflow server, Ray head + workers) on this machine.

    python scripts/cluster.py check           # what this machine has for it; exit 2 (and how to fix) if not enough
    python scripts/cluster.py up              # start, print the addresses, hold until Ctrl-C, tear down
    python scripts/cluster.py demo            # start, run the demo search on it, check it, tear down
    python scripts/cluster.py demo --trials 8 --epochs 3 --keep /tmp/nasc   # keep the temp dir to look at

As root every Ray node gets its own network namespace and IP (see nas/testing/cluster.py); the driver runs on the
head node. `make cluster-demo` runs `demo`. If this script is killed (even `kill -9`), its reaper
(nas/testing/reaper.py) stops every server it started within seconds. docs/CLUSTER.md shows these commands;
tests/test_cluster_docs.py runs them as shown.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nas.testing import netns  # noqa: E402
from nas.testing.cluster import LocalCluster  # noqa: E402
from nas.testing.scenario import cluster_experiment, inspect_search, run_id_from, search_argv  # noqa: E402
from nas.testing.services import _pg_bin, postgres_missing  # noqa: E402


def _cluster(args: argparse.Namespace, root: str) -> LocalCluster:
    return LocalCluster(root, workers=args.workers, head_cpus=args.head_cpus, worker_cpus=args.worker_cpus,
                        use_netns=False if args.no_netns else None)


def cmd_check(args: argparse.Namespace) -> int:
    """What a throwaway cluster needs, and whether this machine has it (exit 2 when it cannot start one)."""
    for name in ("initdb", "pg_ctl", "postgres"):
        print(f"{name + ':':16}{_pg_bin(name) or 'missing'}")
    for name in ("mlflow", "ray"):
        exe = Path(sys.executable).with_name(name)
        print(f"{name + ':':16}{exe if exe.exists() else shutil.which(name) or 'missing'}")
    why = netns.available()
    print(f"{'nodes:':16}" + ("each in its own network namespace and IP" if why is None
                              else f"all on 127.0.0.1 ({why})"))
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    root = args.keep or tempfile.mkdtemp(prefix="nasc-")
    with _cluster(args, root) as c:
        print(f"temp dir:       {c.root}")
        print(f"ray address:    {c.ray_address}")
        print(f"tracking uri:   {c.tracking_uri}")
        print(f"optuna storage: {c.postgres_url('optuna')}")
        print(f"storage path:   {c.storage_path}")
        for n in c.nodes:
            print(f"node {n.index}: {n.ip} id {n.node_id} ({n.cpus:g} CPU, resource {n.resource})")
        if c.net is not None:
            print(f"run a driver on the head: ip netns exec {c.net.namespaces[0]} nas search EXP.yaml "
                  f"--address {c.ray_address} --tracking-uri {c.tracking_uri} --storage-path {c.storage_path}")
            print(f"(with RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH={c.token_path})")
        print("Ctrl-C tears it down")
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    root = args.keep or tempfile.mkdtemp(prefix="nasc-")
    with _cluster(args, root) as c:
        exp = cluster_experiment(c, Path(root, "experiments"), training={"epochs": args.epochs},
                                 search={"trials": args.trials, "concurrency": args.concurrency})
        print(f"cluster up: ray {c.ray_address} ({len(c.nodes)} nodes), mlflow {c.tracking_uri}, "
              f"optuna on {c.postgres_url('optuna')}")
        cwd = Path(root, "driver")
        cwd.mkdir(exist_ok=True)
        t0 = time.perf_counter()
        out = subprocess.run(search_argv(c, exp), cwd=cwd, env=c.env(), capture_output=True, text=True)
        print(out.stdout[-4000:])
        if out.returncode != 0:
            print(out.stderr[-4000:], file=sys.stderr)
            print(f"the search failed ({out.returncode}); logs in {root}", file=sys.stderr)
            return 1
        report = inspect_search(c, run_id_from(out.stdout))
        print(f"search done in {time.perf_counter() - t0:.0f} s; trials by node: "
              + ", ".join(f"{report.nodes.get(k, '?')} ({k[:8]}): {v}" for k, v in report.by_node().items()))
        print(f"{len(report.trials)} child runs and {len(report.models)} registered models on the server; "
              f"{report.study_trials} trials in the Optuna study on PostgreSQL")
        print(f"nas.load_model in a fresh process: {json.dumps(report.loaded)}")
        on_workers = sum(v for k, v in report.by_node().items() if k != c.nodes[0].node_id)
        ok = (report.status == "FINISHED" and on_workers > 0 and len(report.models) > 0
              and len(report.trials) == args.trials)
        print("OK" if ok else "NOT OK: see above")
        return 0 if ok else 1


def build_parser() -> argparse.ArgumentParser:
    """The command line (docs/CLUSTER.md's commands are checked against it)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("check", help="list what a cluster needs here (PostgreSQL, mlflow, ray, namespaces)").set_defaults(
        fn=cmd_check)
    for name, fn in (("up", cmd_up), ("demo", cmd_demo)):
        s = sub.add_parser(name, help="start the servers and hold them until Ctrl-C" if name == "up"
                           else "start the servers, run the demo search on them, check it, tear down")
        s.add_argument("--workers", type=int, default=2, help="Ray nodes besides the head (default 2)")
        s.add_argument("--head-cpus", type=float, default=0, help="CPUs the head offers to trials (default 0: "
                       "it runs the driver, as Ray advises for heads)")
        s.add_argument("--worker-cpus", type=float, default=1)
        s.add_argument("--no-netns", action="store_true", help="all nodes on 127.0.0.1, even as root")
        s.add_argument("--keep", metavar="DIR", help="use (and keep) DIR instead of a temp dir")
        s.set_defaults(fn=fn)
        if name == "demo":
            s.add_argument("--trials", type=int, default=6)
            s.add_argument("--epochs", type=int, default=3)
            s.add_argument("--concurrency", type=int, default=2)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    checked = cmd_check(args) if args.cmd == "check" else 0
    why = postgres_missing()
    if why:
        print(f"error: {why}", file=sys.stderr)
        return 2
    if args.cmd == "check":
        return checked
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    return int(args.fn(args))


if __name__ == "__main__":
    sys.exit(main())
