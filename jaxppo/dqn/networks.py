"""Q-networks: the shared dense trunk over flat observations, or a small conv torso (MinAtar's 10x10xC grids) first;
with memory, a GRU between the first layer and the head.

``ConvTorso`` lives in ``jaxppo.networks`` (PPO's actor and critic use it too) and is re-exported here.

The network maps observations ``[..., *obs_shape]`` to action values ``[..., num_actions]``; any number
of leading batch axes is allowed, so the same module serves one observation, a batch of envs and a
sampled minibatch.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax

from jaxppo.networks import MLP, ConvField, ConvTorso, RecurrentTorso, torso_features

__all__ = ["QNetwork", "RecurrentQNetwork", "ConvTorso"]


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
    conv_field: ConvField = None

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        if self.torso == "conv" and self.conv_field is None and self.obs_ndim != 3:
            raise ValueError(f"torso='conv' needs [H, W, C] observations, got rank {self.obs_ndim}.")
        obs, obs_ndim = torso_features(obs, self.torso, self.activation, self.obs_ndim, self.conv_field)
        # Head scale 1: Q-values must reach the return scale (hundreds on CartPole), unlike PPO's 0.01 policy head.
        return MLP(self.hidden_sizes, self.activation, self.num_actions, 1.0, obs_ndim)(obs)


class RecurrentQNetwork(nn.Module):
    """``Q`` with memory: ``(memory [..., size], obs, reset [...]) -> (memory, q [..., num_actions])`` for one
    step. A dense embedding of ``hidden_sizes[0]`` units (after the conv torso, if any), a GRU of
    ``memory_size``, then the head ``MLP`` with the rest of ``hidden_sizes``. The head is the module's one
    ``MLP``, so ``rescale_q_head`` (the reward scale's head rescaling) works as for ``QNetwork``.
    """

    hidden_sizes: Sequence[int]
    activation: str
    num_actions: int
    memory_size: int
    torso: str = "mlp"  # mlp | conv
    obs_ndim: int = 1
    conv_field: ConvField = None

    @nn.compact
    def __call__(self, memory: jax.Array, obs: jax.Array, reset: jax.Array) -> tuple[jax.Array, jax.Array]:
        memory, features = RecurrentTorso(self.hidden_sizes[0], self.activation, self.memory_size, self.obs_ndim,
                                          self.torso, self.conv_field)(memory, obs, reset)
        return memory, MLP(tuple(self.hidden_sizes[1:]), self.activation, self.num_actions, 1.0)(features)
