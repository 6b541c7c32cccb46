#!/usr/bin/env python
"""Tandem beside Label Studio: one client, one pairwise workload, both servers on loopback (opt-in, not in CI).

`.venv/bin/python bench/compare_labelstudio.py [--quick]` (or `bench/run.py compare_labelstudio`; `make bench`
leaves it out). Label Studio 1.23.2 is installed on first use into its own virtualenv (`--ls-venv`, default
var/bench/labelstudio-venv) and started as `label-studio start` in its default setup (Django's server on
SQLite), telemetry off. Tandem is started as `make run` starts it: the Procfile's gunicorn (2 workers × 4
threads) and its Celery worker with beat, on a fresh embedded SQLite database and on a fresh PostgreSQL one
(`--tandem-db`), each migrated first. Every server gets a data directory of its own under `--compare-dir`.

The same client (asyncio + aiohttp) drives each server through its public API with the same synthetic tasks
(bench/datagen.py: a prompt and two responses of 300–800 characters):

1. import `--tasks` tasks in one request, timed until the tool's API counts them all (and `--big-import`
   more into a second project), while every server process's RSS is sampled every 100 ms;
2. one annotator, next + submit for `--phase-seconds`: client-side latency percentiles, labels/s, and the
   server processes' CPU time (and PostgreSQL's backends') per cycle;
3. eight annotators (distinct accounts) flat out: labels/s, errors, and how many tasks were handed out to
   two annotators at once although each task wants one label;
4. the full export of the labels, timed until downloaded.

Wall-clock figures depend on what else the machine runs: the load average is recorded beside each phase.
Results: bench/results/compare_labelstudio.json (through bench/run.py) and compare_labelstudio.md.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/compare_labelstudio.py` puts bench/, not the project, on the path
    sys.path.insert(0, str(ROOT))

from bench import load_annotators as procs  # noqa: E402  the Procfile's processes, /proc
from bench.annotate_flow import summarize  # noqa: E402
from bench.datagen import _Text, pairwise_row  # noqa: E402

LS_VERSION = "1.23.2"
RESPONSE_CHARS = (300, 800)
RSS_EVERY_S = 0.1
ANNOTATORS = 8
SEED = 17
TARGETS = ("labelstudio", "tandem-sqlite", "tandem-postgres")
TITLES = {"labelstudio": "Label Studio", "tandem-sqlite": "Tandem SQLite", "tandem-postgres": "Tandem PostgreSQL"}
# Label Studio's own pairwise tag (annotation_templates/ranking-and-scoring/pairwise-classification).
LS_LABEL_CONFIG = """<View>
  <Text name="prompt" value="$prompt"/>
  <Pairwise name="preference" toName="response_a,response_b"/>
  <Text name="response_a" value="$response_a"/>
  <Text name="response_b" value="$response_b"/>
</View>"""
LS_ENV = {
    "COLLECT_ANALYTICS": "false",  # core/settings/base.py: the usage analytics sent from the server and page
    "LATEST_VERSION_CHECK": "false",  # the call home for the newest version
    "SENTRY_DSN": "",  # core/settings/label_studio.py sets Sentry DSNs unless these are given (empty: off)
    "FRONTEND_SENTRY_DSN": "",
    "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",  # `Authorization: Token <key>`, as Tandem's clients use
    "LOG_LEVEL": "WARNING",
}
# Run inside Label Studio's virtualenv: its accounts, the way `label-studio init --username --password
# --user-token --enable-legacy-api-token` creates one (label_studio/server.py, _create_user), all in one start.
LS_ACCOUNTS = """
import json, sys
from label_studio.server import _apply_database_migrations, _setup_env
_setup_env()
_apply_database_migrations()
from organizations.models import Organization
from rest_framework.authtoken.models import Token
from users.models import User
accounts = json.loads(sys.argv[1])
org = None
for n, (email, password, token) in enumerate(accounts):
    user = User.objects.create_user(email=email, password=password)
    user.is_staff = user.is_superuser = n == 0
    user.save()
    Token.objects.filter(user=user).update(key=token)
    if org is None:
        org = Organization.create_organization(created_by=user, title="Label Studio", legacy_api_tokens_enabled=True)
    else:
        org.add_user(user)
    user.active_organization = org
    user.save(update_fields=["active_organization"])
print("accounts:", len(accounts))
"""
TANDEM_ACCOUNTS = """
import json
from django.contrib.auth import get_user_model
from annotate.models.tokens import api_token_create
User = get_user_model()
admin = User.objects.create_user(username="bench-admin", is_staff=True, is_superuser=True)
people = [User.objects.create_user(username=f"bench-annotator-{{i}}") for i in range({n})]
tokens = [api_token_create(user=u, name="bench compare", days=1).key for u in [admin, *people]]
print("TOKENS " + json.dumps(tokens))
"""


def add_arguments(group) -> None:
    group.add_argument(
        "--tasks", type=int, default=None, help="tasks imported and annotated (default 10,000; quick 1,000)"
    )
    group.add_argument(
        "--big-import", type=int, default=None, help="then an import of this many (default 50,000; quick 0)"
    )
    group.add_argument(
        "--phase-seconds", type=float, default=None, help="seconds of each annotator phase (30; quick 5)"
    )
    group.add_argument("--ls-venv", type=Path, default=ROOT / "var/bench/labelstudio-venv", help="Label Studio's venv")
    group.add_argument("--no-labelstudio", action="store_true", help="measure Tandem only")
    group.add_argument("--tandem-db", default="sqlite,postgres", help="Tandem's databases: sqlite, postgres or both")
    group.add_argument(
        "--tandem-database-url",
        default="postgres://postgres@127.0.0.1:5432/tandem_bench_compare",
        help="Tandem's PostgreSQL database: DROPPED and created anew (not bench/run.py's own)",
    )
    group.add_argument(
        "--tandem-broker-url", default=None, help="Tandem's Celery broker (default: the embedded one, as `make run`)"
    )
    group.add_argument("--compare-dir", type=Path, default=ROOT / "var/bench/compare", help="servers' data and logs")
    group.add_argument("--compare-port", type=int, default=18100, help="first of the three ports the servers use")


# --- the workload: the same rows for both tools ---------------------------------------------------------


def _response(text: _Text) -> str:
    low, high = RESPONSE_CHARS
    body = text.prose(text.int(low, high - 100))
    return body if len(body) <= high else body[: body.rfind(" ", 0, high)]


def workload_rows(count: int, seed: int = SEED) -> list[dict]:
    """bench/datagen.py's pairwise rows with a text prompt (Label Studio's Text tag shows one) and 300–800
    character responses."""
    text = _Text(random.Random(seed))
    rows = []
    for n in range(1, count + 1):
        row = pairwise_row(n, text, chat_fraction=0.0)
        row["response_a"], row["response_b"] = _response(text), _response(text)
        rows.append(row)
    return rows


def task_key(prompt: str, responses: list[str]) -> str:
    """What identifies a task to the client on both tools: Tandem's lease shows neither id nor side order."""
    return hashlib.sha1("\0".join([prompt, *sorted(responses)]).encode()).hexdigest()


def duplicates_handed_out(handed: list[tuple[int, str]]) -> int:
    """Tasks that `next` gave to more than one annotator, from (annotator, task) pairs."""
    takers: dict[str, set[int]] = {}
    for who, key in handed:
        takers.setdefault(key, set()).add(who)
    return sum(1 for people in takers.values() if len(people) > 1)


# --- the servers ----------------------------------------------------------------------------------------


class Server:
    """Processes of one tool by role (web, worker), a token per account, and what CPU PostgreSQL adds."""

    def __init__(self, name: str, port: int, processes: dict[str, subprocess.Popen], tokens: list[str], pg=None):
        self.name, self.port, self.processes, self.tokens, self.pg = name, port, processes, tokens, pg
        self.base = f"http://127.0.0.1:{port}"

    def pids(self) -> dict[str, list[int]]:
        found = {role: procs._family(p.pid) for role, p in self.processes.items()}
        if self.pg is not None:
            found["postgres"] = _pg_backends(self.pg)
        return found

    def cpu_s(self) -> dict[str, dict[int, float]]:
        """CPU seconds by role and process so far."""
        return {role: procs._cpu_s(pids) for role, pids in self.pids().items()}

    def stop(self) -> None:
        procs._stop(*self.processes.values())


def _pg_backends(url: str) -> list[int]:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (name,)).fetchall()
    return [pid for (pid,) in rows]


def _wait_ready(url: str, process: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                if answer.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} not answering after {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def _run(argv: list[str], env: dict, log: Path, cwd: Path = ROOT) -> str:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    with log.open("a") as out:
        out.write(f"$ {' '.join(argv[:4])} ...\n{done.stdout}{done.stderr}")
    if done.returncode:
        raise RuntimeError(f"{argv[:4]} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


def labelstudio_install(venv: Path) -> Path:
    """Label Studio's command in its own virtualenv, installed there first when it is not yet (pinned)."""
    command = venv / "bin" / "label-studio"
    python = venv / "bin" / "python"
    if command.exists():
        have = subprocess.run([python, "-m", "pip", "show", "label-studio"], capture_output=True, text=True).stdout
        if f"Version: {LS_VERSION}" in have:
            return command
    print(f"compare_labelstudio: installing label-studio=={LS_VERSION} into {venv} (a few minutes)", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([python, "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    subprocess.run([python, "-m", "pip", "install", "-q", f"label-studio=={LS_VERSION}"], check=True)
    return command


def _fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def labelstudio_start(*, venv: Path, work: Path, port: int) -> Server:
    command = labelstudio_install(venv)
    data = _fresh(work / "labelstudio")
    log = data / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE", "DJANGO", "CELERY", "TANDEM"))}
    for name in ("HOST", "PORT", "USERNAME", "PASSWORD", "USER_TOKEN"):  # get_env reads these bare names too
        env.pop(name, None)
    env.update(LS_ENV, LABEL_STUDIO_BASE_DATA_DIR=str(data))
    accounts = [(f"bench-{i}@example.com", secrets.token_urlsafe(12), secrets.token_hex(20)) for i in range(9)]
    _run([str(venv / "bin" / "python"), "-c", LS_ACCOUNTS, json.dumps(accounts)], env, log, cwd=data)
    argv = [str(command), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port)]
    process = procs._start(argv, env, log)
    server = Server("labelstudio", port, {"web": process}, [token for _, _, token in accounts])
    try:
        _wait_ready(f"{server.base}/health/", process, log)
    except BaseException:
        server.stop()
        raise
    return server


def tandem_start(*, db: str, database_url: str, broker_url: str | None, work: Path, port: int) -> Server:
    var_dir = _fresh(work / f"tandem-{db}")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    # The embedded broker (as `make run` without CELERY_BROKER_URL), on a queue of its own.
    env.update(
        DEBUG="0", TANDEM_VAR_DIR=str(var_dir), CELERY_TASK_DEFAULT_QUEUE=f"bench-compare-{uuid.uuid4().hex[:8]}"
    )
    # One scripted annotator asks far faster than a person (200+ requests/s) and would meet the per-user
    # throttle (6000/min); Label Studio has none. The throttles still count every request (their cost is
    # measured), only at rates no phase reaches.
    env.update(TANDEM_THROTTLE_USER="1000000/min", TANDEM_THROTTLE_TOKEN="1000000/min")
    if broker_url:
        env["CELERY_BROKER_URL"] = broker_url
    if db == "postgres":
        _database_recreate(database_url)
        env["DATABASE_URL"] = database_url
    log = var_dir / "setup.log"
    manage = [sys.executable, "manage.py"]
    _run([*manage, "migrate", "--noinput", "-v0"], env, log)
    out = _run([*manage, "shell", "-c", TANDEM_ACCOUNTS.format(n=ANNOTATORS)], env, log)
    tokens = json.loads(out.split("TOKENS ", 1)[1])
    worker_log, web_log = var_dir / "worker.log", var_dir / "web.log"
    worker = procs._start(procs.procfile_command("worker", {"WORKER_CONCURRENCY": "4"}), env, worker_log)
    try:
        web, _, _ = procs._gunicorn(workers=2, keep_alive=75, env=env, log=web_log, port=port)
    except BaseException:
        procs._stop(worker)
        raise
    server = Server(f"tandem-{db}", port, {"web": web, "worker": worker}, tokens,
                    pg=database_url if db == "postgres" else None)  # fmt: skip
    try:
        procs._wait_log("ready.", worker, worker_log)
    except BaseException:
        server.stop()
        raise
    return server


def _database_recreate(url: str) -> None:
    import psycopg
    from psycopg import sql

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


# --- the two APIs, behind one interface ---------------------------------------------------------------------


class Failed(Exception):
    """An answer the workload did not expect: counted as an error by its kind."""

    def __init__(self, kind: str, detail: str = ""):
        super().__init__(f"{kind}: {detail[:300]}")
        self.kind = kind


async def _call(session, method: str, url: str, kind: str, expect=(200, 201), **kwargs) -> bytes:
    import aiohttp

    try:
        async with session.request(method, url, **kwargs) as answer:
            body = await answer.read()
            status = answer.status
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise Failed(f"{kind} {type(exc).__name__}", str(exc)) from None
    if status not in expect:
        raise Failed(f"{kind} {status}", body.decode("utf-8", "replace"))
    return body


def _session(server: Server, token: str):
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=None, sock_read=1800)
    return aiohttp.ClientSession(server.base, headers={"Authorization": f"Token {token}"}, timeout=timeout)


class LabelStudio:
    """Projects, `/api/projects/<id>/import`, `/next/`, `/api/tasks/<id>/annotations/`, `/export`."""

    def __init__(self):
        self.project = None

    async def create(self, admin, title: str) -> None:
        body = {"title": title, "label_config": LS_LABEL_CONFIG, "maximum_annotations": 1}
        self.project = json.loads(await _call(admin, "POST", "/api/projects/", "create", json=body))["id"]

    @staticmethod
    def payload(rows: list[dict]) -> bytes:
        """The request body: Label Studio's task list, JSON."""
        tasks = [{"data": {k: row[k] for k in ("id", "prompt", "response_a", "response_b")}} for row in rows]
        return json.dumps(tasks, ensure_ascii=False).encode()

    async def import_rows(self, admin, payload: bytes) -> None:
        headers = {"Content-Type": "application/json"}
        await _call(admin, "POST", f"/api/projects/{self.project}/import", "import", data=payload, headers=headers)

    async def visible(self, admin) -> int:
        return json.loads(await _call(admin, "GET", f"/api/projects/{self.project}/", "count"))["task_number"]

    async def open(self, admin) -> None:
        pass  # a project is open to every member of the organisation

    async def next(self, session) -> tuple[str, object] | None:
        try:
            task = json.loads(await _call(session, "GET", f"/api/projects/{self.project}/next/", "next"))
        except Failed as exc:
            if exc.kind == "next 404":  # "There are no tasks for <user>"
                return None
            raise
        data = task["data"]
        return task_key(data["prompt"], [data["response_a"], data["response_b"]]), task["id"]

    async def submit(self, session, handle, rng: random.Random) -> None:
        value = {"selected": rng.choice(["left", "right"])}
        result = [{"from_name": "preference", "to_name": "preference", "type": "pairwise", "value": value}]
        body = {"result": result, "lead_time": 1.0, "project": self.project}
        await _call(session, "POST", f"/api/tasks/{handle}/annotations/", "submit", json=body)

    async def export(self, admin) -> tuple[int, int, int]:
        """(labels, tasks labelled twice, bytes) of the JSON export: the labelled tasks with their annotations."""
        body = await _call(admin, "GET", f"/api/projects/{self.project}/export?exportType=JSON", "export")
        tasks = json.loads(body)
        twice = sum(1 for task in tasks if len(task["annotations"]) > 1)
        return sum(len(task["annotations"]) for task in tasks), twice, len(body)


class Tandem:
    """`/api/v1/campaigns/`, `items/import/` (a JSONL file), `next/`, `assignments/<id>/submit/`, exports."""

    def __init__(self):
        self.ref = None

    async def create(self, admin, title: str) -> None:
        body = {"name": title, "kind": "pairwise", "preset": "simple-pairwise", "overlap": 1}
        self.ref = json.loads(await _call(admin, "POST", "/api/v1/campaigns/", "create", json=body))["slug"]

    @staticmethod
    def payload(rows: list[dict]) -> bytes:
        """The uploaded file: JSONL, a row a line."""
        return b"".join(json.dumps(row, ensure_ascii=False).encode() + b"\n" for row in rows)

    async def import_rows(self, admin, payload: bytes) -> None:
        import aiohttp

        form = aiohttp.FormData()
        form.add_field("file", payload, filename="tasks.jsonl", content_type="application/x-ndjson")
        url = f"/api/v1/campaigns/{self.ref}/items/import/"
        answer = json.loads(await _call(admin, "POST", url, "import", expect=(200, 201, 202), data=form))
        if "job" in answer:  # imported by the worker: wait for its job
            while True:
                job = json.loads(await _call(admin, "GET", f"/api/v1/jobs/{answer['job']['id']}/", "import job"))
                if job["state"] in ("failed", "cancelled"):
                    raise Failed("import job", json.dumps(job))
                if job["state"] in ("done", "succeeded", "finished"):
                    return
                await asyncio.sleep(0.1)

    async def visible(self, admin) -> int:
        url = f"/api/v1/campaigns/{self.ref}/items/?limit=1"
        return json.loads(await _call(admin, "GET", url, "count"))["count"]

    async def open(self, admin) -> None:
        await _call(admin, "POST", f"/api/v1/campaigns/{self.ref}/state/", "open", json={"state": "open"})

    async def next(self, session) -> tuple[str, object] | None:
        answer = json.loads(await _call(session, "POST", f"/api/v1/campaigns/{self.ref}/next/", "next", json={}))
        if answer["status"] in ("done", "wait"):  # wait: every item left is leased to someone else
            return None
        if answer["status"] != "leased":
            raise Failed(f"next {answer['status']}", answer.get("message", ""))
        lease = answer["assignment"]
        return task_key(lease["prompt"], lease["responses"]), lease["assignment"]

    async def submit(self, session, handle, rng: random.Random) -> None:
        body = {"label": {"overall": rng.choice([-1, 1])}, "active_seconds": 1.0}
        await _call(session, "POST", f"/api/v1/assignments/{handle}/submit/", "submit", json=body)

    async def export(self, admin) -> tuple[int, int, int]:
        """(labels, items labelled twice, bytes) of the raw labels as JSONL: one row a label."""
        options = {"format": "raw", "file_type": "jsonl", "source": "human"}
        export = json.loads(
            await _call(admin, "POST", f"/api/v1/campaigns/{self.ref}/exports/", "export", expect=(202,), json=options)
        )
        while not export["complete"]:
            if export["state"] in ("failed", "cancelled"):
                raise Failed("export job", json.dumps(export))
            await asyncio.sleep(0.1)
            export = json.loads(await _call(admin, "GET", f"/api/v1/exports/{export['id']}/", "export poll"))
        size, per_item = 0, Counter()
        for file in export["files"]:
            body = await _call(admin, "GET", f"/api/v1/exports/{export['id']}/files/{file['name']}", "download")
            size += len(body)
            if file["name"].endswith(".jsonl"):
                per_item.update(json.loads(line)["id"] for line in body.splitlines())
        return per_item.total(), sum(1 for n in per_item.values() if n > 1), size


# --- the phases ----------------------------------------------------------------------------------------------


def _pss_mb(pid: int) -> float:
    """Proportional set size: a page shared by n processes (gunicorn's forks) counts 1/n in each."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class RssSampler:
    """Every server process's RSS every 100 ms in a thread: the peak of the sum, and of each role's; and the
    peak of the PSS sum (RSS counts the pages forked processes share once in each)."""

    def __init__(self, server: Server):
        self.server, self.peak, self.peak_by_role, self.peak_pss = server, 0.0, Counter(), 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        roles = {role: p for role, p in self.server.processes.items()}
        while not self._stop.is_set():
            by_role = {
                role: sum(procs._memory_mb(pid).get("VmRSS", 0) for pid in procs._family(p.pid))
                for role, p in roles.items()
            }
            self.peak = max(self.peak, sum(by_role.values()))
            pss = sum(_pss_mb(pid) for p in roles.values() for pid in procs._family(p.pid))
            self.peak_pss = max(self.peak_pss, pss)
            for role, mb in by_role.items():
                self.peak_by_role[role] = max(self.peak_by_role[role], mb)
            self._stop.wait(RSS_EVERY_S)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def _cpu_delta(before: dict, after: dict) -> dict[str, float]:
    """CPU seconds each role used between two `Server.cpu_s`, process by process: a process started meanwhile
    counts whole, one that ended meanwhile (a PostgreSQL backend closed) is lost — an undercount, never a
    negative."""
    return {
        role: round(sum(max(0.0, t - before.get(role, {}).get(pid, 0.0)) for pid, t in now.items()), 3)
        for role, now in after.items()
    }


async def _import(server: Server, api, rows: list[dict], title: str) -> dict:
    async with _session(server, server.tokens[0]) as admin:
        await api.create(admin, title)
        payload = api.payload(rows)  # encoded before the clock starts: the client's work is not the server's
        began = time.perf_counter()
        await api.import_rows(admin, payload)
        answered = time.perf_counter() - began
        while (seen := await api.visible(admin)) < len(rows):
            if time.perf_counter() - began > 3600:
                raise Failed("import", f"{seen} of {len(rows)} visible after an hour")
            await asyncio.sleep(0.05)
        seconds = time.perf_counter() - began
        await api.open(admin)
    return {"tasks": len(rows), "bytes": len(payload), "answered_s": round(answered, 3), "seconds": round(seconds, 3),
            "tasks_per_s": round(len(rows) / seconds, 1)}  # fmt: skip


def import_phase(server: Server, api, rows: list[dict], title: str) -> dict:
    load, cpu0 = procs._loadavg(), server.cpu_s()
    with RssSampler(server) as rss:
        result = asyncio.run(_import(server, api, rows, title))
    cpu = _cpu_delta(cpu0, server.cpu_s())
    return {
        **result,
        "server_cpu_s": cpu,
        "peak_rss_mb": round(rss.peak, 1),
        "peak_rss_mb_by_role": {role: round(mb, 1) for role, mb in rss.peak_by_role.items()},
        "peak_pss_mb": round(rss.peak_pss, 1),
        "loadavg_start": load,
        "loadavg_end": procs._loadavg(),
    }


def _error(out: dict, exc: Failed) -> None:
    out["errors"][exc.kind] += 1
    if len(out["error_examples"]) < 5:
        out["error_examples"].append(str(exc))


async def _annotator(server, api, who: int, stop_at: float, out: dict) -> None:
    rng = random.Random(SEED * 100 + who)
    async with _session(server, server.tokens[1 + who]) as session:
        while time.monotonic() < stop_at:
            began = time.perf_counter()
            try:
                got = await api.next(session)
            except Failed as exc:
                _error(out, exc)
                await asyncio.sleep(0.1)
                continue
            out["next_ms"].append((time.perf_counter() - began) * 1000)
            if got is None:
                out["exhausted"] = True
                return
            key, handle = got
            out["handed"].append((who, key))
            began = time.perf_counter()
            try:
                await api.submit(session, handle, rng)
            except Failed as exc:
                _error(out, exc)
                continue
            out["submit_ms"].append((time.perf_counter() - began) * 1000)
            out["labels"] += 1


async def _annotators(server, api, count: int, seconds: float) -> dict:
    out = {
        "next_ms": [],
        "submit_ms": [],
        "handed": [],
        "errors": Counter(),
        "error_examples": [],
        "labels": 0,
        "exhausted": False,
    }
    began = time.monotonic()
    await asyncio.gather(*(_annotator(server, api, who, began + seconds, out) for who in range(count)))
    out["wall_s"] = time.monotonic() - began
    return out


def annotators_phase(server: Server, api, count: int, seconds: float) -> dict:
    load, cpu0 = procs._loadavg(), server.cpu_s()
    out = asyncio.run(_annotators(server, api, count, seconds))
    cpu = _cpu_delta(cpu0, server.cpu_s())
    labels = out["labels"]
    return {
        "annotators": count,
        "seconds": round(out["wall_s"], 2),
        "labels": labels,
        "labels_per_s": round(labels / out["wall_s"], 2),
        "next_ms": summarize(out["next_ms"]),
        "submit_ms": summarize(out["submit_ms"]),
        "requests": len(out["next_ms"]) + len(out["submit_ms"]) + sum(out["errors"].values()),
        "errors": sum(out["errors"].values()),
        "errors_by_kind": dict(out["errors"]),
        "error_examples": out["error_examples"],
        "handed_out": len(out["handed"]),
        "duplicates_handed_out": duplicates_handed_out(out["handed"]),
        "tasks_exhausted": out["exhausted"],
        "server_cpu_s": cpu,
        "server_cpu_ms_per_cycle": round(sum(cpu.values()) * 1000 / labels, 2) if labels else None,
        "loadavg_start": load,
        "loadavg_end": procs._loadavg(),
    }


async def _export(server: Server, api) -> dict:
    async with _session(server, server.tokens[0]) as admin:
        began = time.perf_counter()
        labels, twice, size = await api.export(admin)
        seconds = round(time.perf_counter() - began, 3)
        return {"labels": labels, "tasks_labelled_twice": twice, "bytes": size, "seconds": seconds}


def export_phase(server: Server, api) -> dict:
    load = procs._loadavg()
    return {**asyncio.run(_export(server, api)), "loadavg_start": load, "loadavg_end": procs._loadavg()}


def measure(server: Server, api_class, rows: list[dict], big: list[dict], seconds: float) -> dict:
    api = api_class()
    found = {"import": import_phase(server, api, rows, f"compare {len(rows)}")}
    found["one_annotator"] = annotators_phase(server, api, 1, seconds)
    found["eight_annotators"] = annotators_phase(server, api, ANNOTATORS, seconds)
    found["export"] = export_phase(server, api)
    if big:
        found["big_import"] = import_phase(server, api_class(), big, f"compare {len(big)}")
    return found


# --- the table ----------------------------------------------------------------------------------------------


def _n(value, digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def _memory(phase: dict | None) -> str:
    if not phase or phase.get("peak_rss_mb") is None:
        return "–"
    roles = ", ".join(f"{role} {_n(mb)}" for role, mb in phase.get("peak_rss_mb_by_role", {}).items())
    pss = f"; PSS {_n(phase['peak_pss_mb'])}" if phase.get("peak_pss_mb") else ""
    return f"{_n(phase['peak_rss_mb'])} ({roles}){pss}"


def _cells(result: dict) -> dict[str, str]:
    """One target's figures as the table's cells, by row."""
    imp, one, eight, export = (result.get(k, {}) for k in ("import", "one_annotator", "eight_annotators", "export"))
    big = result.get("big_import")
    cells = {
        "import": f"{_n(imp.get('tasks_per_s'))} tasks/s ({_n(imp.get('seconds'), 1)} s)" if imp else "–",
        "big_import": f"{_n(big.get('tasks_per_s'))} tasks/s ({_n(big.get('seconds'), 1)} s)" if big else "–",
        "rss": _memory(imp),
        "big_rss": _memory(big),
    }
    for kind in ("next", "submit"):
        ms = one.get(f"{kind}_ms") or {}
        cells[kind] = f"{_n(ms.get('p50'), 1)} / {_n(ms.get('p95'), 1)} / {_n(ms.get('p99'), 1)} ms" if ms else "–"
    cpu = one.get("server_cpu_s") or {}
    pg = ""
    if cpu.get("postgres") and one.get("labels"):
        pg = f" (PostgreSQL's {_n(cpu['postgres'] * 1000 / one['labels'], 1)} included)"
    cells.update(
        labels_one=_n(one.get("labels_per_s"), 1) + (" (tasks ran out)" if one.get("tasks_exhausted") else ""),
        cpu=f"{_n(one.get('server_cpu_ms_per_cycle'), 1)} ms{pg}" if one else "–",
        labels_eight=_n(eight.get("labels_per_s"), 1) + (" (tasks ran out)" if eight.get("tasks_exhausted") else ""),
        errors_one=f"{_n(one.get('errors'))} of {_n(one.get('requests'))} requests" if one else "–",
        errors=f"{_n(eight.get('errors'))} of {_n(eight.get('requests'))} requests" if eight else "–",
        duplicates=f"{_n(eight.get('duplicates_handed_out'))} of {_n(eight.get('handed_out'))}" if eight else "–",
        export=f"{_n(export.get('labels'))} labels in {_n(export.get('seconds'), 2)} s" if export else "–",
        twice=_n(export.get("tasks_labelled_twice")),
    )
    return cells


def markdown_table(measurements: dict, parameters: dict, machine: dict | None = None) -> str:
    """The comparison as Markdown: a row per workload, a column per target, then the load averages."""
    targets = [t for t in TARGETS if t in measurements]
    cells = {t: _cells(measurements[t]) for t in targets}
    n, big, seconds = parameters["tasks"], parameters.get("big_import"), parameters["phase_seconds"]
    rows = [
        ("import", f"import {n:,} tasks in one request, until visible"),
        *([("big_import", f"import {big:,} tasks")] if big else []),
        ("next", "next p50 / p95 / p99, 1 annotator (client)"),
        ("submit", "submit p50 / p95 / p99, 1 annotator (client)"),
        ("labels_one", "labels/s, 1 annotator"),
        ("errors_one", "errors, 1 annotator"),
        ("cpu", "server CPU per next+submit cycle, 1 annotator"),
        ("labels_eight", f"labels/s, {ANNOTATORS} annotators flat out"),
        ("errors", f"errors, {ANNOTATORS} annotators"),
        ("duplicates", f"tasks handed out to two annotators (overlap 1), {ANNOTATORS} annotators"),
        ("export", "full export, until downloaded"),
        ("twice", "tasks labelled twice (in the export; overlap 1)"),
        ("rss", f"server peak RSS during the {n:,} import (all processes, MiB)"),
        *([("big_rss", f"server peak RSS during the {big:,} import (MiB)")] if big else []),
    ]
    lines = [
        f"# Tandem beside Label Studio {parameters.get('labelstudio_version', LS_VERSION)}",
        "",
        f"{n:,} pairwise tasks (prompt and two responses of {RESPONSE_CHARS[0]}–{RESPONSE_CHARS[1]} characters), "
        f"annotator phases of {seconds:g} s, one client driving every server over loopback "
        "(`bench/compare_labelstudio.py`).",
        "",
        "| workload | " + " | ".join(TITLES[t] for t in targets) + " |",
        "|---" * (len(targets) + 1) + "|",
    ]
    lines += [f"| {title} | " + " | ".join(cells[t][key] for t in targets) + " |" for key, title in rows]
    phases = [("import", "import"), ("one_annotator", "1 annotator"), ("eight_annotators", f"{ANNOTATORS} annotators"),
              ("export", "export"), ("big_import", f"import {big:,}" if big else "")]  # fmt: skip
    lines += ["", "Load average (1 min) at the start → end of each phase (2 cores: above 2, the phases queued):", ""]
    lines += ["| phase | " + " | ".join(TITLES[t] for t in targets) + " |", "|---" * (len(targets) + 1) + "|"]
    for key, title in phases:
        if any(key in measurements[t] for t in targets):
            load = [measurements[t].get(key) for t in targets]
            lines.append(
                f"| {title} | "
                + " | ".join(f"{p['loadavg_start'][0]:.2f} → {p['loadavg_end'][0]:.2f}" if p else "–" for p in load)
                + " |"
            )
    if machine:
        git = machine.get("git") or {}
        lines += [
            "",
            f"Machine: {machine.get('cpu_model')}, {machine.get('cpu_usable')} of {machine.get('cpu_count')} CPUs, "
            f"{machine.get('memory_total')}, {machine.get('python')}; Tandem at {str(git.get('commit'))[:10]}"
            f"{' (modified)' if git.get('dirty') else ''}.",
        ]
    return "\n".join(lines) + "\n"


# --- bench/run.py's entry point ------------------------------------------------------------------------------


def run(args) -> dict:
    quick = args.quick
    tasks = args.tasks or (1000 if quick else 10_000)
    big_n = args.big_import if args.big_import is not None else (0 if quick else 50_000)
    seconds = args.phase_seconds or (5.0 if quick else 30.0)
    dbs = [d.strip() for d in args.tandem_db.split(",") if d.strip()]
    if unknown := set(dbs) - {"sqlite", "postgres"}:
        raise ValueError(f"--tandem-db: {sorted(unknown)}; sqlite, postgres or both")
    if (
        "postgres" in dbs
        and args.tandem_database_url.rsplit("/", 1)[1] == os.environ.get("DATABASE_URL", "").rsplit("/", 1)[-1]
    ):
        raise ValueError("--tandem-database-url is dropped and created anew: give one other than DATABASE_URL")
    rows = workload_rows(tasks)
    big = workload_rows(big_n, seed=SEED + 1) if big_n else []
    keys = {task_key(r["prompt"], [r["response_a"], r["response_b"]]) for r in rows}
    work = args.compare_dir
    work.mkdir(parents=True, exist_ok=True)
    plan = ([] if args.no_labelstudio else ["labelstudio"]) + [f"tandem-{db}" for db in dbs]
    measurements: dict[str, dict] = {}
    for offset, target in enumerate(plan):
        port = args.compare_port + offset
        if target == "labelstudio":
            server, api = labelstudio_start(venv=args.ls_venv, work=work, port=port), LabelStudio
        else:
            db = target.split("-", 1)[1]
            server = tandem_start(
                db=db, database_url=args.tandem_database_url, broker_url=args.tandem_broker_url, work=work, port=port
            )
            api = Tandem
        try:
            measurements[target] = measure(server, api, rows, big, seconds)
        finally:
            server.stop()
        print(f"compare_labelstudio: {target}: {json.dumps(measurements[target]['import'])}", file=sys.stderr)
    parameters = {
        "tasks": tasks,
        "big_import": big_n,
        "phase_seconds": seconds,
        "annotators": ANNOTATORS,
        "overlap": 1,
        "distinct_tasks": len(keys),
        "response_chars": list(RESPONSE_CHARS),
        "labelstudio_version": LS_VERSION,
        "labelstudio": "label-studio start (Django's server, SQLite), telemetry off: " + ", ".join(LS_ENV),
        "tandem": "Procfile web (gunicorn 2 workers x 4 threads) + worker (celery --beat)",
        "tandem_broker": args.tandem_broker_url.rsplit("@", 1)[-1] if args.tandem_broker_url else "embedded",
        "tandem_postgres": args.tandem_database_url.rsplit("@", 1)[-1] if "postgres" in dbs else None,
    }
    try:
        from bench.run import machine_info

        machine = machine_info(os.environ["DATABASE_URL"])
    except Exception:  # the table is still worth writing without the machine line
        machine = None
    args.results_dir.mkdir(parents=True, exist_ok=True)
    (args.results_dir / "compare_labelstudio.md").write_text(markdown_table(measurements, parameters, machine))
    summary = "; ".join(
        f"{TITLES[t]}: import {m['import']['tasks_per_s']:,.0f}/s, next p50 {m['one_annotator']['next_ms']['p50']} ms, "
        f"{m['eight_annotators']['labels_per_s']} labels/s ×{ANNOTATORS}"
        for t, m in measurements.items()
    )
    return {"parameters": parameters, "measurements": measurements, "summary": summary}


if __name__ == "__main__":
    from bench.run import main

    sys.exit(main(["compare_labelstudio", *sys.argv[1:]]))
