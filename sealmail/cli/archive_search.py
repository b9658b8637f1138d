"""``sealmail archive search``: a tenant's archive index from the command line, and the
search criteria that ``archive export`` shares.

Every search and export is written to the audit log (who, tenant, how many criteria and
results, a keyed hash of the query; never the words or addresses searched for).
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from typing import Any

import click
from rich.table import Table

from sealmail.cli.common import (
    Failure,
    _print_json,
    _run,
    _services,
    _ts,
    config_option,
    json_option,
    out,
)


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def search_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The search criteria shared by ``search`` and ``export``."""
    options = [
        click.option("--from", "sender", help="Sender address, or a domain (@example.com)."),
        click.option("--to", "recipient", help="Recipient address (To, Cc or Bcc), or a domain."),
        click.option("--after", help="Received on or after this day (YYYY-MM-DD, UTC)."),
        click.option("--before", help="Received on or before this day (YYYY-MM-DD, UTC)."),
        click.option("--subject", help="Words of the subject; all must match."),
        click.option("--has-attachment", is_flag=True, help="Only messages with attachments."),
        click.option("--decision", help="Policy decision: clear, tls, portal, pgp, ... ."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _query(params: dict[str, Any]) -> Any:
    from archive.search import Query, QueryError

    try:
        return Query.from_params(
            {
                "from": params.get("sender") or "",
                "to": params.get("recipient") or "",
                "after": params.get("after") or "",
                "before": params.get("before") or "",
                "subject": params.get("subject") or "",
                "has_attachment": "1" if params.get("has_attachment") else "",
                "decision": params.get("decision") or "",
            }
        )
    except QueryError as exc:
        raise Failure(str(exc)) from None


@click.command("search")
@click.argument("tenant_ref", metavar="TENANT")
@search_options
@click.option("--page", default=1, show_default=True, type=click.IntRange(min=1))
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 500))
@config_option
@json_option
@click.pass_context
def search_cmd(
    ctx: click.Context,
    tenant_ref: str,
    page: int,
    limit: int,
    config: str | None,
    as_json: bool,
    **criteria: Any,
) -> None:
    """Search a tenant's archive (newest first, one page)."""
    from archive.search import search
    from core.accounts.tenants import find_tenant

    query = _query(criteria)

    async def go() -> Any:
        svc = _services(ctx)
        try:
            async with svc.db.session() as s:
                tenant = await find_tenant(s, tenant_ref)
                result = await search(svc, s, tenant.id, query, page=page, limit=limit)
                from archive.search import audit_search

                await audit_search(
                    svc, s, tenant.id, _actor(), query, "archive.search", result.total, page=page
                )
                await s.commit()
            return result
        finally:
            await svc.close()

    result = _run(go())
    if as_json:
        _print_json(result.as_json())
        return
    table = Table("received", "from", "to", "subject", "decision", "size", "att", "id")
    for hit in result.hits:
        m, e = hit.meta, hit.entry
        table.add_row(
            _ts(e.received_at),
            m.sender if m else "?",
            ", ".join(m.recipients()[:3]) + (" …" if m and len(m.recipients()) > 3 else "")
            if m
            else "?",
            m.subject if m else "(unreadable)",
            e.decision,
            str(e.size),
            "yes" if e.has_attachment else "",
            e.id,
        )
    out.print(table)
    more = "" if result.exact else "more than "
    out.print(f"page {result.page} of {result.pages} ({more}{result.total} messages)")
