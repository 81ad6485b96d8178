# Sourced by the scripts: create ./.venv on first use and install the project into it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
STAMP=".venv/.installed-$(cat pyproject.toml | cksum | cut -d' ' -f1)"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
if [ ! -f "$STAMP" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".[dev]" "tox==4.67.15"
  rm -f .venv/.installed-*
  touch "$STAMP"
fi
# Let tox find every pyenv interpreter (3.10-3.13) through the shims.
if command -v pyenv >/dev/null 2>&1; then
  PYENV_VERSION="$(pyenv versions --bare 2>/dev/null | grep -E '^3\.1[0-3]\.[0-9]+$' | sort -V | paste -sd: -)"
  export PYENV_VERSION
fi
