#!/usr/bin/env bash
# Build the wheel, install it (not the checkout) into a fresh virtualenv outside the checkout, and run the
# main job on the built-in lab from another directory, so that only what the wheel ships is used:
#   bash scripts/wheel_check.sh            (scripts/dev.sh test runs it after pytest)
# Without the `lab` extra, `import migrate.cli.main` must work and `migrate lab up` must print the one-line
# hint and exit 1; with it, lab up -> discover -> plan -> run -> status -> lab down must each exit 0.
# The simulator build is cached (~/.cache/migrate/vcsim, keyed by main.go's hash): the wheel finds the
# checkout's build. MIGRATE_WHEEL_CHECK_KEEP=1 keeps the temporary directory for a look afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY="$ROOT/.venv/bin/python"
unset PYTHONPATH VIRTUAL_ENV MIGRATE_VCSIM_SOURCE

WORK=$(mktemp -d "${TMPDIR:-/tmp}/migrate-wheel.XXXXXX")
VENV="$WORK/venv"
LAB="$WORK/lab"
STARTED=$SECONDS
say() { printf '    wheel check: %s (%ds)\n' "$*" "$((SECONDS - STARTED))" >&2; }
fail() { printf 'wheel check FAILED: %s\n' "$*" >&2; exit 1; }

cleanup() {
  local rc=$?
  if [ -x "$VENV/bin/migrate" ] && [ -e "$LAB" ]; then
    (cd "$WORK" && "$VENV/bin/migrate" lab down --dir "$LAB" >/dev/null 2>&1) || rc=1
  fi
  if [ "${MIGRATE_WHEEL_CHECK_KEEP:-0}" = 1 ]; then
    echo "kept $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Build from a copy of what the wheel is made of, so the build leaves nothing (build/, egg-info) in the checkout.
say "building the wheel"
mkdir "$WORK/src"
tar -C "$ROOT" --exclude=__pycache__ --exclude='*.pyc' -cf - pyproject.toml README.md migrate planners adapters |
  tar -C "$WORK/src" -xf -
quietly() {   # run a command with its output in $WORK/log, shown only when it fails
  "$@" >"$WORK/log" 2>&1 || { grep -v "^WARNING: Location" "$WORK/log" >&2; fail "'$*' failed"; }
}
quietly "$PY" -m pip wheel -q --no-deps -w "$WORK/dist" "$WORK/src"
WHEEL=$(ls "$WORK"/dist/vmware_cloud_migrate-*.whl)
for member in migrate/playbooks/cold.yaml migrate/lab/vcsim/main.go migrate/schemas/plan.schema.json; do
  "$PY" -c 'import sys, zipfile; sys.exit(sys.argv[2] not in zipfile.ZipFile(sys.argv[1]).namelist())' \
    "$WHEEL" "$member" || fail "$member is not in $WHEEL"
done

# A fresh virtualenv; the local pip installs into it (and uses its cache), so no pip bootstrap is needed.
# --no-compile: byte-compiling every dependency (botocore, sympy, ...) would take most of the check's time;
# what runs is compiled on first import instead.
say "installing the wheel without extras into $VENV"
"$PY" -m venv --without-pip "$VENV"
pip_into() { quietly "$PY" -m pip --python "$VENV/bin/python" install -q --no-compile "$@"; }
pip_into "$WHEEL"

cd "$WORK"   # not the checkout: only the installed package can be imported
"$VENV/bin/python" - "$ROOT" <<'EOF' || fail "the installed package is not the one in $VENV, the CLI imports a lab module, or a built-in method or driver is not an entry point"
import sys, migrate, migrate.cli.main
root = sys.argv[1]
assert not migrate.__file__.startswith(root + "/"), migrate.__file__
lab_modules = {"moto", "cryptography", "flask"} & {name.split(".")[0] for name in sys.modules}
assert not lab_modules, lab_modules
from importlib.metadata import entry_points
methods = sorted(e.name for e in entry_points(group="migrate.methods"))
assert {"cold", "live", "noop", "replatform"} <= set(methods), methods
drivers = sorted(e.name for e in entry_points(group="migrate.drivers"))
assert {"vcenter", "aws", "noop"} <= set(drivers), drivers
EOF
rc=0
"$VENV/bin/migrate" lab up --dir "$LAB" --vms 10 >"$WORK/no-extra.out" 2>"$WORK/no-extra.err" || rc=$?
[ "$rc" -eq 1 ] || fail "lab up without the lab extra: exit $rc, expected 1"
grep -q "pip install 'vmware-cloud-migrate\[lab\]'" "$WORK/no-extra.err" || fail "no hint: $(cat "$WORK/no-extra.err")"
! grep -q Traceback "$WORK/no-extra.err" || fail "lab up without the lab extra printed a traceback"
[ "$(wc -l <"$WORK/no-extra.err")" -eq 1 ] || fail "the hint is not one line: $(cat "$WORK/no-extra.err")"

say "adding the lab extra"
pip_into "$WHEEL[lab]"

step() {   # step NAME COMMAND...: run an installed `migrate` command, fail with its output on a non-zero exit
  local name=$1 code=0
  shift
  say "$name"
  "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" || code=$?
  if [ "$code" -ne 0 ]; then
    cat "$WORK/$name.out" "$WORK/$name.err" >&2
    fail "'$*' exited $code"
  fi
}
M="$VENV/bin/migrate"
step lab-up "$M" lab up --dir "$LAB" --vms 10
step discover "$M" discover --config "$LAB/site.yaml" --out inv.json
step plan "$M" plan --inventory inv.json --flows "$LAB/flows.csv" --max-vms 5 --out plan.yaml
step run "$M" run plan.yaml --config "$LAB/site.yaml" --journal run.db
step status "$M" status --journal run.db --json
"$VENV/bin/python" - "$WORK/status.out" <<'EOF' || fail "status: not every VM completed"
import json, sys
vms = json.load(open(sys.argv[1]))["vms"]
states = {vm.get("state") for vm in vms}
assert len(vms) == 10 and states == {"completed"}, (len(vms), states)
EOF
step lab-down "$M" lab down --dir "$LAB"
[ ! -e "$LAB" ] || fail "lab down left $LAB behind"
say "ok"
