#!/usr/bin/env bash
# Regenerate the initial Alembic migration from core/models.py. Only while no release has
# shipped a schema: after the first release, add a new revision instead.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
tmp=$(mktemp -d)
rm -f core/migrations/versions/0001_initial_schema.py
"$PY" - "$tmp" <<'PYEOF'
import sys
from alembic import command
from core.db import _alembic_config
command.revision(_alembic_config(f"sqlite:///{sys.argv[1]}/gen.db"), message="initial schema",
                 autogenerate=True, rev_id="0001")
PYEOF
rm -rf "$tmp"
"${RUFF:-.venv/bin/ruff}" format -q core/migrations
"${RUFF:-.venv/bin/ruff}" check --fix -q core/migrations || true
echo "regenerated core/migrations/versions/0001_initial_schema.py"
