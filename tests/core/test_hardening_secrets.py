"""The services refuse to start outside development with the default or a short secret key."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from pydantic import ValidationError

from core.settings import DEV_SECRET, REPO_ROOT, AuthSettings

STRONG = "0" * 16 + "a" * 48


@pytest.mark.parametrize("environment", ["test", "production"])
@pytest.mark.parametrize("key", [DEV_SECRET, "short", ""])
def test_weak_keys_are_refused_outside_development(environment: str, key: str) -> None:
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        AuthSettings(environment=environment, secret_key=key)  # type: ignore[arg-type]


def test_development_keeps_its_default_and_real_keys_pass() -> None:
    assert AuthSettings(environment="development", secret_key=DEV_SECRET).secret_key == DEV_SECRET
    assert AuthSettings(environment="production", secret_key=STRONG).secret_key == STRONG


@pytest.mark.parametrize("factory", ["api.main:create_app", "pipeline.app:create_app"])
def test_both_services_refuse_to_start_with_the_default_key(factory: str) -> None:
    env = {**os.environ, "ENVIRONMENT": "production", "SECRET_KEY": DEV_SECRET}
    module, _, name = factory.partition(":")
    started = subprocess.run(
        [sys.executable, "-c", f"import {module} as m; m.{name}()"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert started.returncode != 0
    assert "SECRET_KEY must be set" in started.stderr
