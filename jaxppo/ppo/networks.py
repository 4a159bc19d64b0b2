"""Separate actor and critic MLPs with orthogonal initialisation, and the policy distributions.

The policy is categorical for discrete action spaces and a diagonal Gaussian with a state-independent,
learned ``log_std`` for continuous ones (initialised from ``log_std_init``; report 001 uses -0.5).
Distribution maths is written out (log-prob, entropy, sampling, mode) rather than imported: it is a
handful of closed forms that the tests check against scipy-free numpy references.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional, Sequence

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxppo import running_stats as rs
from jaxppo.networks import MLP, ConvField, RecurrentTorso, activation_fn, replace_output_layer, torso_features

__all__ = [
    "MLP",
    "Actor",
    "Critic",
    "RecurrentActor",
    "RecurrentCritic",
    "rescale_critic_head",
    "PolicyOutput",
    "sample_action",
    "action_noise",
    "sample_action_with_noise",
    "log_prob",
    "entropy",
    "mode",
    "mask_policy",
    "MASKED_LOGIT",
    "activation_fn",
]


class PolicyOutput(NamedTuple):
    """Categorical: ``logits [..., A]`` and ``log_std=None``. Gaussian: ``mean [..., D]`` and ``log_std [D]``."""

    loc: jax.Array
    log_std: Optional[jax.Array]


class Actor(nn.Module):
    """Policy network. The last layer starts near zero (scale 0.01) so the initial policy is near uniform."""

    hidden_sizes: Sequence[int]
    activation: str
    num_actions: int
    discrete: bool
    log_std_init: float = 0.0
    obs_ndim: int = 1
    torso: str = "mlp"  # mlp | conv
    conv_field: ConvField = None

    @nn.compact
    def __call__(self, obs: jax.Array) -> PolicyOutput:
        obs, obs_ndim = torso_features(obs, self.torso, self.activation, self.obs_ndim, self.conv_field)
        loc = MLP(self.hidden_sizes, self.activation, self.num_actions, 0.01, obs_ndim)(obs)
        if self.discrete:
            return PolicyOutput(loc=loc, log_std=None)
        log_std = self.param("log_std", nn.initializers.constant(self.log_std_init), (self.num_actions,))
        return PolicyOutput(loc=loc, log_std=log_std)


class Critic(nn.Module):
    """Value network: one scalar per observation. ``head_scale`` scales the output layer's orthogonal
    init (0: every initial prediction is exactly 0; ``PPOConfig.value_head_init_scale``)."""

    hidden_sizes: Sequence[int]
    activation: str
    obs_ndim: int = 1
    head_scale: float = 1.0
    torso: str = "mlp"  # mlp | conv
    conv_field: ConvField = None

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        obs, obs_ndim = torso_features(obs, self.torso, self.activation, self.obs_ndim, self.conv_field)
        return MLP(self.hidden_sizes, self.activation, 1, self.head_scale, obs_ndim)(obs)[..., 0]


def _recurrent_torso(embed_size: int, activation: str, memory_size: int, obs_ndim: int, torso: str,
                     conv_field: ConvField = None) -> RecurrentTorso:
    """``jaxppo.networks.RecurrentTorso`` under the parameter name PPO's checkpoints have always used."""
    return RecurrentTorso(embed_size, activation, memory_size, obs_ndim, torso, conv_field, name="_RecurrentTorso_0")


class RecurrentActor(nn.Module):
    """Policy with memory: ``(memory, obs, reset) -> (memory, PolicyOutput)`` for one step of a batch.

    A dense embedding of ``hidden_sizes[0]`` units, a GRU of ``memory_size``, then an MLP head with the
    rest of ``hidden_sizes`` (PureJaxRL's PPO-RNN shape, with separate actor and critic memories).
    """

    hidden_sizes: Sequence[int]
    activation: str
    num_actions: int
    discrete: bool
    memory_size: int
    log_std_init: float = 0.0
    obs_ndim: int = 1
    torso: str = "mlp"
    conv_field: ConvField = None

    @nn.compact
    def __call__(self, memory: jax.Array, obs: jax.Array, reset: jax.Array) -> tuple[jax.Array, PolicyOutput]:
        memory, features = _recurrent_torso(self.hidden_sizes[0], self.activation, self.memory_size,
                                           self.obs_ndim, self.torso, self.conv_field)(memory, obs, reset)
        loc = MLP(tuple(self.hidden_sizes[1:]), self.activation, self.num_actions, 0.01)(features)
        if self.discrete:
            return memory, PolicyOutput(loc=loc, log_std=None)
        log_std = self.param("log_std", nn.initializers.constant(self.log_std_init), (self.num_actions,))
        return memory, PolicyOutput(loc=loc, log_std=log_std)


class RecurrentCritic(nn.Module):
    """Value with memory: ``(memory, obs, reset) -> (memory, value)``. Its head is the module's one
    ``MLP``, so ``rescale_critic_head`` (PopArt) rescales it as it does the feed-forward critic's."""

    hidden_sizes: Sequence[int]
    activation: str
    memory_size: int
    obs_ndim: int = 1
    head_scale: float = 1.0
    torso: str = "mlp"
    conv_field: ConvField = None

    @nn.compact
    def __call__(self, memory: jax.Array, obs: jax.Array, reset: jax.Array) -> tuple[jax.Array, jax.Array]:
        memory, features = _recurrent_torso(self.hidden_sizes[0], self.activation, self.memory_size,
                                           self.obs_ndim, self.torso, self.conv_field)(memory, obs, reset)
        value = MLP(tuple(self.hidden_sizes[1:]), self.activation, 1, self.head_scale)(features)[..., 0]
        return memory, value


def rescale_critic_head(critic_params: Any, old: rs.RunningStats, new: rs.RunningStats,
                        scale: float | jax.Array = 1.0) -> Any:
    """PopArt: the critic's output layer rewritten so its un-normalised predictions survive the move
    from return statistics ``old`` to ``new`` exactly (``running_stats.preserve_linear_outputs``).

    The head is the MLP's last ``Dense`` (the one with a single output unit); the hidden layers, and so
    everything the critic has learned about the observations, are untouched.
    """
    def rewrite(layer: dict) -> dict:
        kernel, bias = rs.preserve_linear_outputs(layer["kernel"], layer["bias"], old, new, scale)
        return {**layer, "kernel": kernel, "bias": bias}

    return replace_output_layer(critic_params, rewrite)


_LOG_2PI = float(np.log(2.0 * np.pi))


MASKED_LOGIT = -1e9  # finite: log_softmax of finfo.min overflows to -inf and 0 * -inf is NaN in the entropy


def mask_policy(policy: PolicyOutput, action_mask: Optional[jax.Array]) -> PolicyOutput:
    """A categorical policy with its illegal actions (``action_mask`` False, ``[..., num_actions]``) at
    probability zero: sampling, the mode, log-probs and entropy then see only legal actions, and no
    gradient reaches an illegal action's logit. ``None`` (or a Gaussian policy) is left as it is."""
    if action_mask is None or policy.log_std is not None:
        return policy
    chex.assert_equal_shape([policy.loc, action_mask])
    return policy._replace(loc=jnp.where(action_mask, policy.loc, MASKED_LOGIT))


def sample_action(policy: PolicyOutput, key: jax.Array) -> jax.Array:
    """One action per batch row ``[...]`` (discrete: int index; continuous: ``[..., action_dim]``, unclipped)."""
    return sample_action_with_noise(policy, action_noise(key, policy.loc.shape, policy.log_std is None))


def action_noise(key: jax.Array, shape: tuple[int, ...], discrete: bool) -> jax.Array:
    """The randomness of ``sample_action`` for policy outputs of ``shape`` (``[..., A]``), drawn in one call.

    Discrete: standard Gumbel noise (argmax of logits + Gumbel is a categorical sample, the Gumbel-max
    trick that ``jax.random.categorical`` uses too). Continuous: standard normal noise. Drawing it for a
    whole rollout at once keeps the random-number calls out of the rollout loop.
    """
    return jax.random.gumbel(key, shape) if discrete else jax.random.normal(key, shape)


def sample_action_with_noise(policy: PolicyOutput, noise: jax.Array) -> jax.Array:
    """A sample of ``policy`` from pre-drawn ``action_noise`` of the same shape as ``policy.loc``."""
    if policy.log_std is None:
        return jnp.argmax(policy.loc + noise, axis=-1)
    return policy.loc + jnp.exp(policy.log_std) * noise


def log_prob(policy: PolicyOutput, action: jax.Array) -> jax.Array:
    """log pi(a|s), summed over action dimensions for the Gaussian."""
    if policy.log_std is None:
        logp_all = jax.nn.log_softmax(policy.loc, axis=-1)
        return jnp.take_along_axis(logp_all, action[..., None].astype(jnp.int32), axis=-1)[..., 0]
    z = (action - policy.loc) * jnp.exp(-policy.log_std)
    return jnp.sum(-0.5 * z**2 - policy.log_std - 0.5 * _LOG_2PI, axis=-1)


def entropy(policy: PolicyOutput) -> jax.Array:
    """The policy's entropy in nats, shape ``[...]`` (the batch shape): categorical over the logits, or
    the diagonal Gaussian's closed form (which depends on ``log_std`` only)."""
    if policy.log_std is None:
        logp_all = jax.nn.log_softmax(policy.loc, axis=-1)
        return -jnp.sum(jnp.exp(logp_all) * logp_all, axis=-1)
    per_dim = policy.log_std + 0.5 * (1.0 + _LOG_2PI)
    return jnp.broadcast_to(jnp.sum(per_dim), policy.loc.shape[:-1])


def mode(policy: PolicyOutput) -> jax.Array:
    """The deterministic action used for evaluation: argmax, or the Gaussian's mean."""
    if policy.log_std is None:
        return jnp.argmax(policy.loc, axis=-1)
    return policy.loc
