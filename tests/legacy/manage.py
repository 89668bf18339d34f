#!/usr/bin/env python
"""Django's command line for the legacy app: `python -m tests.legacy.manage migrate`."""

import os
import sys
from pathlib import Path


def main() -> None:
    """Run a Django management command."""
    # The repository root, so that `tests.legacy` imports from anywhere.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.legacy.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
