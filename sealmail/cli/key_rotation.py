"""``sealmail key rotate [--tenant T] [--to aws-kms://...]``: rotate a tenant's
key-encryption key or the root key (SPEC §1). The work is in ``core/rotation.py``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from sealmail.cli.common import (
    Failure,
    _print_json,
    _run,
    _settings,
    config_option,
    json_option,
    out,
)


@click.group()
def key() -> None:
    """Key-encryption keys: rotate a tenant's KEK or the root key."""


@contextmanager
def _progress(label: str, show: bool) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar on a terminal; nothing otherwise."""
    if not show:
        yield lambda done, total: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=out,
        transient=False,
    ) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


@key.command("rotate")
@click.option(
    "--tenant",
    "tenant_ref",
    metavar="TENANT",
    help="Rotate this tenant's KEK (name or id). Without it, the root key is rotated.",
)
@click.option(
    "--to",
    "to",
    metavar="aws-kms://KEY",
    help="Root only: move the root to this KMS key (id, ARN or alias/...), from a file "
    "root or another KMS key; then set root_key to it in the configuration.",
)
@config_option
@json_option
@click.pass_context
def key_rotate(
    ctx: click.Context, tenant_ref: str | None, to: str | None, config: str | None, as_json: bool
) -> None:
    """Rotate a tenant's key-encryption key, or the root key.

    \b
    --tenant T: a new KEK version becomes active for new mail, and every data key of
    the tenant is re-wrapped under it (the sealed objects themselves are not touched).
    Older versions no data key refers to any more are marked retired. Crypto-shredded
    objects stay destroyed.

    \b
    No --tenant: the root key. A file root gets a new key file (the previous one is kept
    beside it as root.key.old-<id>; delete it once no process or backup needs it); an
    aws-kms:// root is re-encrypted inside KMS under the configured key (picking up
    newer KMS key material) or under --to. Every tenant KEK is re-wrapped; derived keys
    (loop stamps, search index) do not change. Restart running processes afterwards.

    \b
    Interrupted (killed, KMS or database down), run the same command again: it finishes
    the unfinished rotation. Nothing is ever left unreadable in between.
    """
    from core import rotation
    from core.accounts.tenants import find_tenant
    from core.errors import ConfigError
    from core.rootkey.kms_root import kms_key_of
    from core.services import Services

    if tenant_ref is not None and to is not None:
        raise click.UsageError("--to is for the root key; it cannot be used with --tenant")
    if to is not None:
        try:
            kms_key_of(to)
        except ConfigError as exc:
            raise click.BadParameter(str(exc), param_hint="--to") from None
    settings = _settings(ctx)
    show = out.is_terminal and not as_json

    async def go() -> rotation.RotationReport:
        svc = Services.open(settings)
        try:
            # reach a KMS root now: missing/disabled → one line, before anything moves
            await asyncio.to_thread(svc.root_key.check)
            if tenant_ref is not None:
                async with svc.db.session() as s:
                    tenant = await find_tenant(s, tenant_ref)
                with _progress(f"re-wrapping data keys of {tenant.name}", show) as progress:
                    report = await rotation.rotate_tenant(
                        svc.db, svc.keyring, tenant.id, progress=progress
                    )
            else:
                with _progress("re-wrapping tenant keys", show) as progress:
                    report = await rotation.rotate_root(svc.db, settings, to=to, progress=progress)
            return report
        finally:
            await svc.close()

    report = _run(go())
    data: dict[str, Any] = report.as_dict()
    if as_json:
        _print_json(data)
    elif report.scope == "tenant":
        verb = "finished the earlier rotation to" if report.resumed else "rotated to"
        out.print(
            f"tenant {tenant_ref}: {verb} KEK version {report.version}; "
            f"{report.rewrapped} data key(s) re-wrapped in {report.seconds:.1f}s"
            + (f", {report.destroyed} destroyed key(s) left destroyed" if report.destroyed else "")
        )
        if report.retired:
            out.print("retired version(s): " + ", ".join(str(v) for v in report.retired))
    else:
        verb = "finished the earlier root rotation" if report.resumed else "rotated the root"
        out.print(
            f"{verb}: {report.rewrapped} tenant key(s) now wrapped by {report.root_key_id} "
            f"({report.seconds:.1f}s)"
        )
        for path in report.kept_files:
            out.print(f"previous root kept: {path} (no key refers to it any more)")
        if to is not None and to != settings.root_key:
            out.print(f"now set root_key = {to!r} in the configuration and restart")
    if report.failed:
        raise Failure(
            f"{len(report.failed)} key(s) did not open and were left as they are: "
            + ", ".join(report.failed[:5])
            + (" ..." if len(report.failed) > 5 else "")
        )
