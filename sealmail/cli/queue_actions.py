"""``sealmail queue retry|hold|release``: change when delivery tries pending recipients.

Held recipients are skipped by delivery and do not expire while held; released, they are
due at once, and an item already past ``queue_lifetime`` gets one ``queue_max_backoff``
more so it is tried before it bounces. Every change is written to the audit log.
"""

from __future__ import annotations

from typing import Any

import click

from sealmail.cli.common import _print_json, _run, _services, config_option, json_option, out
from sealmail.cli.queue_show import _lookup


async def _act(ctx: click.Context, queue_id: str | None, action: str) -> dict[str, Any]:
    """Apply ``action`` (retry, hold, release) to ``queue_id`` (``None``: whole queue)."""
    from sqlalchemy import update

    from core import outbox
    from core.audit import audit
    from core.models import Message

    svc = _services(ctx)
    try:
        async with svc.db.session() as s:
            tenant_id: str | None = None
            ids: list[str] | None = None
            restarted = False
            if queue_id is not None:
                entry = await _lookup(s, queue_id)
                tenant_id = entry["tenant_id"]
                if entry["type"] == "outbox":
                    ids = [queue_id]
                else:
                    ids = [o["queue_id"] for o in entry["outbox"]]
                    if action == "retry" and entry["state"] == "received":
                        result = await s.execute(
                            update(Message)
                            .where(
                                Message.id == queue_id,
                                Message.state == "received",
                                Message.claimed_by == "",
                            )
                            .values(next_attempt_at=0.0)
                        )
                        restarted = getattr(result, "rowcount", 0) == 1
            if action == "retry":
                count = await outbox.retry_now(s, ids)
            elif action == "hold":
                count = await outbox.hold(s, ids or [])
            else:
                grace = svc.settings.queue_max_backoff
                count = await outbox.release_held(s, ids or [], grace)
            if count or restarted:
                await audit(
                    s,
                    tenant_id,
                    "cli",
                    f"queue.{action}",
                    queue_id or "*",
                    recipients=count,
                    message_restarted=restarted,
                )
            await s.commit()
            return {
                "queue_id": queue_id,
                "action": action,
                "recipients": count,
                "message_restarted": restarted,
            }
    finally:
        await svc.close()


def _report(data: dict[str, Any], as_json: bool, done: str, nothing: str) -> None:
    if as_json:
        _print_json(data)
        return
    where = data["queue_id"] or "the queue"
    if data["recipients"] or data["message_restarted"]:
        line = f"{where}: {done} {data['recipients']} recipient(s)"
        if data["message_restarted"]:
            line += "; message processing restarted now"
        out.print(line)
    else:
        out.print(f"{where}: {nothing}")


@click.command("retry")
@click.argument("queue_id", required=False)
@click.option("--all", "retry_all", is_flag=True, help="Every deferred recipient.")
@config_option
@json_option
@click.pass_context
def queue_retry(
    ctx: click.Context, queue_id: str | None, retry_all: bool, config: str | None, as_json: bool
) -> None:
    """Try deferred recipients now (one queue id, or --all)."""
    if bool(queue_id) == retry_all:
        raise click.UsageError("give a QUEUE_ID or --all (not both)")
    data = _run(_act(ctx, queue_id, "retry"))
    _report(data, as_json, "due now:", "nothing deferred to retry")


@click.command("hold")
@click.argument("queue_id")
@config_option
@json_option
@click.pass_context
def queue_hold(ctx: click.Context, queue_id: str, config: str | None, as_json: bool) -> None:
    """Hold pending recipients: delivery skips them; they do not expire while held."""
    data = _run(_act(ctx, queue_id, "hold"))
    _report(data, as_json, "held", "nothing to hold (no queued or deferred recipient idle)")


@click.command("release")
@click.argument("queue_id")
@config_option
@json_option
@click.pass_context
def queue_release(ctx: click.Context, queue_id: str, config: str | None, as_json: bool) -> None:
    """Release held recipients: they are due at once."""
    data = _run(_act(ctx, queue_id, "release"))
    _report(data, as_json, "released", "nothing held")
