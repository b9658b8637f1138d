"""Archive search latency over a large blind index.

    .venv/bin/python bench/archive_search.py [--entries 100000] [--queries 300]
        [--database sqlite|postgresql|both] [--pg postgresql://postgres@127.0.0.1:5432/postgres]

Builds an index of N archived messages for one tenant (plus a small second tenant), inserting
``archive_entries`` and ``archive_terms`` rows directly in bulk with realistic term counts
(a sender and its domain, 1-4 recipients and their domains, 3-8 subject words drawn from a
Zipf-like vocabulary, the decision, an attachment flag for 1 in 5), their summaries pointing
at 500 real sealed meta objects so every result row is really decrypted. Then it runs a few
hundred mixed queries through :func:`archive.search.search` (sender, recipient, recipient
domain, subject words, date range, decision and combinations; first page of 50 with the
total count) and prints p50/p90/p99/max latency per kind and overall. Target: p99 < 200 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DAY = 86400.0
START = 1_700_000_000.0
SPAN_DAYS = 730


def vocabulary(n: int, rng: random.Random) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    words: set[str] = set()
    while len(words) < n:
        words.add("".join(rng.choice(letters) for _ in range(rng.randint(3, 10))))
    return sorted(words)


def zipf_pick(rng: random.Random, items: list[str], s: float = 1.1) -> str:
    # inverse-CDF sampling of a Zipf-like rank distribution, cheap enough for 1M draws
    n = len(items)
    u = rng.random()
    rank = int(n ** (u**s)) - 1
    return items[min(max(rank, 0), n - 1)]


async def build(services, tenant_id: str, entries: int, rng: random.Random, metas: list[str]):  # noqa: ANN001, ANN201
    from sqlalchemy import insert

    from archive import index
    from archive.models import ArchiveEntry, ArchiveTerm

    key = index.index_key(services.root_key, tenant_id)
    words = vocabulary(5000, rng)
    senders = [f"user{i}@acme.example" for i in range(400)]
    domains = [f"partner{i}.example" for i in range(300)] + ["acme.example"]
    rcpts = [f"r{i}@{rng.choice(domains)}" for i in range(20000)]
    decisions = ["clear"] * 14 + ["portal"] * 3 + ["tls", "pgp", "hold", "smime"]
    sample: dict[str, list] = {"sender": [], "recipient": [], "domain": [], "words": []}
    batch_e: list[dict] = []
    batch_t: list[dict] = []
    terms = 0

    async def flush() -> None:
        async with services.db.session() as s:
            if batch_e:
                await s.execute(insert(ArchiveEntry), batch_e)
            if batch_t:
                await s.execute(insert(ArchiveTerm), batch_t)
            await s.commit()
        batch_e.clear()
        batch_t.clear()

    for n in range(entries):
        eid = f"a_{secrets.token_hex(10)}"
        at = START + rng.random() * SPAN_DAYS * DAY
        sender = zipf_pick(rng, senders)
        to = [zipf_pick(rng, rcpts) for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4)))]
        subject = " ".join(zipf_pick(rng, words) for _ in range(rng.randint(3, 8)))
        decision = rng.choice(decisions)
        attach = rng.random() < 0.2
        toks: set[tuple[str, str]] = {("from", sender), ("from-domain", "acme.example")}
        for r in to:
            toks |= {("to", r), ("to-domain", r.split("@")[1])}
        toks |= {("subject", w) for w in index.words(subject)}
        if rng.random() < 0.03:  # several recipients decided differently
            decision = "mixed"
            toks |= {("decision", "clear"), ("decision", rng.choice(["portal", "tls", "hold"]))}
        else:
            toks.add(("decision", decision))
        if attach:
            toks.add(("has", "attachment"))
        batch_e.append(
            {
                "id": eid, "tenant_id": tenant_id, "source": "gateway", "message_id": None,
                "object_id": "o_bench", "meta_object_id": metas[n % len(metas)],
                "received_at": at, "size": rng.randint(2_000, 2_000_000),
                "has_attachment": attach, "decision": decision,
                "retain_until": at + 7 * 365 * DAY, "legal_hold": False, "shredded_at": None,
            }
        )  # fmt: skip
        for f, v in toks:
            batch_t.append(
                {
                    "tenant_id": tenant_id, "entry_id": eid,
                    "token": index.token(key, f, v), "received_at": at,
                }
            )  # fmt: skip
        terms += len(toks)
        if n % 97 == 0:
            sample["sender"].append(sender)
            sample["recipient"].append(rng.choice(to))
            sample["domain"].append(to[0].split("@")[1])
            sample["words"].append(index.words(subject))
        if len(batch_e) >= 5000:
            await flush()
    await flush()
    return sample, terms


async def seal_metas(services, tenant_id: str, count: int) -> list[str]:  # noqa: ANN001
    from archive.index import Summary

    ids = []
    async with services.db.session() as s:
        for i in range(count):
            summary = Summary(
                sender=f"user{i}@acme.example", to=[f"r{i}@partner1.example"],
                subject=f"bench summary {i}", date="Mon, 1 Jan 2024 10:00:00 +0000",
                size=1000, sha256="0" * 64,
            )  # fmt: skip
            ids.append((await services.vault.seal(s, tenant_id, summary.to_json(), "meta")).id)
        await s.commit()
    return ids


def queries(sample: dict[str, list], rng: random.Random, count: int):  # noqa: ANN201
    from archive.search import Query

    out = []
    kinds = ["sender", "recipient", "domain", "subject", "subject2", "date", "decision",
             "sender+date", "subject+recipient-domain", "attachment+decision+date"]  # fmt: skip
    for i in range(count):
        kind = kinds[i % len(kinds)]
        day0 = START + rng.random() * (SPAN_DAYS - 40) * DAY
        if kind == "sender":
            q = Query(sender=rng.choice(sample["sender"]))
        elif kind == "recipient":
            q = Query(recipient=rng.choice(sample["recipient"]))
        elif kind == "domain":
            q = Query(recipient=rng.choice(sample["domain"]))
        elif kind == "subject":
            q = Query(subject=rng.choice(rng.choice(sample["words"])))
        elif kind == "subject2":
            q = Query(subject=" ".join(rng.choice(sample["words"])[:2]))
        elif kind == "date":
            q = Query(after=day0, before=day0 + 30 * DAY)
        elif kind == "decision":
            q = Query(decision=rng.choice(["clear", "portal", "hold"]))
        elif kind == "sender+date":
            q = Query(sender=rng.choice(sample["sender"]), after=day0, before=day0 + 30 * DAY)
        elif kind == "subject+recipient-domain":
            q = Query(subject=rng.choice(rng.choice(sample["words"])),
                      recipient=rng.choice(sample["domain"]))  # fmt: skip
        else:
            q = Query(has_attachment=True, decision="clear", after=day0, before=day0 + 90 * DAY)
        out.append((kind, q))
    return out


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


async def run(database_url: str, workdir: Path, entries: int, count: int, seed: int) -> dict:
    from archive.search import search
    from core.accounts.tenants import create_tenant
    from core.config.loading import load_settings
    from core.db import migrate
    from core.rootkey.file_root import FileRootKey
    from core.services import Services

    rng = random.Random(seed)
    (workdir / "keys").mkdir(exist_ok=True)
    FileRootKey.create(workdir / "keys" / "root.key")
    settings = load_settings(path=None, env={}, overrides={
        "data_dir": str(workdir), "database_url": database_url,
        "archive_url": f"file://{workdir}/archive", "root_key": f"file://{workdir}/keys/root.key",
    })  # fmt: skip
    await asyncio.to_thread(migrate, database_url)
    services = Services.open(settings)
    saved = workdir / "sample.json"
    try:
        if saved.exists():  # --keep: the index is already built
            import json

            state = json.loads(saved.read_text())
            tenant_a, sample, terms = state["tenant"], state["sample"], state["terms"]
            rng.random()
            t0 = time.perf_counter()
        else:
            async with services.db.session() as s:
                a = await create_tenant(s, services.keyring, "Bench", ["acme.example"])
                b = await create_tenant(s, services.keyring, "Other", ["other.example"])
                await s.commit()
            tenant_a = a.tenant_id
            t0 = time.perf_counter()
            metas = await seal_metas(services, a.tenant_id, 500)
            other_metas = await seal_metas(services, b.tenant_id, 20)
            sample, terms = await build(services, a.tenant_id, entries, rng, metas)
            await build(services, b.tenant_id, entries // 10, random.Random(seed + 1), other_metas)
        built = time.perf_counter() - t0
        if services.db.is_sqlite:
            async with services.db.session() as s:
                from sqlalchemy import text

                await s.execute(text("ANALYZE"))
                await s.commit()
        else:
            async with services.db.session() as s:
                from sqlalchemy import text

                await s.execute(text("ANALYZE archive_entries"))
                await s.execute(text("ANALYZE archive_terms"))
                await s.commit()
        qs = queries(sample, random.Random(seed + 7), count)
        # warm-up: the first few queries pay for cold caches
        for _kind, q in qs[:10]:
            async with services.db.session() as s:
                await search(services, s, tenant_a, q, 1, 50)
        times: dict[str, list[float]] = {}
        totals: dict[str, list[int]] = {}
        for kind, q in qs:
            start = time.perf_counter()
            async with services.db.session() as s:
                page = await search(services, s, tenant_a, q, 1, 50)
            times.setdefault(kind, []).append((time.perf_counter() - start) * 1000)
            totals.setdefault(kind, []).append(page.total)
        if not saved.exists():
            import json

            saved.write_text(json.dumps({"tenant": tenant_a, "sample": sample, "terms": terms}))
        return {"built_s": built, "terms": terms, "times": times, "totals": totals}
    finally:
        await services.close()


def report(name: str, entries: int, result: dict) -> None:
    allv = [v for vs in result["times"].values() for v in vs]
    print(f"\n== {name}: {entries:,} entries, {result['terms']:,} terms "
          f"(built in {result['built_s']:.0f} s), {len(allv)} queries ==")  # fmt: skip
    print(
        f"{'query':28} {'n':>4} {'hits med':>9} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} "
        f"{'max ms':>8}"
    )
    for kind, vs in result["times"].items():
        hits = statistics.median(result["totals"][kind])
        print(f"{kind:28} {len(vs):4d} {hits:9.0f} {pct(vs, 50):8.1f} {pct(vs, 90):8.1f} "
              f"{pct(vs, 99):8.1f} {max(vs):8.1f}")  # fmt: skip
    p99 = pct(allv, 99)
    verdict = "met" if p99 < 200 else "MISSED"
    print(f"{'ALL':28} {len(allv):4d} {'':9} {pct(allv, 50):8.1f} {pct(allv, 90):8.1f} "
          f"{p99:8.1f} {max(allv):8.1f}   target p99 < 200 ms: {verdict}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="sqlite")
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument(
        "--keep",
        help="build the index once in this directory (PostgreSQL: DIR-pg and a database "
        "named after it, not dropped) and reuse it in later runs",
    )
    args = ap.parse_args()
    kinds = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    for kind in kinds:
        with tempfile.TemporaryDirectory(prefix="sealmail-bench-") as tmp:
            work = Path(args.keep) if args.keep else Path(tmp)
            work.mkdir(parents=True, exist_ok=True)
            if kind == "sqlite":
                url = f"sqlite:///{work}/bench.db"
                result = asyncio.run(run(url, work, args.entries, args.queries, args.seed))
                report("SQLite", args.entries, result)
            else:
                base = args.pg.rsplit("/", 1)[0]
                if args.keep:  # a database named after the directory, kept for the next run
                    work = Path(args.keep + "-pg")
                    work.mkdir(parents=True, exist_ok=True)
                    name = "sealmail_bench_" + Path(args.keep).name.replace("-", "_")
                    if not (work / "sample.json").exists():
                        asyncio.run(_pg(args.pg, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                        asyncio.run(_pg(args.pg, f'CREATE DATABASE "{name}"'))
                else:
                    name = f"sealmail_bench_{secrets.token_hex(4)}"
                    asyncio.run(_pg(args.pg, f'CREATE DATABASE "{name}"'))
                try:
                    result = asyncio.run(
                        run(f"{base}/{name}", work, args.entries, args.queries, args.seed)
                    )
                    report("PostgreSQL", args.entries, result)
                finally:
                    if not args.keep:
                        asyncio.run(_pg(args.pg, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _pg(url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql://", "postgres://", 1))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


if __name__ == "__main__":
    main()
