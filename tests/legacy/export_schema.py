"""Write the legacy app's OpenAPI schema (drf-spectacular) to tests/contract/openapi_schema.json.

.venv/bin/python -m tests.legacy.export_schema [PATH]
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from tests.legacy.database import REPO_ROOT, manage

SCHEMA_PATH = REPO_ROOT / "tests" / "contract" / "openapi_schema.json"
# Generating the schema reads no rows; the URL only has to parse.
_NO_DATABASE = "postgresql://legacy@127.0.0.1:1/legacy"


def export(path: Path = SCHEMA_PATH) -> dict[str, object]:
    """Generate, validate and write the schema (sorted keys, so diffs stay small)."""
    with tempfile.TemporaryDirectory() as work:
        raw = Path(work) / "schema.json"
        manage(_NO_DATABASE, "spectacular", "--format", "openapi-json", "--validate",
               "--fail-on-warn", "--file", str(raw))  # fmt: skip
        schema: dict[str, object] = json.loads(raw.read_text())
    path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
    return schema


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else SCHEMA_PATH
    export(target)
    print(f"wrote {target}")
