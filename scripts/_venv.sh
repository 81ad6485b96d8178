# Sourced by the scripts: create ./.venv on first use and install the project into it, at the locked versions.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
# Reinstall whenever the project's dependencies or the lock change.
STAMP=".venv/.installed-$(cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
if [ ! -f "$STAMP" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  PIP_CONSTRAINT="$ROOT/constraints.txt" .venv/bin/python -m pip install --quiet -e ".[dev]"
  rm -f .venv/.installed-*
  touch "$STAMP"
fi
# Let tox find every pyenv interpreter (3.10-3.13): put their bin folders first on PATH.
if command -v pyenv >/dev/null 2>&1; then
  PYENV_ROOT_DIR="$(pyenv root)"
  for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.1[0-3]\.[0-9]+$' | sort -V -r); do
    PATH="$PYENV_ROOT_DIR/versions/$v/bin:$PATH"
  done
  export PATH
fi
