"""Q-networks: the shared dense trunk over flat observations, or a small conv torso (MinAtar's 10x10xC grids) first.

The network maps observations ``[..., *obs_shape]`` to action values ``[..., num_actions]``; any number
of leading batch axes is allowed, so the same module serves one observation, a batch of envs and a
sampled minibatch.
"""

from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxppo.networks import MLP, activation_fn, orthogonal

__all__ = ["QNetwork", "ConvTorso"]


class ConvTorso(nn.Module):
    """One 3x3 conv with 16 channels (stride 1, SAME padding), then flatten.

    The network of Young & Tian's MinAtar baselines: a 10x10 grid needs no striding or pooling, and one
    small conv is enough for the object-level features the games need.
    """

    activation: str
    channels: int = 16

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        batch_shape = obs.shape[:-3]
        x = obs.reshape((-1,) + obs.shape[-3:]).astype(jnp.float32)
        x = nn.Conv(self.channels, (3, 3), strides=(1, 1), padding="SAME",
                    kernel_init=orthogonal(math.sqrt(2.0)), bias_init=nn.initializers.zeros)(x)
        x = activation_fn(self.activation)(x)
        return x.reshape(batch_shape + (-1,))


class QNetwork(nn.Module):
    """``Q(s, .)``: optional conv torso, then ``jaxppo.networks.MLP`` with one linear output per action.

    ``obs_ndim`` is the rank of one observation (1 for CartPole, 3 for MinAtar); the trailing ``obs_ndim``
    axes are flattened (MLP) or convolved (conv torso), every leading axis is a batch axis.
    """

    hidden_sizes: Sequence[int]
    activation: str
    num_actions: int
    torso: str = "mlp"  # mlp | conv
    obs_ndim: int = 1

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        obs_ndim = self.obs_ndim
        if self.torso == "conv":
            if self.obs_ndim != 3:
                raise ValueError(f"torso='conv' needs [H, W, C] observations, got rank {self.obs_ndim}.")
            obs, obs_ndim = ConvTorso(self.activation)(obs), 1
        # Head scale 1: Q-values must reach the return scale (hundreds on CartPole), unlike PPO's 0.01 policy head.
        return MLP(self.hidden_sizes, self.activation, self.num_actions, 1.0, obs_ndim)(obs)
