"""Does the critic's initial output swamp small rewards? Acrobot at reward scale 1e-3, same 16 keys,
PopArt + relative value clipping, ``value_head_init_scale`` 0 against PureJaxRL's 1.0.

Mechanism: with a head at scale 1.0 the untrained critic predicts values of order 0.1-1 that differ
between neighbouring states, so the first TD errors ``r + gamma V(s') - V(s)`` are that noise when
``r`` is -0.001, and the actor follows a random, state-dependent "advantage" (PopArt even preserves
those predictions exactly when its statistics move). At scale 0 every initial value is 0 and the first
advantages are the rewards' own, at any scale.

    python benchmarks/value_head_init.py --seeds 16
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

import jaxppo  # noqa: E402
from jaxppo.config import apply_overrides, load_config  # noqa: E402
from jaxppo.diagnosis.core import diagnose  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--config", default="ppo_acrobot")
    parser.add_argument("--reward-scale", type=float, default=1e-3)
    parser.add_argument("--total-timesteps", type=int, default=500_000)
    parser.add_argument("--head-scales", default="0,1")
    parser.add_argument("--out", default=os.path.join(common.RESULTS_DIR, "value_head_init_cpu.json"))
    args = parser.parse_args()
    result = {"benchmark": "value_head_init", "machine": common.machine_info(), "config": args.config,
              "reward_scale": args.reward_scale, "total_timesteps": args.total_timesteps, "seeds": args.seeds,
              "runs": []}
    for head in (float(x) for x in args.head_scales.split(",")):
        config = apply_overrides(load_config(args.config), {
            "total_timesteps": args.total_timesteps, "return_normalization": "popart", "value_clipping": "relative",
            "env_reward_scale": args.reward_scale, "value_head_init_scale": head})
        start = time.perf_counter()
        _, metrics = jaxppo.train(config, num_seeds=args.seeds, seed=0)
        metrics = {k: np.asarray(v) for k, v in metrics.items()}
        diagnosis = diagnose(metrics, config)
        final = metrics["episode_return"][:, -max(1, config.num_updates // 20):].mean(axis=1) / args.reward_scale
        run = {"value_head_init_scale": head, "num_healthy": diagnosis.num_healthy,
               "counts": {k: int(v) for k, v in diagnosis.counts.items() if v},
               "final_return_per_seed": [round(float(x), 1) for x in final],
               "seconds_including_compile": round(time.perf_counter() - start, 1)}
        result["runs"].append(run)
        common.write_json_atomic(args.out, result)
        print(run, flush=True)


if __name__ == "__main__":
    main()
