"""Console page benchmarks: the server time of the inbox and of a record table over the 1,000,000-record form
(BENCHMARKS.md: ≤ 200 ms at p95), each against a bare baseline measured in the same run.

    python bench/bench_console.py --database sqlite      --records 1000000
    python bench/bench_console.py --database postgresql  --records 1000000
    python bench/bench_console.py --records 20000 --requests 20      # a quick check that it works

Builds (once, then reuses) the records benchmark's form (``bench/bench_records.py``: ``--records`` records, its
indexes), gives its admin ``benchadmin`` a password and some work notifications, then in one process opens the Zida
ASGI app (its lifespan: the database, the stores) and drives it through httpx's ASGI transport: a page's time is
the server's whole work for it — session cookie, access policy, the core's queries, the names shown, rendering —
without sockets, uvicorn or a second process, so the numbers are server time. Each page is asked ``--requests``
times, one at a time, after ``--warmup`` requests.

Baseline, per page: the same core query (same user, same search, same page) rendered by a minimal Jinja template
(a bare table of ids and values), timed in the same loop: what is left between the two is the console's own cost
(session, names, every column's display, the page's template). Reports p50/p95/max milliseconds for both, the
console's p95 against the 200 ms budget, and the ratio of the medians.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import jinja2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from bench_records import SECRET, database_url, prepare  # noqa: E402
from zida.console.records import COUNTED  # noqa: E402
from zida.core.access.members import app_actor  # noqa: E402
from zida.core.apps.queries import find_form_definition  # noqa: E402
from zida.core.forms import search_records  # noqa: E402
from zida.core.messages.actions import send_message  # noqa: E402
from zida.core.messages.models import MessageSpec  # noqa: E402
from zida.core.messages.queries import inbox, unread_count  # noqa: E402
from zida.core.org.actions import update_user  # noqa: E402
from zida.core.org.models import CorpRef  # noqa: E402
from zida.core.records.filters import Condition, Page, RecordQuery, Sort  # noqa: E402
from zida.core.workflow.models import InboxQuery  # noqa: E402
from zida.core.workflow.queries import user_copies, user_submissions, user_tasks  # noqa: E402
from zida.db import open_database  # noqa: E402
from zida.server import create_app  # noqa: E402
from zida.settings import Settings  # noqa: E402

USER, PASSWORD = "benchadmin", "bench-console-pass-01"
FORM = "FORM-BENCH"
BUDGET_MS = 200.0
MESSAGES = 200
_CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')
_BARE = jinja2.Environment(autoescape=True).from_string(
    "<!doctype html><table>{% for r in rows %}<tr><td>{{ r[0] }}</td><td>{{ r[1] }}</td></tr>{% endfor %}</table>"
)


async def _seed(url: str) -> None:
    """benchadmin's password (the core's action) and his work notifications (once)."""
    db = await open_database(url)
    try:
        corp_pk = int(await db.fetchval("SELECT id FROM corp WHERE corp_id = 'benchcorp'"))
        corp = CorpRef(corp_pk, "benchcorp")
        await update_user(db, corp, USER, {"password": PASSWORD}, actor="bench")
        have = len(await inbox(db, corp_pk, USER, limit=MESSAGES))
        for n in range(have, MESSAGES):
            spec = MessageSpec(kind="text", body={"content": f"压测通知 {n}"}, user_ids=(USER,))
            await send_message(db, corp, spec, sender="bench", actor="bench")
    finally:
        await db.close()


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


async def _timed(call: Callable[[], Awaitable[Any]], warmup: int, requests: int) -> list[float]:
    for _ in range(warmup):
        await call()
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    return times


async def run(url: str, warmup: int, requests: int) -> list[tuple[str, list[float], list[float]]]:
    """Every scenario's console and baseline times (ms)."""
    settings = Settings(database_url=url, secret_key=SECRET, rate_limit_qps=0, console_enabled=True)
    app = create_app(settings)
    results = []
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            page = await client.get("/console/signin?corp=benchcorp")
            token = _CSRF.search(page.text)
            assert token, page.text[:500]
            signed = await client.post(
                "/console/signin",
                data={"csrf": token.group(1), "corp": "benchcorp", "username": USER, "password": PASSWORD},
            )
            assert signed.status_code == 303, signed.text[:500]
            zida = app.state.zida
            db = zida.db
            principal = await zida.tokens.authenticate(client.cookies["zida_session"])
            definition = await find_form_definition(db, principal.corp_pk, FORM)
            assert definition is not None
            form = definition.form
            actor = await app_actor(db, principal.corp_pk, form.app_pk, USER)

            def records_baseline(query: RecordQuery) -> Callable[[], Awaitable[str]]:
                query = replace(query, count_limit=COUNTED + 1)  # the console's own count (10000+)

                async def call() -> str:
                    found = await search_records(db, actor, form, query)
                    return _BARE.render(rows=[(r.instance_id, r.data) for r in found.items])

                return call

            async def inbox_baseline() -> str:
                first = InboxQuery(page=Page(1, 20))
                one = InboxQuery(page=Page(1, 1))
                _, tasks = await user_tasks(db, principal, first)
                await user_tasks(db, principal, one, done=True)
                await user_submissions(db, principal, one)
                await user_copies(db, principal, one)
                await unread_count(db, principal.corp_pk, USER)
                return _BARE.render(rows=[(t.instance_id, t.title) for t in tasks])

            async def notifications_baseline() -> str:
                items = await inbox(db, principal.corp_pk, USER, limit=21)
                await unread_count(db, principal.corp_pk, USER)
                return _BARE.render(rows=[(i.inbox_id, i.message.body) for i in items])

            newest = RecordQuery(sort=(Sort("created_at", descending=True),), page=Page(1, 20))
            scenarios: list[tuple[str, str, Callable[[], Awaitable[Any]]]] = [
                ("records table, newest first", f"/console/forms/{FORM}/records", records_baseline(newest)),
                (
                    "records table, title contains",
                    f"/console/forms/{FORM}/records?s.textField_title=title-4242",
                    records_baseline(
                        RecordQuery(Condition("textField_title", "like", "title-4242"), newest.sort, newest.page)
                    ),
                ),
                (
                    "records table, by amount",
                    f"/console/forms/{FORM}/records?sort=numberField_amount&dir=asc",
                    records_baseline(RecordQuery(sort=(Sort("numberField_amount"),), page=Page(1, 20))),
                ),
                (
                    "records table, kind = 差旅",
                    f"/console/forms/{FORM}/records?s.selectField_kind=差旅",
                    records_baseline(
                        RecordQuery(Condition("selectField_kind", "eq", "差旅"), newest.sort, newest.page)
                    ),
                ),
                (
                    "records table, page 50",
                    f"/console/forms/{FORM}/records?page=50",
                    records_baseline(RecordQuery(sort=newest.sort, page=Page(50, 20))),
                ),
                ("inbox, to do", "/console/inbox", inbox_baseline),
                ("inbox, notifications", "/console/inbox?tab=notifications", notifications_baseline),
            ]
            shown = (await client.get(scenarios[0][1])).text
            rows = shown.count("/console/records/FINST-")
            assert rows == 20, f"the records table shows {rows} records, not 20"
            for label, path, baseline in scenarios:

                async def console(path: str = path) -> None:
                    answer = await client.get(path)
                    if answer.status_code != 200:
                        raise RuntimeError(f"{path}: {answer.status_code} {answer.text[:300]}")

                zida_times = await _timed(console, warmup, requests)
                base_times = await _timed(baseline, warmup, requests)
                results.append((label, zida_times, base_times))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()
    url = database_url(args.database, args.records)
    print(f"preparing {args.records:,} records on {args.database} …", flush=True)
    asyncio.run(prepare(url, args.records))
    asyncio.run(_seed(url))
    results = asyncio.run(run(url, args.warmup, args.requests))
    print(f"\n{args.records:,} records, {args.database}, {args.requests} requests each (server time, ms)")
    head = f"{'page':32} {'p50':>7} {'p95':>7} {'max':>7} │ {'base p50':>8} {'base p95':>8} │ {'p95 ≤ 200':>9}  ratio"
    print(head)
    print("─" * len(head))
    failed = False
    for label, zida_times, base_times in results:
        p95 = _percentile(zida_times, 0.95)
        ok = p95 <= BUDGET_MS
        failed |= not ok
        ratio = statistics.median(zida_times) / max(statistics.median(base_times), 1e-6)
        print(
            f"{label:32} {statistics.median(zida_times):7.1f} {p95:7.1f} {max(zida_times):7.1f} │"
            f" {statistics.median(base_times):8.1f} {_percentile(base_times, 0.95):8.1f} │"
            f" {'yes' if ok else 'NO':>9}  {ratio:4.1f}×"
        )
    if failed:
        print("\nsome page is over the 200 ms budget at p95")


if __name__ == "__main__":
    main()
