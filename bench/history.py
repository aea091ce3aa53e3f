"""Benchmark: the team history page with 100 and with 100,000 generations in the table.

    .venv/bin/python bench/history.py [--repeat 40] [--large 100000]
    .venv/bin/python bench/history.py --postgres postgres://postgres@127.0.0.1:5432

Builds two fresh databases (SQLite, the default stack; or throwaway PostgreSQL
databases on that server, dropped afterwards), fills them with jobs of five
members, and serves /history/ in-process through Django's full middleware
stack (the test client), as a signed-in member. Prints, for each size, the
median and 95th-percentile time of the page and the number of SQL queries.
Target: the page with 100,000 rows takes at most 1.5x as long as with 100.
Filtered views (a member, a common search word, a rare one) are shown too,
for information.
"""

import argparse
import contextlib
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.processes import postgres_database  # noqa: E402

WORDS = ("wolf", "forest", "lighthouse", "city", "river", "fox", "storm", "dawn", "snow", "neon",
         "маяк", "лес", "город")


def database(size: int, postgres: str | None) -> contextlib.AbstractContextManager[str | None]:
    """DATABASE_URL of a new, empty database (None: SQLite in DATA_DIR), dropped afterwards."""
    if postgres is None:
        return contextlib.nullcontext()
    return postgres_database(f"pixverse_history_{size}", server=postgres)


def measure(size: int, repeat: int, postgres: str | None) -> dict[str, tuple[float, float, int]]:
    """Run in a child process with its own database: {view: (median ms, p95 ms, queries)}."""
    data = Path(tempfile.mkdtemp(prefix=f"pixverse-history-{size}-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    env.update(DATA_DIR=str(data), DJANGO_SETTINGS_MODULE="pixverse_site.settings",
               LOG_LEVEL="WARNING", ALLOWED_HOSTS="testserver", STATIC_HASHED="false",
               SECURE_SSL_REDIRECT="false")
    with database(size, postgres) as url:
        if url:
            env["DATABASE_URL"] = url
        subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "-v", "0"], env=env,
                       check=True, cwd=ROOT)
        child = subprocess.run(
            [sys.executable, __file__, "--child", str(size), "--repeat", str(repeat)],
            env=env, cwd=ROOT, capture_output=True, text=True, check=True,
        )
    results = {}
    for line in child.stdout.splitlines():
        name, median, p95, queries = line.split("\t")
        results[name] = (float(median), float(p95), int(queries))
    return results


def child(size: int, repeat: int) -> None:
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from generations.models import Generation

    rng = random.Random(42)
    members = [User.objects.create_user(f"member{n}") for n in range(5)]
    now = timezone.now()
    statuses = ["done"] * 8 + ["failed", "moderated"]
    batch = []
    for n in range(size):
        prompt = " ".join(rng.choice(WORDS) for _ in range(6))
        if n % 20_000 == 7:  # a word in five of 100,000 prompts (one of 100)
            prompt += " zeppelin"
        batch.append(Generation(
            owner=members[n % 5], kind="text", prompt=prompt, prompt_folded=prompt.casefold(),
            model="v5", quality=rng.choice(["360p", "540p", "720p"]), duration=5, credits=45,
            status=rng.choice(statuses), is_private=n % 10 == 0,
            created=now - timezone.timedelta(minutes=n), finished_at=now,
        ))
        if len(batch) == 5000:
            Generation.objects.bulk_create(batch)
            batch = []
    Generation.objects.bulk_create(batch)
    if os.environ.get("BENCH_DROP_TRIGRAM_INDEX") and connection.vendor == "postgresql":
        connection.cursor().execute("DROP INDEX IF EXISTS generations_prompt_folded_trgm")
    connection.cursor().execute("ANALYZE")

    client = Client()
    client.force_login(members[0])
    views = {"page": "/history/", "one member": "/history/?member=member2",
             "search": "/history/?q=lighthouse", "rare word": "/history/?q=zeppelin"}
    for name, url in views.items():
        client.get(url)  # warm caches and templates
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
        with CaptureQueriesContext(connection) as captured:
            client.get(url)
        times.sort()
        p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
        print(f"{name}\t{statistics.median(times):.2f}\t{p95:.2f}\t{len(captured)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--postgres", metavar="URL",
                        help="a PostgreSQL server (postgres://user@host:port) to use, not SQLite")
    parser.add_argument("--without-trigram-index", action="store_true",
                        help="with --postgres: drop the search index, to see what it does")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.without_trigram_index:
        os.environ["BENCH_DROP_TRIGRAM_INDEX"] = "1"
    if args.child is not None:
        child(args.child, args.repeat)
        return 0
    small = measure(args.small, args.repeat, args.postgres)
    large = measure(args.large, args.repeat, args.postgres)
    stack = "PostgreSQL" if args.postgres else "SQLite"
    print(f"\nTeam history page, {stack}, {args.repeat} requests each, first page (24 cards)\n")
    header = (f"{'view':<12}  {'rows':>8}  {'median ms':>9}  {'p95 ms':>7}  {'queries':>7}  "
              f"{'ratio':>6}  target")
    print(header)
    print("-" * len(header))
    ok = True
    for name in small:
        for rows, results in ((args.small, small), (args.large, large)):
            median, p95, queries = results[name]
            ratio = median / small[name][0]
            target = "<= 1.5x" if name == "page" and rows == args.large else ""
            print(f"{name:<12}  {rows:>8}  {median:>9.2f}  {p95:>7.2f}  {queries:>7}  "
                  f"{ratio:>5.2f}x  {target}")
        ok &= small[name][2] == large[name][2]
    page_ratio = large["page"][0] / small["page"][0]
    ok &= page_ratio <= 1.5
    print(f"\nqueries per page do not grow with the rows: {small['page'][2] == large['page'][2]}")
    print("all targets met" if ok else "some targets missed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
