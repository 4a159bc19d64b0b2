"""GAE, Monte Carlo and TD targets against plain numpy loops, under jit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxppo import returns
from jaxppo.returns import gae_advantages, monte_carlo_returns, td_targets


def numpy_gae(r, v, boot, term, trunc, gamma, lam):
    """Textbook loop, written per episode segment rather than with masks."""
    T = len(r)
    adv = np.zeros(T)
    next_adv = 0.0
    for t in reversed(range(T)):
        if term[t]:
            delta = r[t] - v[t]
            next_adv = 0.0
        elif trunc[t]:
            delta = r[t] + gamma * boot[t] - v[t]
            next_adv = 0.0
        else:
            delta = r[t] + gamma * boot[t] - v[t]
        adv[t] = delta + gamma * lam * next_adv
        next_adv = adv[t]
    return adv


def numpy_mc(r, boot, term, trunc, gamma):
    T = len(r)
    out = np.zeros(T)
    for t in range(T):
        # Sum forward until the episode ends or the window ends.
        g, discount, k = 0.0, 1.0, t
        while True:
            g += discount * r[k]
            if term[k]:
                break
            if trunc[k] or k == T - 1:
                g += discount * gamma * boot[k]
                break
            discount *= gamma
            k += 1
        out[t] = g
    return out


def random_trajectory(seed, T=40):
    rng = np.random.default_rng(seed)
    r = rng.normal(size=T).astype(np.float32)
    v = rng.normal(size=T).astype(np.float32)
    term = rng.random(T) < 0.1
    trunc = (rng.random(T) < 0.1) & ~term
    # Bootstrap of step t: V(s_{t+1}) inside an episode (= v[t+1]), V(final obs) at truncation (a fresh
    # number: auto-reset means v[t+1] belongs to the next episode), anything at termination (ignored).
    boot = np.append(v[1:], rng.normal()).astype(np.float32)
    boot = np.where(trunc, rng.normal(size=T), boot).astype(np.float32)
    boot = np.where(term, 1e6, boot).astype(np.float32)  # must never be used
    return r, v, boot, term, trunc


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("gamma,lam", [(0.99, 0.95), (0.9, 1.0), (0.5, 0.0)])
def test_gae_matches_numpy_loop(seed, gamma, lam):
    r, v, boot, term, trunc = random_trajectory(seed)
    done = term | trunc
    got = jax.jit(gae_advantages)(r, v, boot, term, done, gamma, lam)
    np.testing.assert_allclose(got, numpy_gae(r, v, boot, term, trunc, gamma, lam), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("seed", range(5))
def test_monte_carlo_matches_numpy_loop(seed):
    r, _, boot, term, trunc = random_trajectory(seed)
    got = jax.jit(monte_carlo_returns)(r, boot, term, term | trunc, 0.97)
    np.testing.assert_allclose(got, numpy_mc(r, boot, term, trunc, 0.97), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("seed", range(3))
def test_gae_with_lambda_one_plus_value_is_monte_carlo(seed):
    r, v, boot, term, trunc = random_trajectory(seed)
    done = term | trunc
    adv = jax.jit(gae_advantages)(r, v, boot, term, done, 0.95, 1.0)
    mc = jax.jit(monte_carlo_returns)(r, boot, term, done, 0.95)
    np.testing.assert_allclose(adv + v, mc, rtol=1e-4, atol=1e-4)


def test_truncation_bootstraps_but_termination_does_not():
    # Two one-step episodes with reward 1 and bootstrap value 10: truncated -> 1 + 0.5 * 10, terminated -> 1.
    r = jnp.array([1.0, 1.0])
    v = jnp.zeros(2)
    boot = jnp.array([10.0, 10.0])
    term = jnp.array([False, True])
    trunc = jnp.array([True, False])
    adv = jax.jit(gae_advantages)(r, v, boot, term, term | trunc, 0.5, 0.9)
    np.testing.assert_allclose(adv, [6.0, 1.0])
    mc = jax.jit(monte_carlo_returns)(r, boot, term, term | trunc, 0.5)
    np.testing.assert_allclose(mc, [6.0, 1.0])


def test_auto_reset_cuts_the_recursion():
    # Step 0 ends an episode by termination; step 1 starts a new one. A_0 must not see step 1's reward.
    r = jnp.array([0.0, 5.0])
    v = jnp.zeros(2)
    boot = jnp.array([123.0, 0.0])
    term = jnp.array([True, False])
    adv = jax.jit(gae_advantages)(r, v, boot, term, term, 0.99, 0.95)
    np.testing.assert_allclose(adv, [0.0, 5.0])


def test_gae_vmaps_over_envs():
    trajs = [random_trajectory(s, T=16) for s in range(4)]
    stack = lambda i: np.stack([t[i] for t in trajs], axis=1)  # [T, N]
    r, v, boot, term, trunc = (stack(i) for i in range(5))
    batched = jax.jit(jax.vmap(gae_advantages, in_axes=(1, 1, 1, 1, 1, None, None), out_axes=1))
    got = batched(r, v, boot, term, term | trunc, 0.99, 0.95)
    for n in range(4):
        np.testing.assert_allclose(got[:, n], numpy_gae(*trajs[n], 0.99, 0.95), rtol=1e-4, atol=1e-4)


def test_td_targets_terminal_and_clip():
    r = jnp.array([1.0, 1.0, 100.0])
    q_next = jnp.array([2.0, 2.0, 2.0])
    term = jnp.array([False, True, False])
    got = jax.jit(td_targets)(r, q_next, term, 0.9)
    np.testing.assert_allclose(got, [2.8, 1.0, 101.8], rtol=1e-6)
    clipped = jax.jit(td_targets)(r, q_next, term, 0.9, 50.0)
    np.testing.assert_allclose(clipped, [2.8, 1.0, 50.0], rtol=1e-6)


# TD(lambda) and n-step returns -----------------------------------------------------------------------

def _numpy_n_step(r, d, v, n):
    """Independent reference: the sum written out, window by window."""
    T = len(r)
    out = np.zeros(T)
    for t in range(T):
        m = min(n, T - t)
        total, scale = 0.0, 1.0
        for k in range(m):
            total += scale * r[t + k]
            scale *= d[t + k]
        out[t] = total + scale * v[t + m - 1]
    return out


def _numpy_lambda(r, d, v, lam):
    T = len(r)
    out = np.zeros(T)
    g = v[-1]
    for t in reversed(range(T)):
        g = r[t] + d[t] * ((1 - lam) * v[t] + lam * g)
        out[t] = g
    return out


@pytest.mark.parametrize("seed, n", [(0, 1), (1, 3), (2, 7), (3, 20)])
def test_n_step_returns_match_numpy(seed, n):
    rng = np.random.default_rng(seed)
    T = 12
    r, v = rng.normal(size=T), rng.normal(size=T)
    d = 0.97 * (rng.uniform(size=T) > 0.2)  # some terminations
    got = jax.jit(lambda r, d, v: returns.n_step_returns(r, d, v, n))(r, d, v)
    np.testing.assert_allclose(np.asarray(got), _numpy_n_step(r, d, v, n), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("seed, lam", [(0, 0.0), (1, 0.5), (2, 0.95), (3, 1.0)])
def test_lambda_returns_match_numpy(seed, lam):
    rng = np.random.default_rng(seed)
    T = 15
    r, v = rng.normal(size=T), rng.normal(size=T)
    d = 0.99 * (rng.uniform(size=T) > 0.2)
    got = jax.jit(returns.lambda_returns)(r, d, v, lam)
    np.testing.assert_allclose(np.asarray(got), _numpy_lambda(r, d, v, lam), rtol=1e-5, atol=1e-5)


def test_n_step_and_lambda_identities():
    rng = np.random.default_rng(5)
    T = 10
    r, v = rng.normal(size=T).astype(np.float32), rng.normal(size=T).astype(np.float32)
    d = np.full(T, 0.9, np.float32)
    # n = T is the lambda = 1 return; n = 1 and lambda = 0 are the one-step target r + d v.
    np.testing.assert_allclose(returns.n_step_returns(r, d, v, T), returns.lambda_returns(r, d, v, 1.0), rtol=1e-5)
    np.testing.assert_allclose(returns.n_step_returns(r, d, v, 1), r + d * v, rtol=1e-6)
    np.testing.assert_allclose(returns.lambda_returns(r, d, v, 0.0), r + d * v, rtol=1e-6)
    # Hand case: T = 3, n = 2, d = 0.5: G_0 = 1 + 0.5 * 2 + 0.25 * v_1 = 2 + 0.25 * 10.
    got = returns.n_step_returns(jnp.array([1.0, 2.0, 3.0]), jnp.full(3, 0.5), jnp.array([0.0, 10.0, 20.0]), 2)
    np.testing.assert_allclose(got, [4.5, 2.0 + 1.5 + 5.0, 3.0 + 10.0], rtol=1e-6)
    with pytest.raises(ValueError, match="positive integer"):
        returns.n_step_returns(jnp.zeros(3), jnp.zeros(3), jnp.zeros(3), 0)
