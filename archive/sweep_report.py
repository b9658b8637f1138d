"""What a retention sweep did: counts of what was due, shredded, expired and held, and the
problems met on the way (:class:`SweepReport`, the ``--json`` of ``archive sweep``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

ACTOR = "sweep"  # the audit log's actor for everything the sweep does


@dataclasses.dataclass
class Problem:
    subject_id: str
    tenant_id: str
    what: str

    def as_json(self) -> dict[str, str]:
        return {"id": self.subject_id, "tenant_id": self.tenant_id, "problem": self.what}


@dataclasses.dataclass
class SweepReport:
    dry_run: bool = False
    entries_due: int = 0
    entries_shredded: int = 0
    entries_held: int = 0
    portal_due: int = 0
    portal_expired: int = 0
    portal_held: int = 0
    keys_destroyed: int = 0
    messages_shredded: int = 0  # messages no archive entry stands for
    objects_deleted: int = 0
    objects_locked: int = 0  # keys destroyed, object kept until its Object Lock date
    problems: list[Problem] = dataclasses.field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["problems"] = [p.as_json() for p in self.problems]
        return out


Progress = Callable[[int, int], None]  # (done, total)
