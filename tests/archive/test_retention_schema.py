"""Migration 0004's retention and legal-hold block matches the models, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from core.db import Database
from sealmail.schema import metadata

MINE = {
    ("legal_holds", None),
    ("legal_hold_items", None),
    ("tenants", "archive_retention_days"),
    ("tenants", "portal_retention_days"),
    ("messages", "portal_expired_at"),
}
TABLES = {"legal_holds", "legal_hold_items"}


def _touches_mine(change: object) -> bool:
    text = repr(change)
    if any(t in text for t in TABLES):
        return True
    return any(col and col in text for _t, col in MINE)


async def test_migration_matches_models(db_url: str) -> None:
    db = Database(db_url)
    try:
        async with db.engine.connect() as conn:

            def diff(sync_conn):  # type: ignore[no-untyped-def]
                ctx = MigrationContext.configure(sync_conn, opts={"compare_type": True})
                return compare_metadata(ctx, metadata())

            changes = await conn.run_sync(diff)
    finally:
        await db.dispose()
    assert [c for c in changes if _touches_mine(c)] == []
