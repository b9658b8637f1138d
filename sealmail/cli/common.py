"""What every ``sealmail`` command shares (SPEC §1): the ``--config`` and ``--json``
options, the one-line ``Failure``, an email argument's check, running a coroutine, reading
the settings, printing JSON and times, the progress bar, opening the services.

Exit codes: 0 success, 1 a failure explained in one line on stderr, 2 wrong usage.
Every command takes ``--config PATH``; commands that print data take ``--json``.
This module imports no other module of the CLI.
"""

from __future__ import annotations

import asyncio
import functools
import json
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from core.addresses import InvalidAddress, parse_address
from core.config.loading import load_settings
from core.config.settings import Settings
from core.errors import SealmailError

T = TypeVar("T")
out = Console(highlight=False, soft_wrap=True)


class Failure(click.ClickException):
    """A one-line error and exit code 1."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo(f"sealmail: {self.format_message()}", err=True)


def email_argument(text: str, hint: str = "EMAIL") -> str:
    """An email address given on the command line, normalized by the one validator
    (:mod:`core.addresses`); anything else is wrong usage (exit 2) naming the argument."""
    try:
        return parse_address(text)
    except InvalidAddress:
        raise click.BadParameter(f"not an email address: {text!r}", param_hint=hint) from None


def _settings(ctx: click.Context) -> Settings:
    path = ctx.find_root().meta.get("config_path")
    for c in (ctx, *iter_parents(ctx)):
        if c.params.get("config"):
            path = c.params["config"]
            break
    try:
        return load_settings(path)
    except SealmailError as exc:
        raise Failure(str(exc)) from None


def iter_parents(ctx: click.Context):  # noqa: ANN201
    p = ctx.parent
    while p is not None:
        yield p
        p = p.parent


def _run(coro: Awaitable[T]) -> T:
    try:
        return asyncio.run(coro)  # type: ignore[arg-type]
    except SealmailError as exc:
        raise Failure(str(exc)) from None


def config_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--config",
        "config",
        type=click.Path(dir_okay=False),
        default=None,
        help="Configuration file (default ./sealmail.toml if present).",
    )(f)


def json_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")(f)


def handles_errors(f: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except SealmailError as exc:
            raise Failure(str(exc)) from None

    return wrapper


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def _ts(value: float | None) -> str:
    if not value:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(value))


@contextmanager
def progress_bar(label: str, enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A rich progress bar on stderr when it is a terminal (and not --json); else None."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    bar = Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task = bar.add_task(label, total=None)

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    with bar:
        yield update


def _services(ctx: click.Context) -> Any:
    from core.services import Services

    return Services.open(_settings(ctx))


async def _tenant_id(svc: Any, ref: str | None) -> str | None:
    if not ref:
        return None
    from core.accounts.tenants import find_tenant

    async with svc.db.session() as s:
        return (await find_tenant(s, ref)).id  # type: ignore[no-any-return]


def in_session(ctx: click.Context, work: Callable[[Any, Any], Awaitable[T]]) -> T:
    """Run ``work(services, session)`` with the configured services opened and closed
    around it; a sealmail error becomes the one-line failure."""

    async def go() -> T:
        svc = _services(ctx)
        try:
            async with svc.db.session() as s:
                return await work(svc, s)
        finally:
            await svc.close()

    return _run(go())
