import os

# Tests run on the CPU with the default float32; keep XLA from grabbing both cores for one test's threads.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
