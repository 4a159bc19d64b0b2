"""The ``jaxppo`` command line: one module per verb (``train``, ``eval``, ``plot``, ...) and a thin dispatcher."""

from jaxppo.cli.common import resolve_config
from jaxppo.cli.main import build_parser, main

__all__ = ["main", "build_parser", "resolve_config"]
