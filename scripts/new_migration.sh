#!/usr/bin/env bash
# Add an Alembic revision for the changes made to the models (core/models.py and every
# package's models.py, all gathered by sealmail/schema.py):
#   scripts/new_migration.sh 0003 "what changed"
# It migrates a scratch SQLite database to head, autogenerates the difference, and formats it.
# Read the generated file before committing: autogenerate misses renames and data changes.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { echo "usage: $0 REV_ID MESSAGE" >&2; exit 2; }
PY=${PY:-.venv/bin/python}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PY" - "$tmp" "$1" "$2" <<'PYEOF'
import sys
from alembic import command
from core.db import _alembic_config, migrate
import sealmail.schema  # every package's tables on Base.metadata, which env.py compares
url = f"sqlite:///{sys.argv[1]}/gen.db"
migrate(url)
command.revision(_alembic_config(url), message=sys.argv[3], autogenerate=True, rev_id=sys.argv[2])
PYEOF
"${RUFF:-.venv/bin/ruff}" format -q core/migrations
"${RUFF:-.venv/bin/ruff}" check --fix -q core/migrations || true
