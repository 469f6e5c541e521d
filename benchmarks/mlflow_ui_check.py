"""MLflow UI check in a real browser: a search's parent run and its child runs, as the MLflow UI shows them.

FINDING (MLflow 3.17.2, checked in Chromium with screenshots of the same experiment with and without the tag,
identical but for "N minutes ago"): the experiment tag ``mlflow.experimentKind=custom_model_development`` that
nas.tracking.tracker.SearchTracker sets changes NOTHING in the UI. Which pages the UI shows follows its global sidebar switch
"GenAI | Model training" (URL ``?workflowType=genai|machine_learning``, else localStorage ``mlflow.workflowType``,
default GenAI); the bundled JS reads the tag only when a feature flag is off, and that flag is hard-coded on. With
or without the tag, ``#/experiments/<id>`` opens the GenAI "Overview" (traces, tokens, cost: all empty), and
``#/experiments/<id>/runs`` shows the "Training runs" table (the parent with a "+" expander, its trials folded
under it). Link to ``#/experiments/<id>/runs?workflowType=machine_learning``: that table with the sidebar on
"Model training".

    python benchmarks/mlflow_ui_check.py                          # runs a tiny 4-trial search in a temp dir first
    python benchmarks/mlflow_ui_check.py --tracking-uri sqlite:///mlflow.db --run-id <parent run id>
    python benchmarks/mlflow_ui_check.py --screenshot /tmp/ui.png   # also writes /tmp/ui_default.png

Starts ``mlflow ui`` on a free 127.0.0.1 port (no telemetry, no job runner), drives Debian's headless Chromium over
the Chrome DevTools Protocol (``--remote-debugging-pipe``: JSON on fds 3/4; standard library only, no driver, no
debugging port), opens the runs table, checks that the parent run is listed, clicks its "+" expander and checks
that every child run (``trial-NNNN``) appears, scrolling the table if its rows do not all fit; children still
missing (other runs first in a big experiment) are looked up on the runs page filtered by
``tags.mlflow.parentRunId``. Then opens the experiment's default page and reports where it lands. Screenshots:
``--screenshot`` (the expanded table), ``<stem>_default.png`` and, when used, ``<stem>_filtered.png``. Chromium
resolves no host name and every request it makes is checked to go to 127.0.0.1. The search, the server and the
browser are always stopped, within bounded time. Exit status 0 when the parent and all children were found.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import json
import logging
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TINY_SPACE = ROOT / "tests" / "fixtures" / "tiny_cnn.yaml"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--disable-breakpad", "--mute-audio",
    "--no-default-browser-check", "--password-store=basic", "--use-mock-keychain",
    # No host name resolves except the loopback address the server listens on.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]
WIDTH, HEIGHT = 1600, 1000


# ---- the MLflow server ------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the process group ``proc`` leads (it was started with start_new_session), then SIGKILL."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError):  # workers left behind by the leader, if any
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


@contextlib.contextmanager
def mlflow_server(uri: str, log_path: Path, timeout: float = 90.0) -> Iterator[str]:
    """``mlflow ui`` on a free loopback port; yields its base URL once ``/health`` answers; always stops it."""
    port = free_port()
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
           "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    # No telemetry; no background job runner (7 huey consumers that a read-only UI check never uses).
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
           "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"mlflow ui exited with {proc.returncode}; log:\n{_tail(log_path)}")
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"mlflow ui did not answer on {base} within {timeout:.0f} s; log:\n{_tail(log_path)}")
            time.sleep(0.25)
        yield base
    finally:
        _stop(proc)


def _tail(path: Path, n: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


# ---- headless Chromium over the DevTools protocol (pipe transport) ----------------------------------------------

class CDPError(RuntimeError):
    pass


class Chromium:
    """Headless Chromium driven over ``--remote-debugging-pipe``: requests go to its fd 3, replies come on fd 4,
    each a JSON object terminated by a NUL byte. One page, attached with a flat session."""

    def __init__(self, user_data_dir: Path, log_path: Path, executable: str | None = None,
                 width: int = WIDTH, height: int = HEIGHT) -> None:
        exe = executable or shutil.which("chromium") or "/usr/bin/chromium"
        to_browser_r, self._w = os.pipe()
        self._r, from_browser_w = os.pipe()
        # Park the child's ends at 10 or above (close-on-exec) so that moving them onto 3 and 4 cannot clobber one
        # another; dup2 clears close-on-exec on 3 and 4 only. close_fds=False because closing would take 3 and 4
        # too; every other descriptor Python opens is close-on-exec anyway (PEP 446).
        child_r = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD_CLOEXEC, 10)
        child_w = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(to_browser_r)
        os.close(from_browser_w)

        def to_3_and_4() -> None:  # runs in the child between fork and exec
            os.dup2(child_r, 3)
            os.dup2(child_w, 4)

        cmd = [exe, *CHROMIUM_FLAGS, "--remote-debugging-pipe", f"--user-data-dir={user_data_dir}",
               f"--window-size={width},{height}", "about:blank"]
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         close_fds=False, preexec_fn=to_3_and_4, start_new_session=True)
        os.close(child_r)
        os.close(child_w)
        self._buf = b""
        self._id = 0
        self.session: str | None = None
        self.requests: list[str] = []  # every URL the page asked for
        self.width, self.height = width, height

    # -- transport --

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from Chromium")
            ready, _, _ = select.select([self._r], [], [], left)
            if ready:
                chunk = os.read(self._r, 1 << 20)
                if not chunk:
                    raise CDPError(f"Chromium closed the pipe (exit status {self.proc.poll()})")
                self._buf += chunk
        raw, _, self._buf = self._buf.partition(b"\0")
        return json.loads(raw)

    def send(self, method: str, params: dict[str, Any] | None = None, *, timeout: float = 30.0,
             browser: bool = False) -> dict[str, Any]:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if self.session and not browser:
            msg["sessionId"] = self.session
        data = json.dumps(msg).encode() + b"\0"
        while data:
            data = data[os.write(self._w, data):]
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise CDPError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if reply.get("method") == "Network.requestWillBeSent":
                self.requests.append(reply["params"]["request"]["url"])

    # -- page --

    def open_page(self) -> None:
        target = self.send("Target.createTarget", {"url": "about:blank"}, browser=True)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 browser=True)["sessionId"]
        self.send("Page.enable")
        self.send("Network.enable")
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False})

    def goto(self, url: str) -> None:
        self.send("Page.navigate", {"url": "about:blank"})  # a full load each time: no state from the last page
        self.send("Page.navigate", {"url": url})

    def js(self, expression: str, timeout: float = 30.0) -> Any:
        r = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True},
                      timeout=timeout)
        if "exceptionDetails" in r:
            raise CDPError(f"JS error: {r['exceptionDetails'].get('text')} in {expression[:200]}")
        return r["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30.0, poll: float = 0.25) -> Any:
        """Polls ``expression`` until truthy; returns its value, or the last (falsy) one after ``timeout``."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            with contextlib.suppress(CDPError):  # the page may be between documents
                value = self.js(expression)
                if value:
                    return value
            time.sleep(poll)
        return value

    def wait_stable(self, timeout: float = 15.0, quiet: float = 1.5) -> bool:
        """Waits until the page's text has not changed for ``quiet`` seconds (data loaded, skeletons gone)."""
        deadline = time.monotonic() + timeout
        last, since = None, time.monotonic()
        while time.monotonic() < deadline:
            with contextlib.suppress(CDPError):
                text = self.js("document.body ? document.body.innerText : ''")
                if text != last:
                    last, since = text, time.monotonic()
                elif time.monotonic() - since >= quiet:
                    return True
            time.sleep(0.2)
        return False

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.send("Browser.close", browser=True, timeout=5)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError):  # renderer/zygote helpers share the group
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        for fd in (self._r, self._w):
            with contextlib.suppress(OSError):
                os.close(fd)


@contextlib.contextmanager
def chromium(workdir: Path, executable: str | None = None) -> Iterator[Chromium]:
    browser = Chromium(workdir / "chromium-profile", workdir / "chromium.log", executable)
    try:
        browser.open_page()
        yield browser
    finally:
        browser.close()


# ---- what the page shows ----------------------------------------------------------------------------------------

def _text_has(names: list[str]) -> str:
    """JS: the subset of ``names`` present in the page's text, as a list."""
    return f"(() => {{ const t = document.body ? document.body.innerText : ''; " \
           f"return {json.dumps(names)}.filter(n => t.includes(n)); }})()"


CLOSE_ASSISTANT = """(() => {
  const b = document.querySelector('button[data-component-id="mlflow.assistant.chat_panel.close"]');
  if (b) { b.click(); return true; } return false; })()"""


def _expand_js(parent_id: str) -> str:
    """JS: click the "+" expander in the parent's row of the runs table; returns what happened."""
    return f"""(() => {{
  const a = document.querySelector('a[href$="/runs/{parent_id}"]');
  if (!a) return 'no-parent-link';
  const row = a.closest('[role="row"]');
  if (!row) return 'no-row';
  const b = row.querySelector('button[data-component-id*="runnamecellrenderer"]');
  if (!b) return 'no-expander';
  b.click(); return 'clicked'; }})()"""


# Scrolls the table's (virtualised) rows one screen down, clicking "Load more" at the end; [before, after] or null.
SCROLL_TABLE = """(() => {
  const v = document.querySelector('.ag-body-viewport');
  if (!v) return null;
  const before = v.scrollTop;
  v.scrollTop = before + Math.max(v.clientHeight - 60, 60);
  if (v.scrollTop === before) {
    const more = Array.from(document.querySelectorAll('button')).find(b => /^\\s*Load more\\s*$/i.test(b.innerText));
    if (more) { more.click(); return [before, -1]; }
  }
  return [before, v.scrollTop]; })()"""
TABLE_TO_TOP = "(() => { const v = document.querySelector('.ag-body-viewport'); if (v) v.scrollTop = 0; })()"


def expand_and_collect(browser: Chromium, parent_id: str, children: list[str], timeout: float) -> tuple[str, list[str]]:
    """Unfolds the parent's row and reads the child run names the table shows, scrolling through its rows when
    they do not all fit (ag-grid renders only the visible ones). Returns (what the expander did, names found)."""
    seen = set(browser.js(_text_has(children)))
    expander = "already-expanded" if seen else browser.js(_expand_js(parent_id))
    if expander != "clicked" and not seen:
        return expander, []
    want = len(children)
    seen |= set(browser.wait_for(f"(() => {{ const f = {_text_has(children)}; "
                                 f"return f.length === {want} ? f : null; }})()", min(timeout, 15.0)) or [])
    seen |= set(browser.js(_text_has(children)))
    deadline = time.monotonic() + timeout
    while len(seen) < want and time.monotonic() < deadline:
        moved = browser.js(SCROLL_TABLE)
        if not moved or moved[0] == moved[1]:
            break
        browser.wait_stable(5.0, quiet=0.4)
        seen |= set(browser.js(_text_has(children)))
    browser.js(TABLE_TO_TOP)
    return expander, sorted(seen)


@dataclass
class UICheck:
    base_url: str
    experiment_id: str
    parent_id: str
    parent_name: str
    children: list[str]
    parent_found: bool = False
    expander: str = ""
    children_in_table: list[str] = field(default_factory=list)
    children_by_filter: list[str] = field(default_factory=list)
    default_view: str = ""
    screenshots: list[Path] = field(default_factory=list)
    foreign_requests: list[str] = field(default_factory=list)
    running_child: str = ""  # a child run opened in the UI while its trial was still RUNNING ("" when not tried)
    running_shown: str = ""  # what its run page said about its status and epochs
    model_name: str = ""  # the registered model whose page was opened
    model_versions_shown: list[str] = field(default_factory=list)

    @property
    def children_found(self) -> list[str]:
        return sorted(set(self.children_in_table) | set(self.children_by_filter))

    @property
    def ok(self) -> bool:
        return self.parent_found and set(self.children_found) == set(self.children) and not self.foreign_requests


def runs_url(base: str, exp_id: str, search_filter: str | None = None) -> str:
    q = {"workflowType": "machine_learning"}
    if search_filter:
        q["searchFilter"] = search_filter
    return f"{base}/#/experiments/{exp_id}/runs?{urllib.parse.urlencode(q, quote_via=urllib.parse.quote)}"


def check_page(browser: Chromium, check: UICheck, screenshot: Path, timeout: float = 30.0,
               default_page: bool = True) -> UICheck:
    base, exp = check.base_url, check.experiment_id

    # 1. The runs table: the parent is listed; its "+" expander unfolds the trials.
    browser.goto(runs_url(base, exp))
    check.parent_found = bool(browser.wait_for(_text_has([check.parent_name]), timeout))
    browser.js(CLOSE_ASSISTANT)
    if check.parent_found:
        check.expander, check.children_in_table = expand_and_collect(browser, check.parent_id, check.children, timeout)
    browser.wait_stable(timeout / 2)
    check.screenshots.append(browser.screenshot(screenshot))

    # 2. Children not reached there (other runs first in a big experiment): the runs page filtered by the parent,
    # where only its children match (the UI still folds them under the parent).
    missing = sorted(set(check.children) - set(check.children_in_table))
    if missing and check.children:
        browser.goto(runs_url(base, exp, f"tags.mlflow.parentRunId = '{check.parent_id}'"))
        browser.wait_for(_text_has([check.parent_name]), timeout)
        _, found = expand_and_collect(browser, check.parent_id, missing, timeout)
        check.children_by_filter = found
        browser.wait_stable(timeout / 2)
        check.screenshots.append(browser.screenshot(screenshot.with_name(f"{screenshot.stem}_filtered{screenshot.suffix}")))

    # 3. The registered model's page: its versions (one per Pareto model).
    if check.model_name:
        browser.goto(f"{base}/#/models/{urllib.parse.quote(check.model_name)}")
        browser.wait_for(_text_has(["Version 1"]), timeout)
        browser.wait_stable(timeout / 2)
        text = browser.js("document.body.innerText") or ""
        check.model_versions_shown = sorted(set(re.findall(r"Version \d+", text)))
        check.screenshots.append(browser.screenshot(screenshot.with_name(f"{screenshot.stem}_model{screenshot.suffix}")))

    # 4. The page the experiment opens on by default (no workflowType: whatever the UI picks by itself).
    if default_page:
        browser.goto(f"{base}/#/experiments/{exp}")
        browser.wait_for("(document.querySelector('h2') || {}).innerText", timeout)  # after its redirect
        browser.js(CLOSE_ASSISTANT)
        browser.wait_stable(timeout / 2, quiet=2.0)
        heading = browser.js("(document.querySelector('h2') || {}).innerText || ''")
        check.default_view = f"{browser.js('location.hash')} (heading {heading!r})"
        check.screenshots.append(browser.screenshot(screenshot.with_name(f"{screenshot.stem}_default{screenshot.suffix}")))

    local = ("http://127.0.0.1:", "data:", "blob:", "about:", "chrome:", "devtools:")
    check.foreign_requests = sorted({u for u in browser.requests if not u.startswith(local)})
    return check


# ---- the tiny search --------------------------------------------------------------------------------------------

def init_store(uri: str) -> None:
    """Creates the store's schema, so that the search and the server (which migrates a store it opens) never race."""
    from mlflow import MlflowClient

    db_log = logging.getLogger("mlflow.store.db.utils")  # "Creating initial MLflow database tables..."
    level = db_log.level
    db_log.setLevel(logging.WARNING)
    try:
        MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    finally:
        db_log.setLevel(level)


@contextlib.contextmanager
def tiny_search(workdir: Path, uri: str, trials: int = 4) -> Iterator[subprocess.Popen]:
    """A ``trials``-trial search on the tiny CNN space in a subprocess (its own local Ray; output in ``search.log``).
    It imports its modules at once, then waits for a line on its stdin to start (see :func:`start_search`), so
    that the caller can prepare the store meanwhile. Yields the process; always stops it."""
    exp = workdir / "exp.yaml"
    exp.write_text(textwrap.dedent(f"""\
        name: ui-check
        space: {TINY_SPACE}
        training: {{epochs: 12, lr: 0.01}}
        search: {{sampler: random, trials: {trials}, concurrency: 2, seed: 0}}
        tracking: {{uri: "{uri}", experiment: ui-check}}
        """))
    code = ("import sys; from nas.config.experiment import load_experiment; from nas.search.api import run_search; "
            "sys.stdin.readline(); "
            "r = run_search(load_experiment(sys.argv[1]), storage_path=sys.argv[2]); print('run_id:', r.run_id)")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # its own local Ray, never a shared one
    env.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true", RAY_USAGE_STATS_ENABLED="0")
    with open(workdir / "search.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-c", code, str(exp), str(workdir / "ray")], cwd=workdir, env=env,
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.PIPE, start_new_session=True)
    try:
        yield proc
    finally:
        with contextlib.suppress(OSError):
            proc.stdin.close()
        _stop(proc)


def start_search(proc: subprocess.Popen) -> None:
    """Lets the search from :func:`tiny_search` go."""
    with contextlib.suppress(BrokenPipeError):  # it died already: search_run_id reports why
        proc.stdin.write(b"go\n")
        proc.stdin.close()


def search_run_id(proc: subprocess.Popen, log_path: Path, timeout: float = 240.0) -> str:
    """Waits (bounded) for the search started by :func:`tiny_search`; returns its parent run id."""
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"the tiny search took over {timeout:.0f} s; log:\n{_tail(log_path)}") from None
    run_ids = [line.split()[-1] for line in _tail(log_path, 1 << 20).splitlines() if line.startswith("run_id:")]
    if proc.returncode != 0 or not run_ids:
        raise RuntimeError(f"the tiny search failed (exit status {proc.returncode}); log:\n{_tail(log_path)}")
    return run_ids[-1]


# ---- the check --------------------------------------------------------------------------------------------------

def catch_running_child(browser: Chromium, base: str, uri: str, proc: subprocess.Popen, screenshot: Path,
                        timeout: float = 120.0) -> tuple[str, str, Path | None]:
    """While the search runs: the first child run whose status is RUNNING, opened on its run page (name, what the
    page shows, screenshot). Child runs exist from their trial's start, with per-epoch metrics as they arrive."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        exps = [e.experiment_id for e in client.search_experiments()]
        running = client.search_runs(exps, "tags.`nas.kind` = 'trial' and attributes.status = 'RUNNING'",
                                     max_results=1) if exps else []
        if running:
            run = running[0]
            browser.goto(f"{base}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}")
            browser.wait_for(_text_has([run.info.run_name]), 30)
            browser.wait_stable(10, quiet=1.0)
            text = browser.js("document.body.innerText") or ""
            shown = ", ".join(w for w in ("Running", "Finished", "arch/", "epoch/") if w in text)
            path = browser.screenshot(screenshot.with_name(f"{screenshot.stem}_running{screenshot.suffix}"))
            return run.info.run_name, shown, path
        time.sleep(0.5)
    return "", "no running child run seen", None


def expected_runs(uri: str, run_id: str) -> tuple[str, str, list[str]]:
    """(experiment id, parent run name, child run names) from the store itself."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    parent = client.get_run(run_id)
    children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{run_id}'",
                                  max_results=10_000)
    return parent.info.experiment_id, parent.info.run_name, sorted(r.info.run_name for r in children)


def run_check(tracking_uri: str | None = None, run_id: str | None = None, screenshot: str | Path = "mlflow_ui.png",
              workdir: str | Path | None = None, chromium_path: str | None = None, timeout: float = 30.0,
              default_page: bool = True, search_timeout: float = 240.0) -> UICheck:
    """The whole check; with no ``tracking_uri``/``run_id`` it runs the tiny search first. Logs go to ``workdir``
    (a temp dir, removed afterwards, when not given). ``default_page=False`` skips the experiment's default page."""
    screenshot = Path(screenshot).resolve()
    if (tracking_uri is None) != (run_id is None):
        raise ValueError("pass both --tracking-uri and --run-id, or neither")
    t0 = time.perf_counter()
    with contextlib.ExitStack() as stack:  # unwinds in reverse: browser, server, search, temp dir
        work = Path(workdir) if workdir else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mlflow-ui-")))
        work.mkdir(parents=True, exist_ok=True)
        search = None
        if tracking_uri is None:  # the search, the server and the browser start together
            tracking_uri = f"sqlite:///{work / 'mlflow.db'}"
            search = stack.enter_context(tiny_search(work, tracking_uri))  # importing torch, Ray, ... meanwhile
            init_store(tracking_uri)
            start_search(search)
        base = stack.enter_context(mlflow_server(tracking_uri, work / "mlflow-ui.log"))
        print(f"mlflow ui at {base} after {time.perf_counter() - t0:.1f} s")
        browser = stack.enter_context(chromium(work, chromium_path))
        running = ("", "", None)
        if search is not None:
            browser.goto(f"{base}/#/experiments")  # loads (and caches) the UI's scripts while the search runs
            running = catch_running_child(browser, base, tracking_uri, search, screenshot)
            run_id = search_run_id(search, work / "search.log", search_timeout)
            print(f"tiny search: run {run_id} after {time.perf_counter() - t0:.1f} s")
        assert run_id is not None
        exp_id, parent_name, children = expected_runs(tracking_uri, run_id)
        check = UICheck(base, exp_id, run_id, parent_name, children)
        check.running_child, check.running_shown = running[0], running[1]
        if running[2] is not None:
            check.screenshots.append(running[2])
        check.model_name = registered_model(tracking_uri, run_id)
        check_page(browser, check, screenshot, timeout, default_page)
        print(f"browser checks done after {time.perf_counter() - t0:.1f} s")
        return check


def registered_model(uri: str, run_id: str) -> str:
    """The registered model holding the search's Pareto models ("" when none was registered)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    for rm in client.search_registered_models():
        if any(v.tags.get("nas.search_run_id") == run_id for v in client.search_model_versions(f"name = '{rm.name}'")):
            return rm.name
    return ""


def report(check: UICheck) -> str:
    lines = [
        f"parent run {check.parent_name} ({check.parent_id}) {'found' if check.parent_found else 'NOT FOUND'}"
        f" in the runs table of experiment {check.experiment_id}",
        f"expander: {check.expander or '-'}; {len(check.children_in_table)}/{len(check.children)} child runs in the "
        f"expanded table" + (f", {len(check.children_by_filter)} more on the filtered runs page"
                             if check.children_by_filter else ""),
        f"{len(check.children_found)}/{len(check.children)} child runs found"
        + (f"; missing: {sorted(set(check.children) - set(check.children_found))}"
           if set(check.children_found) != set(check.children) else ""),
        f"running child run: {check.running_child or '-'} ({check.running_shown or 'not tried'})",
        f"registered model {check.model_name or '-'}: {', '.join(check.model_versions_shown) or 'no version shown'}",
        f"default experiment page: {check.default_view or 'not checked'}",
        f"requests to anything but 127.0.0.1: {check.foreign_requests or 'none'}",
        "screenshots: " + ", ".join(str(p) for p in check.screenshots),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tracking-uri", help="an existing store (with --run-id); default: run a tiny search first")
    p.add_argument("--run-id", help="the search's parent run id (printed by `nas search`)")
    p.add_argument("--screenshot", default="mlflow_ui.png", help="PNG of the expanded runs table (default %(default)s)")
    p.add_argument("--workdir", help="keep the search, server and browser logs here (default: a temp dir)")
    p.add_argument("--chromium", help="browser executable (default: chromium on PATH)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for each page (default %(default)s)")
    p.add_argument("--no-default-page", action="store_true",
                   help="skip the experiment's default page (which view MLflow opens it in)")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    check = run_check(args.tracking_uri, args.run_id, args.screenshot, args.workdir, args.chromium, args.timeout,
                      default_page=not args.no_default_page)
    print(report(check))
    print(f"{'OK' if check.ok else 'FAILED'} in {time.perf_counter() - t0:.1f} s")
    return 0 if check.ok else 1


if __name__ == "__main__":
    sys.exit(main())
