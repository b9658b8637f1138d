#!/usr/bin/env bash
# THE test command: installs what the tests need (from zero on a fresh Debian machine, quickly
# when it is already there), then runs ruff check, ruff format --check and the whole pytest
# suite (and mypy on core/). Exits non-zero on any failure, including "no tests collected".
#
#   bash scripts/test.sh                 # everything
#   bash scripts/test.sh tests/core -x   # extra arguments go to pytest
#
# Environment: PYTHON (interpreter for the venv, default python3), SEALMAIL_TEST_PG (a
# PostgreSQL URL whose user may create databases; default the server at 127.0.0.1:5432).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv"
PYTHON=${PYTHON:-python3}
export DEBIAN_FRONTEND=noninteractive
PG_DEFAULT="postgresql://postgres@127.0.0.1:5432/test"

section() { printf '\n==== %s ====\n' "$*"; }
die() {
  printf 'scripts/test.sh: %s\n' "$*" >&2
  exit 1
}
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else
    die "need root to run: $*"
  fi
}
pg_bin() { # the directory holding initdb/pg_ctl, or nothing
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && {
      echo "$d"
      return 0
    }
  done
  command -v pg_ctl >/dev/null && command -v initdb >/dev/null && dirname "$(command -v pg_ctl)"
  return 0
}

# ---------------------------------------------------------------------------------------------
section "system packages"
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v swaks >/dev/null || missing+=(swaks)
# libfaketime: end-to-end tests move the clock of a running `sealmail serve` (expiry)
[ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1 ] || missing+=(faketime)
# swaks --tls needs Perl's TLS modules (not pulled in without recommends)
perl -MNet::SSLeay -MIO::Socket::SSL -e 1 2>/dev/null || missing+=(libnet-ssleay-perl libio-socket-ssl-perl)
command -v gpg >/dev/null || missing+=(gnupg)
command -v openssl >/dev/null || missing+=(openssl)
[ -n "$(pg_bin)" ] || missing+=(postgresql)
"$PYTHON" -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  as_root apt-get update -q
  as_root apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
else
  echo "all present (chromium, swaks, faketime, gnupg, openssl, postgresql, python venv)"
fi

# ---------------------------------------------------------------------------------------------
section "python environment"
if [ ! -x "$VENV/bin/python" ]; then
  echo "creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
stamp="$VENV/.sealmail-install-stamp"
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || ! "$PY" -c 'import core, pytest, ruff' 2>/dev/null; then
  "$PY" -m pip install -q --disable-pip-version-check --upgrade pip
  "$PY" -m pip install -q --disable-pip-version-check -e '.[test]'
  echo "$want" >"$stamp"
else
  echo "up to date ($("$PY" -V))"
fi

# ---------------------------------------------------------------------------------------------
section "npm (the Outlook add-in's tests: Office.js mock, manifest tools)"
# --- addin ---
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  as_root apt-get update -q
  as_root apt-get install -y -q --no-install-recommends nodejs npm </dev/null
fi
ADDIN_JS=tests/addin/js
npm_stamp="$ADDIN_JS/node_modules/.sealmail-npm-stamp"
npm_want=$(sha256sum "$ADDIN_JS/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$npm_stamp" 2>/dev/null)" != "$npm_want" ]; then
  (cd "$ADDIN_JS" && npm ci --no-audit --no-fund)
  echo "$npm_want" >"$npm_stamp"
else
  echo "up to date (node $(node --version))"
fi
# --- end addin ---

# ---------------------------------------------------------------------------------------------
section "postgresql"
# Try the URL; print "ok", "noauth" (server up, we may not log in) or "down".
pg_probe() {
  "$PY" - "$1" <<'PYEOF'
import asyncio, sys
import asyncpg

url = sys.argv[1].replace("postgresql://", "postgres://", 1)
base, _, db = url.rpartition("/")

async def main() -> str:
    try:
        conn = await asyncpg.connect(base + "/postgres", timeout=5)
    except (OSError, asyncio.TimeoutError):
        return "down"
    except Exception:  # auth refused, no such role, server starting up
        return "noauth"
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", db):
            await conn.execute(f'CREATE DATABASE "{db}"')
    finally:
        await conn.close()
    return "ok"

print(asyncio.run(main()))
PYEOF
}
PG_URL=${SEALMAIL_TEST_PG:-$PG_DEFAULT}
state=$(pg_probe "$PG_URL")
if [ "$state" = down ] && [ -z "${SEALMAIL_TEST_PG:-}" ] && command -v pg_ctlcluster >/dev/null \
  && [ -d /etc/postgresql ] && [ -n "$(ls /etc/postgresql 2>/dev/null)" ]; then
  ver=$(ls /etc/postgresql | sort -V | tail -n 1)
  echo "starting cluster $ver/main"
  as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
  for _ in $(seq 1 20); do
    state=$(pg_probe "$PG_URL")
    [ "$state" = down ] || break
    sleep 0.5
  done
fi
if [ "$state" != ok ]; then
  # No usable shared server (down, or it does not trust us): a private instance for this run,
  # trust auth on loopback, removed at exit.
  bin=$(pg_bin)
  [ -n "$bin" ] || die "PostgreSQL is $state at $PG_URL and initdb/pg_ctl are not installed"
  PGTMP=$(mktemp -d /tmp/sealmail-pg.XXXXXX)
  trap 'rm -rf "$PGTMP"' EXIT
  port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  run_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
  [ "$(id -u)" -ne 0 ] || chown postgres "$PGTMP"
  echo "shared server is $state; starting a private instance on 127.0.0.1:$port"
  run_pg "$bin/initdb" -A trust -U postgres --no-locale -E UTF8 -D "$PGTMP/data" >/dev/null
  run_pg "$bin/pg_ctl" -s -w -D "$PGTMP/data" -l "$PGTMP/log" \
    -o "-h 127.0.0.1 -p $port -k $PGTMP -c fsync=off" start \
    || { tail -n 20 "$PGTMP/log" >&2; die "private PostgreSQL did not start"; }
  trap 'run_pg "$bin/pg_ctl" -s -D "$PGTMP/data" -m fast stop || true; rm -rf "$PGTMP"' EXIT
  PG_URL="postgresql://postgres@127.0.0.1:$port/test"
  state=$(pg_probe "$PG_URL")
  [ "$state" = ok ] || die "private PostgreSQL did not come up ($state)"
fi
export SEALMAIL_TEST_PG="$PG_URL"
echo "using $SEALMAIL_TEST_PG"

# ---------------------------------------------------------------------------------------------
failed=()
section "ruff check"
"$VENV/bin/ruff" check . || failed+=("ruff check")

section "ruff format --check"
"$VENV/bin/ruff" format --check . || failed+=("ruff format")

section "mypy (core/)"
"$VENV/bin/mypy" || failed+=("mypy")

section "pytest"
# One pytest worker per core (pytest-xdist, SEALMAIL_TEST_WORKERS to change it; 0 runs them
# in this process): most of the suite's time is spent waiting on the processes, sockets and
# browsers it starts, so two workers on two cores nearly halve the run. The temporary
# directory is short on purpose: a GnuPG home under it must leave room for its socket path.
workers=${SEALMAIL_TEST_WORKERS:-$(nproc 2>/dev/null || echo 2)}
BASETEMP=$(mktemp -d /tmp/smt.XXXXXX)
set +e
"$VENV/bin/pytest" -p no:cacheprovider -n "$workers" --dist worksteal --basetemp "$BASETEMP" \
  --durations=30 "$@"
rc=$?
set -e
rm -rf "$BASETEMP"
case $rc in
  0) ;;
  5) failed+=("pytest (no tests collected)") ;;
  *) failed+=("pytest (exit $rc)") ;;
esac

section "result"
if [ ${#failed[@]} -gt 0 ]; then
  printf 'FAILED: %s\n' "${failed[@]}"
  exit 1
fi
echo "all checks passed"
