"""Facts about known environments: the return levels and reward bounds the return-based detectors need.

``ENV_FACTS`` holds them per environment name; ``env_facts(config)`` looks up the run's environment and
scales the facts by its ``env_reward_scale``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

from jaxppo.diagnosis.series import finite_number

__all__ = ["ENV_FACTS", "EnvFacts", "env_facts"]


@dataclasses.dataclass(frozen=True)
class EnvFacts:
    """What the return-based detectors need to know about an environment.

    ``random_return``: mean episode return of a uniformly random policy (the "no learning" level).
    ``solved_return``: the return above which a seed counts as solved (None: no agreed threshold).
    ``reward_low`` / ``reward_high``: bounds of one step's reward, for the Q-value bound
    ``max(|low|, |high|) / (1 - gamma)`` (None: unknown, the detector falls back to growth).
    ``discrete``: whether actions are discrete (entropy collapse is judged relative to ``log(A)``).
    ``observations_predict_return``: False where no critic can beat the mean return, because the
    observation carries almost no information about it (``value_loss_stuck`` is then not a pathology).
    """

    random_return: Optional[float]
    solved_return: Optional[float]
    reward_low: Optional[float]
    reward_high: Optional[float]
    discrete: Optional[bool]
    observations_predict_return: bool = True

    def scaled(self, scale: float) -> "EnvFacts":
        """The facts with every reward multiplied by ``scale`` (``env_reward_scale``); bounds swap if negative."""
        def mul(x: Optional[float]) -> Optional[float]:
            return None if x is None else x * scale

        low, high = mul(self.reward_low), mul(self.reward_high)
        if low is not None and high is not None and low > high:
            low, high = high, low
        solved = mul(self.solved_return) if scale > 0 else None  # a negative scale turns "solved" upside down
        return dataclasses.replace(self, random_return=mul(self.random_return), solved_return=solved,
                                   reward_low=low, reward_high=high)


# Random-policy returns were measured with benchmarks/diagnose_advice.py --random-returns (256
# episodes of a uniform random policy per env, benchmarks/results/random_policy_returns.json). Solved thresholds are gym's
# reward_threshold where it exists; Pendulum has none, and -400 (a pendulum that swings up and holds)
# is the solved level the diagnosis, and so the debugging reports' lab grids, judge Pendulum by.
ENV_FACTS: dict[str, EnvFacts] = {
    "CartPole-v1": EnvFacts(random_return=21.1, solved_return=475.0, reward_low=0.0, reward_high=1.0, discrete=True),
    "Acrobot-v1": EnvFacts(random_return=-497.7, solved_return=-100.0, reward_low=-1.0, reward_high=0.0,
                           discrete=True),
    "MountainCar-v0": EnvFacts(random_return=-200.0, solved_return=-110.0, reward_low=-1.0, reward_high=0.0,
                               discrete=True),
    # Reward is -(theta^2 + 0.1 thetadot^2 + 0.001 u^2) with |theta| <= pi, |thetadot| <= 8, |u| <= 2.
    "Pendulum-v1": EnvFacts(random_return=-1193.8, solved_return=-400.0, reward_low=-16.2736, reward_high=0.0,
                            discrete=False),
    # MinAtar rewards are 0 or 1 per step (Breakout: a brick; Asterix, Freeway, SpaceInvaders alike).
    "Breakout-MinAtar": EnvFacts(random_return=0.45, solved_return=None, reward_low=0.0, reward_high=1.0, discrete=True),
    "Asterix-MinAtar": EnvFacts(random_return=0.48, solved_return=None, reward_low=0.0, reward_high=1.0, discrete=True),
    "Freeway-MinAtar": EnvFacts(random_return=0.39, solved_return=None, reward_low=0.0, reward_high=1.0, discrete=True),
    "SpaceInvaders-MinAtar": EnvFacts(random_return=4.36, solved_return=None, reward_low=0.0, reward_high=1.0,
                                      discrete=True),
    # The stress env of report 004 (jaxppo.envs), default EnvParams: 1000 events per episode, attacks with
    # probability p = 181/1600. A uniform random policy earns per event 0.5 * (p * (5000 - 10000) +
    # (1 - p) * (100 - 1000)) = -681.9, so -681,906 per episode (closed form, checked in
    # tests/test_diagnose.py). No agreed "solved" return: held-out F1 is its score. One event pays
    # between -10000 (an attack allowed) and +5000 (an attack blocked). Events are independent and the
    # observation holds no clock, so one event's features explain well under 1% of the discounted
    # return's variance: a critic at the mean (explained variance ~0) is the best there is, and a
    # learning PPO run shows value_loss_stuck's signature on every seed (16/16 at reward scales 1e-3,
    # 1 and 1e3 with held-out F1 ~0.70). That detector is therefore off for this env.
    # Memory tasks. Hiding the velocities changes nothing for a random policy, so the random returns
    # and solved levels are CartPole's and Pendulum's. MemoryChain (bsuite, memory_length 5): the reward
    # is +1 or -1 at the episode's end for recalling the first observation's context, 0 in expectation
    # for a random policy; 0.9 is a policy that recalls it on 95% of episodes.
    "CartPole-NoVelocity-v1": EnvFacts(random_return=21.1, solved_return=475.0, reward_low=0.0, reward_high=1.0,
                                       discrete=True),
    "Pendulum-NoVelocity-v1": EnvFacts(random_return=-1193.8, solved_return=-400.0, reward_low=-16.2736,
                                       reward_high=0.0, discrete=False),
    "MemoryChain-bsuite": EnvFacts(random_return=0.0, solved_return=0.9, reward_low=-1.0, reward_high=1.0,
                                   discrete=True),
    "IntrusionDetection-v0": EnvFacts(random_return=-681906.25, solved_return=None, reward_low=-10000.0,
                                      reward_high=5000.0, discrete=True, observations_predict_return=False),
    # Suite envs with a shipped config (benchmarks/diagnose_advice.py --random-returns-of ...,
    # benchmarks/results/random_policy_returns_suites.json; where the env masks illegal actions, the
    # random policy is uniform over the legal ones, as an untrained masked policy is). Rewards per step:
    # Navix and XLand-MiniGrid pay at most 1 at the goal; Snake 1 per fruit; brax's inverted_pendulum and
    # Playground's CartpoleBalance at most 1 per step for 1000 steps. Solved: gym's InvertedPendulum
    # threshold (950); the others have no agreed level.
    "navix/Navix-Empty-8x8-v0": EnvFacts(random_return=0.04, solved_return=None, reward_low=0.0, reward_high=1.0,
                                         discrete=True),
    "xminigrid/MiniGrid-Empty-8x8": EnvFacts(random_return=0.12, solved_return=None, reward_low=0.0,
                                             reward_high=1.0, discrete=True),
    "jumanji/Snake-v1": EnvFacts(random_return=6.27, solved_return=None, reward_low=0.0, reward_high=1.0,
                                 discrete=True),
    "brax/inverted_pendulum": EnvFacts(random_return=5.62, solved_return=950.0, reward_low=0.0, reward_high=1.0,
                                       discrete=False),
    "playground/CartpoleBalance": EnvFacts(random_return=357.65, solved_return=None, reward_low=0.0,
                                           reward_high=1.0, discrete=False),
    # Craftax-Classic pays 1 per achievement unlocked and a tenth of each change in health, so a step's
    # reward has no tidy bound (None: the Q check falls back to growth). Random policy: 32 episodes of the
    # whole 10,000-step limit (random_policy_returns_craftax.json; a Craftax reset per step makes 256 a
    # long CPU job). No agreed solved level.
    # MiniGrid-MemoryS8 pays 1 - 0.9 * steps / max_steps for stepping to the object that matches the one
    # seen at the start, 0 otherwise (random_policy_returns_memory.json).
    "xminigrid/MiniGrid-MemoryS8": EnvFacts(random_return=0.17, solved_return=None, reward_low=0.0,
                                            reward_high=1.0, discrete=True),
    "craftax/Craftax-Classic-Symbolic-v1": EnvFacts(random_return=1.63, solved_return=None, reward_low=None,
                                                    reward_high=None, discrete=True),
}


def env_facts(config: Any) -> EnvFacts:
    """Facts for ``config.env`` scaled by ``config.env_reward_scale`` when the config has that field.

    Unknown environments get all-None facts: return thresholds then come from the seed's own early
    returns and the Q-value check from growth (documented per detector).
    """
    facts = ENV_FACTS.get(getattr(config, "env", ""), EnvFacts(None, None, None, None, None))
    scale = getattr(config, "env_reward_scale", None)
    if scale is not None and finite_number(scale) and float(scale) != 1.0:
        facts = facts.scaled(float(scale))
    return facts
