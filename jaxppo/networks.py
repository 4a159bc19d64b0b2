"""Network pieces PPO and DQN share: activations, an orthogonal initialiser, and the dense trunk.

Why our own orthogonal initialiser. ``flax.linen.initializers.orthogonal`` takes the Q factor of a
Gaussian matrix from ``jnp.linalg.qr``, which on CPU is LAPACK's ``geqrf`` called through an XLA custom
call. Under ``jax.vmap`` over seeds that call is *batched*, and jaxlib (0.10) runs a batched
factorisation by splitting the batch over XLA's intra-op thread pool and blocking until the pieces
finish. When two such calls run at once (actor and critic layers initialise concurrently) on a machine
with two intra-op threads, both threads block waiting for work that only they could run: the program
hangs forever with every thread idle (seen on the 2-core CI machine, in ``jit(vmap(train))`` at 16
seeds; gdb shows both ``tf_XLAEigen`` threads in ``jax::ParallelBatchMap`` under
``QrFactorization``). Householder QR written in ``jnp`` operations (below) is ordinary XLA code with
no custom call, so it cannot wedge the pool; for a 64x64 layer it costs microseconds once per run.

The initialiser draws the same distribution as flax's (and as PyTorch's ``nn.init.orthogonal_``):
``Q`` of ``A = QR`` with ``A`` standard normal and the signs fixed so ``diag(R) > 0``, which makes
``Q`` uniformly (Haar) distributed; the transpose is used for wide matrices.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

__all__ = ["activation_fn", "householder_qr", "orthogonal", "ConvTorso", "MLP", "ACTIVATIONS", "replace_output_layer",
           "ResettableGRU", "RecurrentTorso", "initial_memory", "torso_features", "ConvField"]

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": jnp.tanh,
    "relu": nn.relu,
    "gelu": nn.gelu,
    "silu": nn.silu,
    "elu": nn.elu,
}


def activation_fn(name: str) -> Callable[[jax.Array], jax.Array]:
    """The elementwise activation called ``name`` (a key of ``ACTIVATIONS``: ``"tanh"``, ``"relu"``, ...)."""
    return ACTIVATIONS[name]


def householder_qr(matrix: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Reduced QR of a tall ``[n, m]`` matrix (``n >= m``) by Householder reflections, in plain jnp.

    Returns ``Q [n, m]`` with orthonormal columns and upper-triangular ``R [m, m]`` with a
    non-negative diagonal, so the factorisation is the unique one (for full-rank input).
    """
    n, m = matrix.shape
    if n < m:
        raise ValueError(f"householder_qr needs a tall matrix, got shape {matrix.shape}.")
    rows = jnp.arange(n)

    def reflect(j: int, carry: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        r, q = carry
        column = jnp.where(rows >= j, r[:, j], 0.0)
        norm = jnp.linalg.norm(column)
        pivot = column[j]
        alpha = -jnp.where(pivot >= 0, 1.0, -1.0) * norm  # sign chosen against cancellation
        v = column - alpha * (rows == j)
        v = v / jnp.maximum(jnp.linalg.norm(v), 1e-30)
        r = r - 2.0 * jnp.outer(v, v @ r)
        q = q - 2.0 * jnp.outer(q @ v, v)
        return r, q

    r, q = jax.lax.fori_loop(0, m, reflect, (matrix, jnp.eye(n, dtype=matrix.dtype)))
    q, r = q[:, :m], r[:m, :]
    signs = jnp.where(jnp.diagonal(r) < 0, -1.0, 1.0).astype(matrix.dtype)
    return q * signs[None, :], r * signs[:, None]


def orthogonal(scale: float = 1.0, column_axis: int = -1) -> Callable[..., jax.Array]:
    """A flax kernel initialiser: ``scale`` times a Haar-random matrix with orthonormal rows or columns.

    The kernel is viewed as a matrix whose columns run along ``column_axis`` (flax's convention, so a
    conv kernel ``[kh, kw, in, out]`` is ``[kh*kw*in, out]``).
    """

    def init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        shape = tuple(shape)
        if len(shape) < 2:
            raise ValueError(f"orthogonal initialisation needs at least 2 dimensions, got shape {shape}.")
        num_cols = shape[column_axis]
        num_rows = math.prod(shape) // num_cols
        tall = (max(num_rows, num_cols), min(num_rows, num_cols))
        q, _ = householder_qr(jax.random.normal(key, tall, jnp.float32))
        if num_rows < num_cols:
            q = q.T
        q = q.reshape(tuple(s for i, s in enumerate(shape) if i != column_axis % len(shape)) + (num_cols,))
        q = jnp.moveaxis(q, -1, column_axis)
        return (scale * q).astype(dtype)

    return init


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


#: ``(offset, shape)`` of one ``[H, W, C]`` field inside a flat observation vector (``jaxppo.envs.conv_input``).
ConvField = Optional[tuple[int, tuple[int, ...]]]


def torso_features(obs: jax.Array, torso: str, activation: str, obs_ndim: int, conv_field: ConvField = None
                   ) -> tuple[jax.Array, int]:
    """``(features, their rank)`` before the MLP, inside a compact module: ``torso="mlp"`` hands the
    observation on; ``"conv"`` convolves a ``[..., H, W, C]`` observation, or with ``conv_field`` cuts that
    field out of a flat observation, convolves it and puts the other entries beside its features."""
    if torso != "conv":
        return obs, obs_ndim
    if conv_field is None:
        return ConvTorso(activation)(obs), 1
    offset, shape = conv_field
    end = offset + math.prod(shape)
    grid = obs[..., offset:end].reshape(obs.shape[:-1] + tuple(shape))
    rest = jnp.concatenate([obs[..., :offset], obs[..., end:]], axis=-1).astype(jnp.float32)
    return jnp.concatenate([ConvTorso(activation)(grid), rest], axis=-1), 1


class MLP(nn.Module):
    """Flattens the trailing ``obs_ndim`` axes, then ``hidden_sizes`` dense layers and a linear head.

    Hidden layers start orthogonal with scale sqrt(2) (the gain for ReLU-like units that PPO
    implementations use for every activation); the head with ``output_scale`` (0.01 for a policy, so it
    starts near uniform; 1.0 for values). Every leading axis is a batch axis.
    """

    hidden_sizes: Sequence[int]
    activation: str
    output_size: int
    output_scale: float
    obs_ndim: int = 1

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        x = obs.reshape(obs.shape[: obs.ndim - self.obs_ndim] + (-1,)).astype(jnp.float32)
        act = activation_fn(self.activation)
        for width in self.hidden_sizes:
            x = nn.Dense(width, kernel_init=orthogonal(math.sqrt(2.0)), bias_init=nn.initializers.zeros)(x)
            x = act(x)
        return nn.Dense(self.output_size, kernel_init=orthogonal(self.output_scale),
                        bias_init=nn.initializers.zeros)(x)


class ResettableGRU(nn.Module):
    """One GRU step whose memory is zeroed where an episode starts.

    ``memory [..., size]``, ``x [..., features]``, ``reset [...]`` (True where ``x`` is the first
    observation of an episode) -> ``(new_memory, output)``, both ``[..., size]``. Zeroing *before* the
    step (PureJaxRL's ``ScannedRNN`` convention) means an episode's first step never sees the previous
    episode, whether it started at a rollout boundary or at an auto-reset in the middle of one. The
    recurrent kernel starts orthogonal (``orthogonal``, no LAPACK call: see its docstring).
    """

    size: int

    @nn.compact
    def __call__(self, memory: jax.Array, x: jax.Array, reset: jax.Array) -> tuple[jax.Array, jax.Array]:
        memory = jnp.where(reset[..., None], jnp.zeros_like(memory), memory)
        cell = nn.GRUCell(features=self.size, recurrent_kernel_init=orthogonal(1.0))
        return cell(memory, x.astype(jnp.float32))


class RecurrentTorso(nn.Module):
    """Observation -> (conv torso) -> dense embedding -> ``ResettableGRU``: the memory a recurrent head sits
    on (PPO's actor and critic each have one, DQN's Q-network has one).

    ``(memory [..., size], obs [..., *obs_shape], reset [...]) -> (memory, features)``, both ``[..., size]``.
    """

    embed_size: int
    activation: str
    memory_size: int
    obs_ndim: int = 1
    torso: str = "mlp"  # mlp | conv
    conv_field: ConvField = None

    @nn.compact
    def __call__(self, memory: jax.Array, obs: jax.Array, reset: jax.Array) -> tuple[jax.Array, jax.Array]:
        obs, obs_ndim = torso_features(obs, self.torso, self.activation, self.obs_ndim, self.conv_field)
        x = obs.reshape(obs.shape[: obs.ndim - obs_ndim] + (-1,)).astype(jnp.float32)
        x = nn.Dense(self.embed_size, kernel_init=orthogonal(math.sqrt(2.0)), bias_init=nn.initializers.zeros)(x)
        return ResettableGRU(self.memory_size)(memory, activation_fn(self.activation)(x), reset)


def initial_memory(batch_shape: tuple[int, ...], size: int) -> jax.Array:
    """Zero memory for a batch of ``batch_shape`` sequences: ``[*batch_shape, size]``."""
    return jnp.zeros(tuple(batch_shape) + (size,), jnp.float32)


def replace_output_layer(params: Any, rewrite: Callable[[dict], dict]) -> Any:
    """``params`` of a module holding one ``MLP`` with its output layer (the last ``Dense``) replaced by
    ``rewrite(layer)``; everything else is shared, untouched. PopArt-style head rescaling uses it."""
    layers = params["params"]["MLP_0"]
    head = max(layers, key=lambda name: int(name.rsplit("_", 1)[1]))
    return {**params, "params": {**params["params"], "MLP_0": {**layers, head: rewrite(layers[head])}}}
