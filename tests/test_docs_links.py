"""The README's links to the OpenAPI docs lead somewhere on both services."""

from __future__ import annotations

import re

import httpx

from core.settings import REPO_ROOT
from tests.conftest import Stack


def test_readme_docs_links_answer(stack: Stack) -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    links = re.findall(r"http://127\.0\.0\.1:(8000|8001)(/[\w/.]*docs)\b", readme)
    assert {port for port, _ in links} == {"8000", "8001"}, links
    for port, path in links:
        base = stack.api_url if port == "8000" else stack.etl_url
        response = httpx.get(base + path, timeout=10)
        assert response.status_code == 200, (path, response.status_code)
        assert "swagger" in response.text.lower()
