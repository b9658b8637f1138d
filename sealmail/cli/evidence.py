"""``sealmail evidence verify [TENANT]``: walk a tenant's hash-chained evidence log (every
tenant's without one); exit 1 naming the first entry that does not hold."""

from __future__ import annotations

from typing import Any

import click

from sealmail.cli.common import (
    Failure,
    _print_json,
    _run,
    _services,
    config_option,
    json_option,
    out,
)


@click.group("evidence")
def evidence() -> None:
    """The evidence log: what happened to each message, hash-chained and signed."""


async def _verify(svc: Any, ref: str | None) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from core.accounts.tenants import find_tenant
    from core.evidence.log import chain, verify
    from core.models import Tenant

    async with svc.db.session() as s:
        if ref:
            tenants = [await find_tenant(s, ref)]
        else:
            tenants = list((await s.execute(select(Tenant).order_by(Tenant.name))).scalars())
    results = []
    for t in tenants:
        await chain(svc, t.id)  # what is written but not linked yet joins the chain first
        walk = await verify(svc, t.id)
        results.append(
            {"tenant": t.name, "tenant_id": t.id, "entries": walk.entries,
             "checkpoints": walk.checkpoints, "problem": walk.problem}
        )  # fmt: skip
    return results


@evidence.command("verify")
@click.argument("tenant", required=False)
@config_option
@json_option
@click.pass_context
def verify_cmd(ctx: click.Context, tenant: str | None, config: str | None, as_json: bool) -> None:
    """Walk the evidence log of TENANT (of every tenant without one)."""

    async def go() -> list[dict[str, Any]]:
        svc = _services(ctx)
        try:
            return await _verify(svc, tenant)
        finally:
            await svc.close()

    results = _run(go())
    if as_json:
        _print_json(results)
    else:
        for r in results:
            if r["problem"] is None:
                out.print(
                    f"{r['tenant']}: {r['entries']} entries and {r['checkpoints']} signed "
                    "checkpoints hold.",
                    markup=False,
                )
            else:
                out.print(f"{r['tenant']}: broken: {r['problem']}.", markup=False)
    broken = [r for r in results if r["problem"] is not None]
    if broken:
        raise Failure(
            f"the evidence log of {broken[0]['tenant']} is broken: {broken[0]['problem']}"
        )
