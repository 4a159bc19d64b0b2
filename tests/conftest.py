import atexit
import os
import shutil
import tempfile

# Tests run on the CPU with the default float32; keep XLA from grabbing both cores for one test's threads.
os.environ.setdefault("JAX_PLATFORMS", "cpu")

# Many tests compile the same small programs (the tiny run configs, the CLI's subprocesses). JAX's
# persistent compilation cache, in a folder that lives for this test session only, serves a program
# that was compiled before from disk instead of compiling it again: about a quarter of the suite's CPU
# time on the 2-core CI machine. It changes no result (the cache holds the same executable) and no
# trace count. Set through the environment so the subprocesses of the CLI and distributed tests share it.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _cache_dir = tempfile.mkdtemp(prefix="jaxppo-test-xla-cache-")
    atexit.register(shutil.rmtree, _cache_dir, ignore_errors=True)
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache_dir
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "-1")

import jax  # noqa: E402  (after the environment above, which jax reads when first imported)

jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
jax.config.update("jax_persistent_cache_min_compile_time_secs",
                  float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]))
jax.config.update("jax_persistent_cache_min_entry_size_bytes",
                  int(os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"]))
