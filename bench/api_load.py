"""Benchmark: the API under a realistic cohort — triage queue, 30-day chart, 200 live streams.

Run on demand, not in the tests:

    .venv/bin/python -m bench.api_load [--patients 1000] [--days 90] [--requests 300] [--keep]

Seeding (into a fresh database next to HOMECARE_DATABASE_URL's, dropped at the end unless
``--keep``): the patient simulator's cohort (``devices.sim``; 1,000 patients × 90 days ending
now), stored through the real ingest code (parse + write_batch), patients spread over ten care
teams of 100; the real rules worker evaluates every patient and the real alerts worker turns the
findings into alerts, then one housekeeping pass auto-resolves what may resolve itself; the
aggregate views are refreshed (plain PostgreSQL) — the same data the dashboard would face.

Measured, against ``homecare api`` running as its own process on a loopback port (so the
client's time is not the server's GIL):

1. the triage queue of one nurse (team of 100 patients): ``GET /alerts?status=open&
   status=acknowledged&limit=100``, sequential requests, p50/p95/max — target p95 ≤ 50 ms —
   beside the bare SQL of the same page (``api.queries.alerts.queue`` on one connection);
2. a 30-day bucketed chart of one patient (a different patient each request): ``GET
   /patients/{id}/readings?type=systolic_bp&type=diastolic_bp&type=heart_rate&bucket=hour&
   since=now-30d&limit=1000`` — target p95 ≤ 100 ms — beside its bare SQL;
3. the nurse dashboard's worklist of the same nurse (one row per patient with an unresolved
   alert, with vitals, sparkline and adherence): ``GET /dashboard/queue`` (the live update's
   fragment; the page costs the same) — target p95 ≤ 150 ms — beside its bare SQL
   (``api.dashboard.worklist.entries``), and a patient page (``GET /dashboard/patients/{id}``,
   7 days, a different patient each request);
4. 200 concurrent SSE clients held on ``/alerts/stream``: all open, then one acknowledgement
   through the API, and the time until every client has the change (p50/p95/max); the queue's
   p95 is measured again while the 200 streams are held.

Every request is also audited (one audit row per patient read): that cost is in the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx2
import psycopg

from homecare import store
from homecare.alerts import AlertsConfig, AlertsWorker
from homecare.api import accounts
from homecare.api.dashboard import worklist
from homecare.api.dashboard.i18n import zone
from homecare.api.queries import alerts as alert_queries
from homecare.api.queries import readings as reading_queries
from homecare.devices.sim import SimConfig, Simulation
from homecare.ingest import Delivery, ParseLimits, parse_message, write_batch
from homecare.rules import RulesConfig, RulesWorker, load_packs
from homecare.rules.packs import DEFAULT_PACKS
from homecare.settings import load_settings

TEAMS = 10
P = "/api/v1"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--days", type=float, default=90)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the database (printed)")
    parser.add_argument("--database", help="reuse a database seeded by an earlier --keep run")
    args = parser.parse_args()

    settings = load_settings()
    admin_url = urlunsplit(urlsplit(settings.database_url)._replace(path="/postgres"))
    name = args.database or f"hc_bench_api_{uuid.uuid4().hex[:8]}"
    url = urlunsplit(urlsplit(settings.database_url)._replace(path=f"/{name}"))
    if args.database is None:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
    try:
        if args.database is None:
            seed(url, args.patients, args.days, args.seed)
        run(url, args.requests, args.streams)
    finally:
        if args.keep or args.database:
            print(f"database kept: {name}")
        else:
            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    return 0


def seed(url: str, patients: int, days: float, seed_: int) -> None:
    started = time.monotonic()
    simulation = Simulation(
        SimConfig(patients=patients, days=days, seed=seed_, end=datetime.now(UTC))
    )
    with store.connect(url, autocommit=True) as conn:
        store.migrate(conn)
        enrolment = simulation.enrolment()
        ids: dict[str, uuid.UUID] = {}
        with conn.transaction():
            for team in range(TEAMS):
                accounts.create_care_team(conn, f"team-{team:02d}", f"Team {team}", "UTC")
            for index, patient in enumerate(enrolment.patients):
                ids[patient.key] = store.create_patient(
                    conn,
                    display_name=patient.key,
                    programs=patient.programs,
                    birth_date=patient.birth_date,
                    hypercapnic=patient.hypercapnic,
                    care_team=f"team-{index % TEAMS:02d}",
                )
            for device_id, model in enrolment.devices:
                store.register_device(conn, device_id, model=model)
            for assignment in enrolment.assignments:
                store.assign_device(
                    conn, assignment.device_id, ids[assignment.patient_key], assignment.since
                )
        stored, batch, limits = 0, [], ParseLimits(max_age=timedelta(days=days + 30))
        for message in simulation.messages():
            received = datetime.fromtimestamp(message.sent_ms / 1000, UTC)
            topic = f"homecare/v1/devices/{message.device_id}/readings"
            batch.append(parse_message(Delivery(topic, message.payload, received), limits))
            if len(batch) >= 1000:
                stored += len(write_batch(conn, batch).stored)
                batch = []
        if batch:
            stored += len(write_batch(conn, batch).stored)
        loaded = time.monotonic()
        print(f"seeded     {patients} patients, {stored:,} readings in {loaded - started:.0f} s")
        rules = RulesWorker(RulesConfig(database_url=url, packs_dir=DEFAULT_PACKS))
        while rules.run_once():
            pass
        rules.close()
        alerts = AlertsWorker(AlertsConfig(database_url=url, packs_dir=DEFAULT_PACKS))
        while alerts.run_once():
            pass
        alerts.housekeeping()
        alerts.close()
        store.refresh_aggregates(conn)
        counts = conn.execute(
            "SELECT count(*) FILTER (WHERE status <> 'resolved'), count(*) FROM alerts"
        ).fetchone()
        assert counts is not None
        print(
            f"rules      {counts[1]:,} alerts ({counts[0]:,} unresolved) in"
            f" {time.monotonic() - loaded:.0f} s"
        )


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(ordered):6.1f} ms  p95 {p95:6.1f} ms  max {ordered[-1]:6.1f} ms"


def timed(action: Callable[[int], Any], n: int) -> list[float]:
    samples = []
    for i in range(n):
        started = time.perf_counter()
        action(i)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def run(url: str, requests: int, streams: int) -> None:
    with store.connect(url, autocommit=True) as conn:
        nurse = accounts.create_user(
            conn,
            username=f"bench-{uuid.uuid4().hex[:6]}",
            display_name="Bench",
            role="nurse",
            password=None,
            locale="en",
            time_zone="UTC",
        )
        accounts.add_member(conn, "team-00", nurse, "bench")
        now = datetime.now(UTC)
        token = accounts.issue_token(conn, nurse, "api", timedelta(hours=2), now).token
        team_patients = [
            r[0]
            for r in conn.execute("SELECT id FROM patients WHERE care_team = 'team-00' ORDER BY id")
        ]
        unresolved = conn.execute(
            "SELECT count(*) FROM alerts a JOIN patients p ON p.id = a.patient_id"
            " WHERE p.care_team = 'team-00' AND a.status <> 'resolved'"
        ).fetchone()
        print(
            f"team-00    {len(team_patients)} patients, {unresolved[0] if unresolved else 0}"
            " unresolved alerts in the queue"
        )
        statuses = ["acknowledged", "open"]
        since = now - timedelta(days=30)
        types = ["diastolic_bp", "heart_rate", "systolic_bp"]
        sql_queue = timed(
            lambda i: alert_queries.queue(
                conn,
                ["team-00"],
                statuses=statuses,
                severities=None,
                patient_id=None,
                since=None,
                after=None,
                limit=101,
            ),
            requests,
        )
        sql_chart = timed(
            lambda i: reading_queries.bucketed(
                conn,
                team_patients[i % len(team_patients)],
                "hour",
                types=types,
                since=since,
                until=None,
                after=None,
                limit=1001,
            ),
            requests,
        )
        pack_set = load_packs(DEFAULT_PACKS)
        sql_worklist = timed(
            lambda i: worklist.entries(
                conn, ["team-00"], now=datetime.now(UTC), time_zone=zone("UTC"), pack_set=pack_set
            ),
            requests,
        )
        port = _free_port()
        env = os.environ | {
            "HOMECARE_DATABASE_URL": url,
            "HOMECARE_API_PORT": str(port),
            "HOMECARE_LOG_LEVEL": "WARNING",
        }
        server = subprocess.Popen(
            [sys.executable, "-m", "homecare", "api"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_up(base)
            headers = {"Authorization": f"Bearer {token}"}
            with httpx2.Client(base_url=base, headers=headers, timeout=30) as client:
                queue_params = {"status": statuses, "limit": 100}
                client.get(f"{P}/alerts", params=queue_params).raise_for_status()  # warm up
                api_queue = timed(
                    lambda i: client.get(f"{P}/alerts", params=queue_params).raise_for_status(),
                    requests,
                )
                chart_params = {
                    "type": types,
                    "bucket": "hour",
                    "since": since.isoformat(),
                    "limit": 1000,
                }
                api_chart = timed(
                    lambda i: client.get(
                        f"{P}/patients/{team_patients[i % len(team_patients)]}/readings",
                        params=chart_params,
                    ).raise_for_status(),
                    requests,
                )
                rows = len(
                    client.get(
                        f"{P}/patients/{team_patients[0]}/readings", params=chart_params
                    ).json()["data"]
                )
                queue_rows = len(client.get(f"{P}/alerts", params=queue_params).json()["data"])
                print(f"queue      API  {percentiles(api_queue)}   ({queue_rows} alerts a page)")
                print(f"           SQL  {percentiles(sql_queue)}   (same page, bare query)")
                print(f"chart      API  {percentiles(api_chart)}   ({rows} hourly rows, 3 types)")
                print(f"           SQL  {percentiles(sql_chart)}")
                cookies = {"homecare_session": token}
                with httpx2.Client(base_url=base, cookies=cookies, timeout=30) as page_client:
                    page_client.get("/dashboard/queue").raise_for_status()  # warm up
                    api_worklist = timed(
                        lambda i: page_client.get("/dashboard/queue").raise_for_status(), requests
                    )
                    api_patient = timed(
                        lambda i: page_client.get(
                            f"/dashboard/patients/{team_patients[i % len(team_patients)]}"
                        ).raise_for_status(),
                        requests,
                    )
                    shown = page_client.get("/dashboard/queue").text.count('class="patient ')
                print(f"worklist   page {percentiles(api_worklist)}   ({shown} patients)")
                print(f"           SQL  {percentiles(sql_worklist)}")
                print(f"patient    page {percentiles(api_patient)}")
                target = next(
                    (
                        a["id"]
                        for a in client.get(f"{P}/alerts", params={"status": "open"}).json()["data"]
                    ),
                    None,
                )
                held = asyncio.run(
                    _streams(base, token, streams, client, target, queue_params, requests)
                )
                print(held)
        finally:
            server.terminate()
            server.wait(timeout=30)


async def _streams(
    base: str,
    token: str,
    n: int,
    client: httpx2.Client,
    alert_id: int | None,
    queue_params: dict[str, Any],
    requests: int,
) -> str:
    headers = {"Authorization": f"Bearer {token}"}
    opened = 0
    arrivals: list[float] = []
    ready = asyncio.Event()
    changed = asyncio.Event()
    limits = httpx2.Limits(max_connections=n + 10)

    async def listen(http: httpx2.AsyncClient) -> None:
        nonlocal opened
        async with http.stream("GET", f"{P}/alerts/stream", headers=headers) as answer:
            async for line in answer.aiter_lines():
                if line.startswith("retry:"):
                    opened += 1
                    if opened == n:
                        ready.set()
                elif line.startswith("data: ") and changed.is_set():
                    arrivals.append(time.perf_counter())
                    return

    async with httpx2.AsyncClient(base_url=base, timeout=60, limits=limits) as http:
        tasks = [asyncio.create_task(listen(http)) for _ in range(n)]
        try:
            await asyncio.wait_for(ready.wait(), 60)
        except TimeoutError:
            return f"streams    only {opened} of {n} opened within 60 s"
        held_queue = await asyncio.to_thread(
            timed,
            lambda i: client.get(f"{P}/alerts", params=queue_params).raise_for_status(),
            requests // 3,
        )
        if alert_id is None:
            for task in tasks:
                task.cancel()
            return f"streams    {n} held; no open alert to acknowledge"
        changed.set()
        sent = time.perf_counter()
        await asyncio.to_thread(lambda: client.post(f"{P}/alerts/{alert_id}/ack"))
        _, pending = await asyncio.wait(tasks, timeout=30)
        for task in pending:
            task.cancel()
    delays = [(t - sent) * 1000 for t in arrivals]
    return (
        f"streams    {n} held; queue while held: {percentiles(held_queue)}\n"
        f"           one acknowledgement reached {len(delays)} of {n} clients:"
        f" {percentiles(delays) if delays else 'none'}"
    )


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_up(base: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx2.get(f"{base}/openapi.json", timeout=1)
            return
        except httpx2.HTTPError:
            time.sleep(0.2)
    raise SystemExit("homecare api did not start within 60 s")


if __name__ == "__main__":
    sys.exit(main())
