"""What a partner does to its tenants, one implementation for the console's pages and the
partner API: create a tenant (from the partner's default brand, with a first admin), convert
its plan, suspend, resume or terminate it. Every change is audited in the tenant's own log
with the partner person (or key) as the actor. A tenant suspended by billing is not resumed
by its partner: paying does that."""

from __future__ import annotations

import dataclasses
import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from billing_hooks.enforcement import standing_for_new_tenant, suspended_by_billing
from branding.partner_brand import start_from_partner_brand
from core.accounts.domains import tenant_domains
from core.accounts.tenants import TenantCredentials, create_tenant, set_standing
from core.accounts.trials import change_plan, set_trial_end, today_utc
from core.accounts.users import add_user
from core.addresses import domain_of, normalize, problem
from core.errors import PermanentError
from core.keyring import KeyRing
from core.models import Partner, Tenant

MAX_TRIAL_DAYS = 366
ACTIONS = {"suspend": "suspended", "resume": "active", "terminate": "terminated"}


@dataclasses.dataclass(frozen=True)
class NewTenant:
    name: str
    domains: list[str]
    plan: str
    trial_ends_on: datetime.date | None = None
    networks: list[str] = dataclasses.field(default_factory=list)
    admin_email: str = ""


def check_trial_end(end: datetime.date | None) -> datetime.date:
    if end is None:
        raise PermanentError("a trial needs its last day")
    if (end - today_utc()).days > MAX_TRIAL_DAYS:
        raise PermanentError(f"a trial lasts at most {MAX_TRIAL_DAYS} days")
    return end


async def create_for_partner(
    s: AsyncSession, keyring: KeyRing, partner: Partner, new: NewTenant, actor: str
) -> tuple[TenantCredentials, Tenant, list[str]]:
    """The tenant, its credentials (shown once), and its domains; the caller commits."""
    if new.plan not in ("trial", "nfr", "paid"):
        raise PermanentError("the plan must be trial, nfr or paid")
    end = check_trial_end(new.trial_ends_on) if new.plan == "trial" else None
    admin = normalize(new.admin_email) if new.admin_email else ""
    if admin and problem(admin) is not None:
        raise PermanentError(f"{new.admin_email!r} is not an email address")
    creds = await create_tenant(
        s,
        keyring,
        new.name,
        new.domains,
        partner=partner.id,
        plan=new.plan,
        trial_ends_on=end,
        networks=[(n, False) for n in new.networks],
        actor=actor,
    )
    tenant = await s.get(Tenant, creds.tenant_id)
    assert tenant is not None
    domains = await tenant_domains(s, tenant.id)
    if admin:
        if domain_of(admin) not in domains:
            raise PermanentError("the first admin's address must be of one of the tenant's domains")
        await add_user(s, tenant, admin, "admin", actor=actor)
    await start_from_partner_brand(s, tenant, actor)
    await standing_for_new_tenant(s, tenant)
    return creds, tenant, domains


async def convert(
    s: AsyncSession,
    tenant: Tenant,
    plan: str,
    actor: str,
    trial_ends_on: datetime.date | None = None,
) -> str:
    """Change the plan (or the trial's last day); returns a sentence saying what happened."""
    name = tenant.display_name or tenant.name
    if plan == "trial":
        end = check_trial_end(trial_ends_on)
        await set_trial_end(s, tenant, end, actor)
        return f"{name} is on a trial until the end of {end.isoformat()}."
    if plan not in ("paid", "nfr"):
        raise PermanentError("the plan must be trial, nfr or paid")
    await change_plan(s, tenant, plan, actor)
    words = "a paid plan" if plan == "paid" else "a not-for-resale licence"
    return f"{name} is now on {words}; its mail flows without a trial end."


async def change_standing(s: AsyncSession, tenant: Tenant, action: str, actor: str) -> str:
    if action not in ACTIONS:
        raise PermanentError("the action must be suspend, resume or terminate")
    target = ACTIONS[action]
    name = tenant.display_name or tenant.name
    if tenant.standing == "terminated":
        raise PermanentError(f"{name} is terminated; ask the operator to restore it")
    if tenant.standing == target:
        return f"{name} is already {target}."
    if action == "resume" and await suspended_by_billing(s, tenant.id):
        raise PermanentError(
            f"{name} was suspended for an unpaid invoice; paying it resumes the service"
        )
    await set_standing(s, tenant, target, actor)
    return {
        "suspended": f"{name} is suspended: its mail waits at the sending servers (451).",
        "active": f"{name} is active again: waiting mail is delivered on the next attempt.",
        "terminated": f"{name} is terminated: its mail is refused (550).",
    }[target]


def parse_domains(text: str) -> list[str]:
    return [d for d in text.replace(",", " ").split() if d]
