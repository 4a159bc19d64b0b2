"""The shared network pieces: Householder QR and the orthogonal initialiser, against numpy's LAPACK QR."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxppo.dqn.networks import QNetwork
from jaxppo.networks import MLP, householder_qr, orthogonal
from jaxppo.ppo.networks import Actor, Critic


def _numpy_unique_qr(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    q, r = np.linalg.qr(a.astype(np.float64))
    signs = np.where(np.diag(r) < 0, -1.0, 1.0)
    return q * signs[None, :], r * signs[:, None]


@pytest.mark.parametrize("shape", [(64, 64), (64, 4), (9, 7), (5, 1)])
def test_householder_qr_matches_numpy(shape):
    a = np.random.default_rng(sum(shape)).standard_normal(shape).astype(np.float32)
    q, r = jax.jit(householder_qr)(jnp.asarray(a))
    q_ref, r_ref = _numpy_unique_qr(a)
    np.testing.assert_allclose(q, q_ref, atol=2e-5)
    np.testing.assert_allclose(r, r_ref, atol=2e-4)
    np.testing.assert_allclose(np.asarray(q) @ np.asarray(r), a, atol=2e-4)
    assert np.all(np.diag(np.asarray(r)) >= 0)


def test_householder_qr_rejects_wide_input():
    with pytest.raises(ValueError, match="tall"):
        householder_qr(jnp.zeros((2, 3)))


@pytest.mark.parametrize("shape, scale", [((4, 64), 2.0**0.5), ((64, 64), 1.0), ((64, 2), 0.01),
                                          ((3, 3, 4, 16), 1.0)])
def test_orthogonal_is_the_q_factor_of_the_same_gaussian(shape, scale):
    key = jax.random.PRNGKey(3)
    kernel = np.asarray(orthogonal(scale)(key, shape), np.float64)
    assert kernel.shape == shape
    rows, cols = int(np.prod(shape[:-1])), shape[-1]
    tall = (max(rows, cols), min(rows, cols))
    q_ref, _ = _numpy_unique_qr(np.asarray(jax.random.normal(key, tall)))
    expected = (q_ref.T if rows < cols else q_ref).reshape(shape) * scale
    np.testing.assert_allclose(kernel, expected, atol=2e-5 * max(scale, 1.0))
    matrix = kernel.reshape(rows, cols) / scale
    gram = matrix.T @ matrix if rows >= cols else matrix @ matrix.T
    np.testing.assert_allclose(gram, np.eye(min(rows, cols)), atol=1e-5)


def test_orthogonal_entries_are_unbiased():
    """Haar-random Q: E[Q_ij] = 0 and E[Q_ij^2] = 1/n for every entry (the sign fix makes it so)."""
    keys = jax.random.split(jax.random.PRNGKey(0), 4000)
    q = np.asarray(jax.jit(jax.vmap(lambda k: orthogonal()(k, (8, 8))))(keys))
    assert np.abs(q.mean(axis=0)).max() < 0.05  # std of each mean is sqrt(1/8/4000) ~ 0.0056
    np.testing.assert_allclose((q**2).mean(axis=0), 1 / 8, atol=0.02)


def test_vmapped_network_init_compiles_to_no_lapack_call():
    """Batched LAPACK QR can deadlock XLA's CPU thread pool (see jaxppo/networks.py); none may remain."""
    obs = jnp.zeros((1, 4))
    modules = [Actor((64, 64), "tanh", 2, True), Critic((64, 64), "tanh"), QNetwork((64, 64), "relu", 2),
               MLP((8,), "relu", 3, 1.0)]
    for module in modules:
        text = jax.jit(jax.vmap(lambda k: module.init(k, obs))).lower(
            jax.random.split(jax.random.PRNGKey(0), 16)).as_text()
        assert "lapack" not in text and "geqrf" not in text.lower(), type(module).__name__


@pytest.mark.slow
def test_value_head_init_scale_zero_predicts_exactly_zero_and_still_learns():
    """``PPOConfig.value_head_init_scale=0``: every initial value is 0 (the first advantages are the
    rewards' own), while the hidden layers keep their orthogonal init and the head gets gradients."""
    obs = jax.random.normal(jax.random.PRNGKey(1), (32, 6))
    zero, default = Critic((16, 16), "tanh", head_scale=0.0), Critic((16, 16), "tanh")
    params = zero.init(jax.random.PRNGKey(0), obs)
    np.testing.assert_array_equal(np.asarray(zero.apply(params, obs)), np.zeros(32))
    assert float(jnp.std(default.apply(default.init(jax.random.PRNGKey(0), obs), obs))) > 1e-2
    hidden = params["params"]["MLP_0"]["Dense_0"]["kernel"]
    assert float(jnp.abs(hidden).max()) > 0.1
    grads = jax.grad(lambda p: jnp.mean((zero.apply(p, obs) - 1.0) ** 2))(params)
    assert float(jnp.abs(grads["params"]["MLP_0"]["Dense_2"]["kernel"]).max()) > 1e-3


def test_ppo_conv_torso_reads_images_and_is_refused_for_vectors():
    import jaxppo
    from jaxppo.ppo import train as ppo

    config = jaxppo.PPOConfig(env="Breakout-MinAtar", torso="conv", hidden_sizes=(16,), memory="gru",
                              memory_size=8, num_envs=4, num_minibatches=2)
    ctx = ppo.make_context(config)
    state = ppo.init_state(ctx, jax.random.PRNGKey(0))
    conv = state.params["actor"]["params"]["_RecurrentTorso_0"]["ConvTorso_0"]["Conv_0"]["kernel"]
    assert conv.shape == (3, 3, ctx.obs_shape[-1], 16)  # 3x3 over the 10x10xC grid, 16 channels
    with pytest.raises(ValueError, match=r"torso='conv' needs \[height, width, channels\]"):
        ppo.make_context(jaxppo.PPOConfig(env="CartPole-v1", torso="conv"))
