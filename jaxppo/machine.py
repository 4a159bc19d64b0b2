"""What a measurement ran on: CPU, cores, memory, load, JAX backend and devices, the commit, the date.

One description for every record jaxppo writes beside its numbers (lab results, benchmark JSON), so two
files measured on different machines can be told apart: two CPUs both named "AMD EPYC" differed six-fold
in float32 rate here, which the SIMD extensions show and the model name does not.
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
from typing import Any, Optional

__all__ = ["describe", "short_description", "git_commit", "load_average", "cpu_model", "cpu_vector_extensions"]

_VECTOR_EXTENSIONS = {"avx", "avx2", "fma", "avx512f", "avx512_bf16", "amx_tile"}


def _cpuinfo_field(name: str) -> Optional[str]:
    """The first ``name : value`` line of ``/proc/cpuinfo`` (None where there is no such file or line)."""
    try:
        with open("/proc/cpuinfo", "r", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith(name):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    return _cpuinfo_field("model name") or platform.processor() or platform.machine()


def cpu_vector_extensions() -> list[str]:
    """The SIMD extensions that set a CPU's float32 rate (AVX2, AVX-512, ...), sorted."""
    return sorted(set((_cpuinfo_field("flags") or "").split()) & _VECTOR_EXTENSIONS)


def git_commit() -> Optional[str]:
    """The commit of the checkout jaxppo is imported from, or None outside a git checkout."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        out = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def load_average() -> Optional[list[float]]:
    """The 1, 5 and 15-minute load averages (None where the OS has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def describe() -> dict[str, Any]:
    """The machine, its load and the software, as one JSON-ready dict."""
    import jax

    try:
        import psutil

        memory_gib: Optional[float] = round(psutil.virtual_memory().total / 2**30, 2)
    except ImportError:
        memory_gib = None
    try:
        usable: Optional[int] = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = None
    device = jax.devices()[0]
    return {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpu_model": cpu_model(),
        "cpu_vector_extensions": cpu_vector_extensions(),
        "cpu_count_logical": os.cpu_count(),
        "cpu_count_usable": usable,
        "memory_gib": memory_gib,
        "load_average_1_5_15_at_start": load_average(),
        "jax_version": jax.__version__,
        "jax_backend": jax.default_backend(),
        "jax_devices": [str(d) for d in jax.devices()],
        "device_kind": getattr(device, "device_kind", str(device)),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "git_commit": git_commit(),
    }


def short_description(record: dict[str, Any]) -> str:
    """``"AMD EPYC (cpu, 2 CPUs)"`` from a ``describe()`` record, or from the older records jaxppo's lab
    wrote before this module (keys ``processor``, ``device``, ``cpu_count``), so tables regenerated from
    either read the same."""
    name = next((record[key] for key in ("cpu_model", "processor", "device_kind", "device") if record.get(key)), "?")
    cpus = next((record[key] for key in ("cpu_count_usable", "cpu_count_logical", "cpu_count")
                 if record.get(key) is not None), "?")
    return f"{name} ({record.get('jax_backend', '?')}, {cpus} CPUs)"
