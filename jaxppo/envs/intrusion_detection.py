"""``IntrusionDetection-v0``: a class-imbalanced allow/block task whose returns reach the 1e5 range.

Each step shows the features of one network event; the agent allows it (action 0) or blocks it (1) and
is paid by the outcome: blocking an attack is a true positive, allowing it a false negative, blocking a
benign event a false positive and allowing it a true negative. The defaults make a missed attack cost
10000 and a blocked benign event 1000, with about one event in nine malicious, so per-step rewards are
in the thousands and discounted returns (gamma 0.99, 1000-step episodes) span roughly -1e5 ("allow
everything") to +6e4 (a perfect detector). That is the regime where raw value targets make the critic's
loss explode and per-batch normalisation pins it at 1.0 (docs/stability.md tells the story).

Data. Nothing is downloaded: event ``i`` of a split is a pure function of ``(data_seed, split, i)``.
Benign features are ``N(0, feature_noise**2)``; a malicious event adds ``signal_shift`` to the first
``informative_features`` features (the rest are noise), so the classes overlap and no policy is perfect.
The training split is a stream of ``train_events`` events (an episode starts at a random one and walks
forward), labelled malicious with probability ``malicious_fraction``. The held-out split has exactly
``eval_events`` events of which exactly ``eval_malicious`` are malicious (1600 and 181 by default), so
"block everything" scores F1 = 2*181 / (1600 + 181) = 0.203 and "allow everything" 0.0.

Evaluation. ``held_out_evaluation`` classifies the whole held-out split with a policy and returns the
confusion counts and F1; ``jaxppo.envs.evaluation.greedy_episodes`` adds them to every evaluation.
During training, each step reports its outcome in ``info["counters"]`` and the algorithms turn the
batch's sums into ``true_positive ... f1`` metrics via ``summarize_counters``.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

__all__ = ["IntrusionDetection", "EnvState", "EnvParams", "confusion_metrics"]

_ALLOW, _BLOCK = 0, 1
_TRAIN_SPLIT, _EVAL_SPLIT = 0, 1
# Held-out event j gets label rank (_EVAL_STRIDE * j + _EVAL_OFFSET) mod eval_events, a bijection when the
# stride is coprime with eval_events: the malicious events are spread through the split, not bunched first.
_EVAL_STRIDE, _EVAL_OFFSET = 1031, 7


@struct.dataclass
class EnvState(environment.EnvState):
    index: jax.Array  # position in the training stream of the event being shown
    time: int


@struct.dataclass
class EnvParams(environment.EnvParams):
    """Numeric knobs (pytree leaves): class ratio, feature noise, reward magnitudes, data seed."""

    malicious_fraction: float = 181.0 / 1600.0  # training split's share of attacks (held-out: see class)
    feature_noise: float = 1.0  # std of every feature around its class mean
    signal_shift: float = 1.5  # how far an attack moves each informative feature
    reward_true_positive: float = 5000.0  # attack blocked
    reward_true_negative: float = 100.0  # benign event allowed
    reward_false_positive: float = -1000.0  # benign event blocked
    reward_false_negative: float = -10000.0  # attack allowed
    data_seed: int = 0
    max_steps_in_episode: int = 1000


def confusion_metrics(true_positive: jax.Array, true_negative: jax.Array, false_positive: jax.Array,
                      false_negative: jax.Array, prefix: str = "") -> dict[str, jax.Array]:
    """The four counts and ``F1 = 2 TP / (2 TP + FP + FN)`` (0 when there is nothing to score)."""
    denominator = 2.0 * true_positive + false_positive + false_negative
    f1 = jnp.where(denominator > 0, 2.0 * true_positive / jnp.maximum(denominator, 1e-12), 0.0)
    return {f"{prefix}true_positive": true_positive, f"{prefix}true_negative": true_negative,
            f"{prefix}false_positive": false_positive, f"{prefix}false_negative": false_negative,
            f"{prefix}f1": f1}


class IntrusionDetection(environment.Environment[EnvState, EnvParams]):
    """Allow (0) or block (1) one event per step; see the module docstring.

    Sizes are constructor arguments (they fix array shapes): ``num_features`` per observation, of which
    ``informative_features`` carry signal; ``train_events`` in the training stream; ``eval_events`` in
    the held-out split, ``eval_malicious`` of them attacks.
    """

    def __init__(self, num_features: int = 8, informative_features: int = 4, train_events: int = 50_000,
                 eval_events: int = 1600, eval_malicious: int = 181):
        super().__init__()
        if not 0 < informative_features <= num_features:
            raise ValueError(f"informative_features={informative_features} must lie in [1, {num_features}].")
        if not 0 <= eval_malicious <= eval_events:
            raise ValueError(f"eval_malicious={eval_malicious} must lie in [0, eval_events={eval_events}].")
        if math.gcd(_EVAL_STRIDE, eval_events) != 1:
            raise ValueError(f"eval_events={eval_events} must be coprime with {_EVAL_STRIDE}.")
        self.num_features = num_features
        self.informative_features = informative_features
        self.train_events = train_events
        self.eval_events = eval_events
        self.eval_malicious = eval_malicious

    @property
    def default_params(self) -> EnvParams:
        return EnvParams()

    # Data ------------------------------------------------------------------------------------------
    def _features(self, key: jax.Array, malicious: jax.Array, params: EnvParams) -> jax.Array:
        noise = params.feature_noise * jax.random.normal(key, (self.num_features,))
        signature = (jnp.arange(self.num_features) < self.informative_features).astype(jnp.float32)
        return noise + params.signal_shift * signature * malicious.astype(jnp.float32)

    def _split_key(self, split: int, params: EnvParams) -> jax.Array:
        return jax.random.fold_in(jax.random.PRNGKey(params.data_seed), split)

    def training_event(self, index: jax.Array, params: EnvParams) -> tuple[jax.Array, jax.Array]:
        """``(features [F], malicious)`` of event ``index`` of the training stream."""
        key = jax.random.fold_in(self._split_key(_TRAIN_SPLIT, params), index)
        label_key, feature_key = jax.random.split(key)
        malicious = jax.random.uniform(label_key) < params.malicious_fraction
        return self._features(feature_key, malicious, params), malicious

    def held_out_split(self, params: EnvParams) -> tuple[jax.Array, jax.Array]:
        """``(features [eval_events, F], malicious [eval_events])``: exactly ``eval_malicious`` attacks."""
        index = jnp.arange(self.eval_events)
        malicious = (_EVAL_STRIDE * index + _EVAL_OFFSET) % self.eval_events < self.eval_malicious
        keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(self._split_key(_EVAL_SPLIT, params), index)
        features = jax.vmap(self._features, in_axes=(0, 0, None))(keys, malicious, params)
        return features, malicious

    # gymnax interface ------------------------------------------------------------------------------
    def step_env(self, key: jax.Array, state: EnvState, action: Any, params: EnvParams
                 ) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, dict]:
        _, malicious = self.training_event(state.index, params)
        block = action == _BLOCK
        outcome = {
            "true_positive": jnp.logical_and(block, malicious),
            "true_negative": jnp.logical_and(~block, ~malicious),
            "false_positive": jnp.logical_and(block, ~malicious),
            "false_negative": jnp.logical_and(~block, malicious),
        }
        reward = (outcome["true_positive"] * params.reward_true_positive
                  + outcome["true_negative"] * params.reward_true_negative
                  + outcome["false_positive"] * params.reward_false_positive
                  + outcome["false_negative"] * params.reward_false_negative).astype(jnp.float32)
        state = EnvState(index=(state.index + 1) % self.train_events, time=state.time + 1)
        obs, _ = self.training_event(state.index, params)
        counters = {name: value.astype(jnp.float32) for name, value in outcome.items()}
        return obs, state, reward, jnp.zeros((), bool), {"counters": counters}

    def reset_env(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
        index = jax.random.randint(key, (), 0, self.train_events)
        state = EnvState(index=index, time=0)
        obs, _ = self.training_event(index, params)
        return obs, state

    def is_terminated(self, state: EnvState, params: EnvParams) -> jax.Array:
        return jnp.zeros((), bool)  # episodes end only at the time limit (truncation)

    @property
    def name(self) -> str:
        return "IntrusionDetection-v0"

    @property
    def num_actions(self) -> int:
        return 2

    def action_space(self, params: EnvParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(2)

    def observation_space(self, params: EnvParams) -> spaces.Box:
        return spaces.Box(-jnp.inf, jnp.inf, (self.num_features,), jnp.float32)

    # Evaluation ------------------------------------------------------------------------------------
    def summarize_counters(self, totals: dict[str, jax.Array]) -> dict[str, jax.Array]:
        """Batch sums of ``info["counters"]`` -> the confusion counts and F1 as training metrics."""
        return confusion_metrics(totals["true_positive"], totals["true_negative"],
                                 totals["false_positive"], totals["false_negative"])

    def held_out_evaluation(self, act_fn: Callable[[jax.Array, jax.Array], jax.Array], key: jax.Array,
                            params: EnvParams) -> dict[str, jax.Array]:
        """Classifies the held-out split with ``act_fn(obs [E, F], key) -> actions [E]``.

        Returns ``eval_true_positive``, ``eval_true_negative``, ``eval_false_positive``,
        ``eval_false_negative`` (counts) and ``eval_f1``, each a scalar.
        """
        features, malicious = self.held_out_split(params)
        block = act_fn(features, key) == _BLOCK
        count = lambda mask: jnp.sum(mask.astype(jnp.float32))
        return confusion_metrics(count(block & malicious), count(~block & ~malicious),
                                 count(block & ~malicious), count(~block & malicious), prefix="eval_")
