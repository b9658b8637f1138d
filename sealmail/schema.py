"""The whole schema: core's shared tables and every feature package's own, on one ``Base``.

Each feature's tables live in its package (``archive.models``, ...) and core never imports
them, so ``core.models.Base.metadata`` holds only what the importing process imported. What
needs every table (Alembic's autogenerate in ``scripts/new_migration.sh``, the tests that
compare the migrations with the models) takes it from here.
"""

from __future__ import annotations

from sqlalchemy import MetaData

import archive.models
import billing_hooks.models
import branding.models
import conversations.models
import core.accounts.models
import core.dkim.models
import core.evidence.models
import core.models
import core.policy.models
import core.setup.models
import gateway.models
import portal.models
import support.models

FEATURE_MODELS = (
    core.accounts.models,
    core.setup.models,
    core.policy.models,
    core.dkim.models,
    core.evidence.models,
    branding.models,
    archive.models,
    billing_hooks.models,
    conversations.models,
    gateway.models,
    portal.models,
    support.models,
)


def metadata() -> MetaData:
    """``Base.metadata`` with every package's tables in it."""
    return core.models.Base.metadata
