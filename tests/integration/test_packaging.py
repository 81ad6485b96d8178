"""The installed product is the service alone: the wheel carries ``backend`` (and its migrations), no dev tools."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOCAL_ONLY = (".git", ".venv", ".tox", ".devdb", "build", "*.egg-info", "__pycache__", ".*_cache", "*.raw")


def test_the_wheel_holds_the_service_and_no_devtools(tmp_path: Path) -> None:
    """Build the wheel as an installer would and list it: backend and its SQL, nothing else of the checkout."""
    source = tmp_path / "src"  # a copy: setuptools builds in the source tree
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*LOCAL_ONLY))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            ".",
        ],
        cwd=source,
        check=True,
    )
    (wheel,) = tmp_path.glob("rotation_picker-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/", 1)[0] for name in names}
    assert tops == {"backend", next(t for t in tops if t.endswith(".dist-info"))}, sorted(tops)
    assert "backend/db/migrations/0001_answers.sql" in names
    assert not [n for n in names if n.startswith(("devtools", "bench", "tests")) or n == "server.py"]
