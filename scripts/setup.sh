#!/usr/bin/env bash
# Creates .venv and installs every package of the monorepo editable, with test extras, under the
# pinned constraints; then makes sure the system packages the tests need are there.
# Idempotent: the Makefile only calls it again when a pyproject, the constraints or this script change.
set -euo pipefail
cd "$(dirname "$0")/.."

pick_python() {
  for candidate in "${PYTHON:-}" python3.11 python3.12 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "error: Python >= 3.11 not found; install it or set PYTHON=/path/to/python3.11" >&2
  return 1
}

if [ ! -x .venv/bin/python ]; then
  py=$(pick_python)
  echo "setup: creating .venv with $($py --version)"
  "$py" -m venv .venv
fi

packages=()
for pkg in packages/*/; do
  pkg=${pkg%/}
  if grep -q '^test = ' "$pkg/pyproject.toml"; then packages+=(-e "$pkg[test]"); else packages+=(-e "$pkg"); fi
done
echo "setup: installing ${#packages[@]} editable packages (constraints: requirements/constraints.txt)"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -c requirements/constraints.txt "${packages[@]}"
bash scripts/system-deps.sh
