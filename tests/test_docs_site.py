"""The documentation site: every public name on the API pages has a docstring, every building block has
a page, and ``mkdocs build --strict`` (warnings as errors: broken links, bad anchors, unresolved
references) succeeds."""

from __future__ import annotations

import glob
import importlib
import inspect
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _documented_modules() -> list[str]:
    modules = []
    for path in sorted(glob.glob(os.path.join(ROOT, "docs", "api", "*.md"))):
        with open(path) as f:
            modules += re.findall(r"^::: (\S+)", f.read(), re.M)
    return modules


def test_every_public_name_on_the_api_pages_has_a_docstring():
    missing = []
    for module_name in _documented_modules():
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if (inspect.isclass(obj) or inspect.isfunction(obj)) and not (inspect.getdoc(obj) or "").strip():
                missing.append(f"{module_name}.{name}")
    assert missing == []


def test_every_building_block_has_an_api_page():
    from test_block_imports import BLOCKS

    assert sorted(set(BLOCKS) - set(_documented_modules())) == []


def test_the_site_builds_with_warnings_as_errors(tmp_path):
    pytest.importorskip("mkdocstrings")  # in the dev extra, so CI builds the site
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    page = (tmp_path / "site" / "api" / "returns_losses" / "index.html").read_text()
    assert "gae_advantages" in page and "Generalised advantage estimates" in page  # the docstring rendered
