"""XLA options jaxppo compiles its own programs with: a lighter LLVM pipeline on the CPU.

A training program is one large XLA module, and on the CPU most of its compile time is LLVM turning
its kernels into machine code. At LLVM's ``-O1`` (``xla_backend_optimization_level=1``; XLA's default
is 3) the same programs compile in a little over half the time and run at the same speed, because the
hot loops are matmuls that call Eigen whatever LLVM's level. The results are not bit-identical to
level 3 (code generation may order float operations differently), only equal in distribution.
Measurements: ``benchmarks/compile_options.py``, ``benchmarks/README.md``.

The option is passed per program (``jax.jit(..., compiler_options=...)``), so it changes only
jaxppo's programs, never the rest of a user's process, and only on the CPU: GPU and TPU programs
compile with XLA's defaults. ``JAXPPO_CPU_OPTIMIZATION_LEVEL`` overrides the level (``3`` restores
XLA's default; ``default`` passes no option at all).
"""

from __future__ import annotations

import os
from typing import Any, Callable, Optional

import jax

__all__ = ["CPU_OPTIMIZATION_LEVEL", "ENV_VARIABLE", "compiler_options", "jit"]

CPU_OPTIMIZATION_LEVEL = 1
ENV_VARIABLE = "JAXPPO_CPU_OPTIMIZATION_LEVEL"


def _cpu_level() -> Optional[int]:
    raw = os.environ.get(ENV_VARIABLE, "").strip()
    if not raw:
        return CPU_OPTIMIZATION_LEVEL
    if raw == "default":
        return None
    if raw in {"0", "1", "2", "3"}:
        return int(raw)
    raise ValueError(f"{ENV_VARIABLE}={raw!r} must be 0, 1, 2, 3 or 'default'.")


def compiler_options(platform: Optional[str] = None) -> dict[str, Any]:
    """The XLA options for a jaxppo program on ``platform`` (default: JAX's default backend).

    ``{"xla_backend_optimization_level": 1}`` on the CPU, ``{}`` elsewhere.
    """
    platform = jax.default_backend() if platform is None else platform
    if platform != "cpu":
        return {}
    level = _cpu_level()
    return {} if level is None else {"xla_backend_optimization_level": level}


def jit(fn: Callable, *, platform: Optional[str] = None, **jit_kwargs: Any) -> Callable:
    """``jax.jit(fn, **jit_kwargs)`` compiled with ``compiler_options(platform)``."""
    return jax.jit(fn, compiler_options=compiler_options(platform) or None, **jit_kwargs)
