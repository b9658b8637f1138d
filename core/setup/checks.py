"""Open, read and finish a tenant's onboarding check ("send a test message now").

A check lives 15 minutes; a tenant has at most one open check, and opening again restarts
it. The first message of the tenant to arrive while it is open is the one it watches
(``message_id``, claimed by a conditional UPDATE so two messages arriving together cannot
both take it); the steps the gateway saw of that message, or the fault that refused a
session, are rows of ``setup_check_steps``. It ends ``ok`` when the next hop accepted the
message (2xx), ``fault`` on a refusal, ``expired`` when nothing came in time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import audit
from core.ids import new_id
from core.models import now
from core.setup.models import SetupCheck, SetupCheckStep

CHECK_SECONDS = 15 * 60

# the steps of a message, in the order the gateway sees them
ARRIVED = "arrived"
IDENTIFIED = "identified"
DECIDED = "decided"
SEALED = "sealed"
PASSED = "passed"
HELD = "held"
HANDED_BACK = "handed_back"
# faults (ok=False): a session refused, or the next hop's refusal
NO_TOKEN = "no_token"  # noqa: S105 - a step name
UNKNOWN_TOKEN = "unknown_token"  # noqa: S105 - a step name
NETWORK = "network"
SENDER_DOMAIN = "sender_domain"
REFUSED = "refused"  # the next hop refused the message (5xx) or another 5xx of ours
DEFERRED = "deferred"  # the next hop answered 4xx: it is retried, the check stays open

TITLES = {
    ARRIVED: "Arrived",
    IDENTIFIED: "Tenant identified",
    DECIDED: "Policy decided",
    SEALED: "Sealed",
    PASSED: "Passed on unchanged",
    HELD: "Held in quarantine",
    HANDED_BACK: "Handed back to the next hop",
    NO_TOKEN: "No connector token",
    UNKNOWN_TOKEN: "Connector token not recognised",
    NETWORK: "Client address not in the allowed networks",
    SENDER_DOMAIN: "Sender domain not the tenant's",
    REFUSED: "Refused",
    DEFERRED: "Next hop asked to try later",
}

WAITING, OK, FAULT, EXPIRED = "waiting", "ok", "fault", "expired"


@dataclass(frozen=True)
class Step:
    step: str
    ok: bool
    detail: str
    at: float

    @property
    def title(self) -> str:
        return TITLES.get(self.step, self.step)


@dataclass(frozen=True)
class CheckView:
    """A check as pages show it: its state (``waiting | ok | fault | expired``) and steps."""

    id: str
    tenant_id: str
    started_by: str
    started_at: float
    expires_at: float
    message_id: str
    state: str
    steps: list[Step] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "state": self.state,
            "started_at": self.started_at,
            "expires_at": self.expires_at,
            "message_id": self.message_id,
            "steps": [
                {"step": s.step, "title": s.title, "ok": s.ok, "detail": s.detail, "at": s.at}
                for s in self.steps
            ],
        }


async def open_check(session: AsyncSession, tenant_id: str, actor: str) -> SetupCheck:
    """A new check for ``tenant_id``, open for 15 minutes; a check still open is ended
    (``expired``) first: opening again restarts. The caller commits."""
    t = now()
    await session.execute(
        update(SetupCheck)
        .where(SetupCheck.tenant_id == tenant_id, SetupCheck.finished_at.is_(None))
        .values(finished_at=t, outcome=EXPIRED)
    )
    check = SetupCheck(
        id=new_id("sc_"),
        tenant_id=tenant_id,
        started_by=actor[:320],
        started_at=t,
        expires_at=t + CHECK_SECONDS,
        message_id="",
        outcome="",
    )
    session.add(check)
    await audit(session, tenant_id, actor, "setup.check.open", check.id)
    return check


async def latest_check(session: AsyncSession, tenant_id: str) -> SetupCheck | None:
    stmt = (
        select(SetupCheck)
        .where(SetupCheck.tenant_id == tenant_id)
        .order_by(SetupCheck.started_at.desc())
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


def state_of(check: SetupCheck, at: float | None = None) -> str:
    if check.outcome in (OK, FAULT, EXPIRED):
        return check.outcome
    return EXPIRED if (at or now()) > check.expires_at else WAITING


async def read_check(session: AsyncSession, tenant_id: str) -> CheckView | None:
    """The tenant's latest check with its steps in order, or ``None`` when it has none."""
    check = await latest_check(session, tenant_id)
    if check is None:
        return None
    rows = (
        (
            await session.execute(
                select(SetupCheckStep)
                .where(SetupCheckStep.check_id == check.id)
                .order_by(SetupCheckStep.id)
            )
        )
        .scalars()
        .all()
    )
    return CheckView(
        id=check.id,
        tenant_id=check.tenant_id,
        started_by=check.started_by,
        started_at=check.started_at,
        expires_at=check.expires_at,
        message_id=check.message_id,
        state=state_of(check),
        steps=[Step(r.step, r.ok, r.detail, r.at) for r in rows],
    )


async def claim_message(session: AsyncSession, check_id: str, message_id: str) -> bool:
    """Make ``message_id`` the check's message, if it has none yet (and is still open);
    True when the check now watches it."""
    result = await session.execute(
        update(SetupCheck)
        .where(
            SetupCheck.id == check_id,
            SetupCheck.message_id == "",
            SetupCheck.finished_at.is_(None),
        )
        .values(message_id=message_id)
        .execution_options(synchronize_session=False)
    )
    if int(result.rowcount or 0) == 1:  # type: ignore[attr-defined]
        return True
    current = await session.get(SetupCheck, check_id, populate_existing=True)
    return current is not None and current.message_id == message_id


async def add_steps(
    session: AsyncSession,
    check_id: str,
    steps: list[tuple[str, bool, str]],
    *,
    finish: str = "",
) -> bool:
    """Add ``(step, ok, detail)`` rows to a check still open, and end it with ``finish``
    (``ok`` or ``fault``) when given. False (nothing written) when it has ended."""
    check = await session.get(SetupCheck, check_id, populate_existing=True)
    if check is None or check.finished_at is not None:
        return False
    t = now()
    for step, ok, detail in steps:
        session.add(SetupCheckStep(check_id=check_id, at=t, step=step, ok=ok, detail=detail[:500]))
    if finish:
        check.finished_at = t
        check.outcome = finish
    return True
