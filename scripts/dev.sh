#!/usr/bin/env bash
# One entry point on a fresh Debian machine (as root, or with sudo):
#   bash scripts/dev.sh demo    set up, then run the main job on the built-in lab
#   bash scripts/dev.sh test    set up, then run lint, type checks, the test suite and the wheel check
#   bash scripts/dev.sh setup   only set up (apt packages, .venv, the vcsim build)
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(python3 python3-venv python3-pip golang-go golang-github-vmware-govmomi-dev ca-certificates)
# Only the tests need a browser: they open `migrate report`'s HTML in headless Chromium.
TEST_APT_PACKAGES=(chromium chromium-driver)
VENV=.venv
LAB_DIR=${MIGRATE_LAB_DIR:-migrate-lab}

say() { printf '==> %s\n' "$*" >&2; }

install_apt_packages() {
  local missing=() pkg sudo=""
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  ((${#missing[@]})) || return 0
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  say "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
}

pick_python() {
  local candidate
  for candidate in python3 /usr/bin/python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "error: Python >= 3.11 with venv is needed" >&2; return 1
}

setup_venv() {
  local stamp="$VENV/.installed" want
  want=$(sha256sum pyproject.toml | cut -d' ' -f1)
  if [ -x "$VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  say "creating the virtualenv in $VENV"
  [ -x "$VENV/bin/python" ] || "$(pick_python)" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e '.[dev]'
  echo "$want" > "$stamp"
}

build_simulator() {
  say "building the vCenter simulator (cached after the first time)"
  "$VENV/bin/python" -c 'from migrate.lab.vcsim_build import vcsim_binary; print(vcsim_binary())' >&2
}

setup() {
  install_apt_packages "${APT_PACKAGES[@]}"
  setup_venv
  build_simulator
}

demo() {
  setup
  local m="$VENV/bin/migrate" d="$LAB_DIR"
  say "starting a fresh lab in $d (a running one is stopped first: the demo migrates its VMs)"
  "$m" lab down --dir "$d" >/dev/null 2>&1 || true
  rm -f "$d"/run.db "$d"/run.db-wal "$d"/run.db-shm
  "$m" lab up --dir "$d"
  say "checking every endpoint of $d/site.yaml"
  "$m" check --config "$d/site.yaml"
  say "discovering the on-prem vCenter into $d/inventory.json"
  "$m" discover --config "$d/site.yaml" --out "$d/inventory.json"
  say "building the dependency graph from the inventory and $d/flows.csv"
  "$m" graph --inventory "$d/inventory.json" --flows "$d/flows.csv" --out "$d/graph.json"
  say "planning waves of at most 15 VMs, ramping up from 5"
  "$m" plan --inventory "$d/inventory.json" --flows "$d/flows.csv" --max-vms 15 --ramp 5 --out "$d/plan.yaml"
  say "editing $d/plan.yaml: its smallest wave re-platforms to native EC2 (lab up wrote the subnets), the rest move cold"
  "$VENV/bin/python" - "$d/plan.yaml" <<'PY'
import sys
from planners.plan_io import load_plan, write_plan
plan = load_plan(sys.argv[1])
wave = min(reversed(plan.waves), key=lambda w: len(w.vms))   # the smallest wave; the last of equals
wave.method = "replatform"
write_plan(plan, sys.argv[1])
print(f"{wave.name}: {len(wave.vms)} VMs, method replatform")
PY
  "$m" validate "$d/plan.yaml" --inventory "$d/inventory.json" --flows "$d/flows.csv"
  say "sizing the cloud cluster (i4i.metal hosts) wave by wave"
  "$m" size --inventory "$d/inventory.json" --plan "$d/plan.yaml" --config "$d/site.yaml"
  say "dry-run: every action the run will take, prechecks against both vCenters, into $d/dry-run.json"
  "$m" run "$d/plan.yaml" --config "$d/site.yaml" --dry-run --json >"$d/dry-run.json"
  say "running the plan: cold migration into the cloud vCenter, one wave re-platformed to EC2, journaled in $d/run.db"
  "$m" run "$d/plan.yaml" --config "$d/site.yaml" --journal "$d/run.db"
  "$m" status --journal "$d/run.db"
  say "the lab keeps running; undo with: $m rollback --config $d/site.yaml --journal $d/run.db"
  say "stop the lab with: $m lab down --dir $d"
}

# The example plugin (tests/plugins/migrate-example) goes into the test venv as a user installs a plugin,
# not editable; built from a copy so the build leaves nothing (build/, egg-info) in the checkout.
install_test_plugin() {
  local tmp rc=0
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/migrate-plugin.XXXXXX")
  tar -C tests/plugins --exclude=__pycache__ --exclude='*.pyc' -cf - migrate-example | tar -C "$tmp" -xf -
  "$VENV/bin/python" -m pip install -q --no-deps "$tmp/migrate-example" || rc=$?
  rm -rf "$tmp"
  return "$rc"
}

run_tests() {
  setup
  install_apt_packages "${TEST_APT_PACKAGES[@]}"
  say "installing the example plugin (tests/plugins/migrate-example) into $VENV"
  install_test_plugin
  say "ruff"
  "$VENV/bin/ruff" check .
  say "mypy"
  "$VENV/bin/mypy"
  "$VENV/bin/mypy" --follow-imports=silent tests/plugins/migrate-example/src/migrate_example
  say "import-linter (the layers: HANDBOOK section 2)"
  "$VENV/bin/lint-imports" --no-cache
  say "pytest"
  "$VENV/bin/pytest" "$@"
  say "wheel check"
  bash scripts/wheel_check.sh
}

case "${1:-}" in
  setup) setup ;;
  demo) demo ;;
  test) shift; run_tests "$@" ;;
  *) echo "usage: bash scripts/dev.sh demo|test|setup" >&2; exit 2 ;;
esac
