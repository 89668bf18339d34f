"""The import rules of the architecture hold (import-linter, contracts in `.importlinter`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from core.settings import REPO_ROOT

_LINT = Path(sys.executable).parent / "lint-imports"


def _lint(root: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(_LINT), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, check=False
    )


def test_api_pipeline_and_core_keep_their_import_rules() -> None:
    """api and pipeline import only core of each other; core imports neither, nor FastAPI."""
    result = _lint(REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


def test_a_forbidden_import_is_caught(tmp_path: Path) -> None:
    """The contracts bite: a copy of the tree where core imports pipeline breaks one."""
    for package in ("api", "pipeline", "core", "http_common"):
        shutil.copytree(REPO_ROOT / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    shutil.copy(REPO_ROOT / ".importlinter", tmp_path / ".importlinter")
    errors = tmp_path / "core" / "errors.py"
    errors.write_text(errors.read_text() + "\nimport pipeline.config  # noqa\n")
    result = _lint(tmp_path, env={"PYTHONPATH": str(tmp_path), "PATH": ""})
    assert result.returncode != 0
    assert "core imports neither service" in result.stdout
    assert "core.errors -> pipeline.config" in result.stdout
