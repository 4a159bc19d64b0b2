"""Optax pieces: global-norm clipping, the critic's own learning rate, skipping non-finite updates."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxppo.transforms import (
    gradient_stats,
    linear_schedule,
    make_optimizer,
    nonfinite_update_count,
    skip_nonfinite_updates,
)


def tree(seed, scale=1.0):
    rng = np.random.default_rng(seed)
    return {
        "actor": {"w": jnp.asarray(rng.normal(size=(3, 4)) * scale, jnp.float32), "b": jnp.asarray(rng.normal(size=4) * scale, jnp.float32)},
        "critic": {"w": jnp.asarray(rng.normal(size=(3, 1)) * scale, jnp.float32)},
    }


def numpy_global_norm(t):
    return np.sqrt(sum(float(np.sum(np.asarray(x, np.float64) ** 2)) for x in jax.tree.leaves(t)))


def test_gradient_stats_match_numpy():
    grads = tree(0, scale=3.0)
    norm = numpy_global_norm(grads)
    stats = jax.jit(gradient_stats, static_argnums=())(grads, 0.5)
    np.testing.assert_allclose(stats.grad_norm, norm, rtol=1e-5)
    np.testing.assert_allclose(stats.grad_clip_ratio, 0.5 / norm, rtol=1e-5)
    unclipped = gradient_stats(grads, 1e6)
    assert float(unclipped.grad_clip_ratio) == 1.0


def test_global_norm_clipping_keeps_direction_and_bounds_norm():
    # With adam eps huge, Adam's first step is ~ lr * (1 - b1) g / ((1 - b1) * eps) ... i.e. proportional
    # to the gradient it receives, so the update exposes the clipped gradient exactly.
    grads = tree(1, scale=10.0)
    params = jax.tree.map(jnp.zeros_like, grads)
    max_norm = 1.0
    opt = make_optimizer(1.0, max_grad_norm=max_norm, adam_eps=1e8, skip_nonfinite=False)
    updates, _ = jax.jit(opt.update)(grads, opt.init(params), params)
    raw_norm = numpy_global_norm(grads)
    expected_clipped = jax.tree.map(lambda g: np.asarray(g) * max_norm / raw_norm, grads)
    # Adam's first step with bias correction: m_hat = g, v_hat = g^2, update = -lr g / (|g| + eps).
    expected = jax.tree.map(lambda g: -g / (np.abs(g) + 1e8), expected_clipped)
    for got, want in zip(jax.tree.leaves(updates), jax.tree.leaves(expected)):
        np.testing.assert_allclose(got, want, rtol=1e-4)
    clipped_norm = numpy_global_norm(jax.tree.map(lambda u: np.asarray(u) * 1e8, updates))
    assert clipped_norm <= max_norm * 1.0001
    # Same direction as the raw gradient (cosine 1): global-norm, not element-wise, clipping.
    flat_u = np.concatenate([np.ravel(x) for x in jax.tree.leaves(updates)])
    flat_g = np.concatenate([np.ravel(x) for x in jax.tree.leaves(grads)])
    cosine = -flat_u @ flat_g / (np.linalg.norm(flat_u) * np.linalg.norm(flat_g))
    np.testing.assert_allclose(cosine, 1.0, rtol=1e-5)


def test_critic_learning_rate_only_changes_the_critic():
    # Adam's first step moves every parameter with a non-zero gradient by lr * sign(g) (eps tiny).
    grads = tree(2)
    params = tree(3)
    opt = make_optimizer(1e-3, max_grad_norm=None, adam_eps=1e-12, critic_learning_rate=3e-2)
    state = opt.init(params)
    updates, _ = jax.jit(opt.update)(grads, state, params)
    new = optax.apply_updates(params, updates)
    actor_move = jax.tree.map(lambda a, b: np.abs(np.asarray(a) - np.asarray(b)), new["actor"], params["actor"])
    critic_move = jax.tree.map(lambda a, b: np.abs(np.asarray(a) - np.asarray(b)), new["critic"], params["critic"])
    for move in jax.tree.leaves(actor_move):
        np.testing.assert_allclose(move, 1e-3, rtol=1e-3)
    for move in jax.tree.leaves(critic_move):
        np.testing.assert_allclose(move, 3e-2, rtol=1e-3)


def test_nonfinite_update_is_skipped_and_counted():
    params = tree(4)
    opt = make_optimizer(1e-2, max_grad_norm=0.5)
    state = opt.init(params)
    good = tree(5)
    bad = jax.tree.map(lambda g: g.at[0].set(jnp.nan), good)
    step = jax.jit(opt.update)
    updates, state = step(bad, state, params)
    after_bad = optax.apply_updates(params, updates)
    for a, b in zip(jax.tree.leaves(after_bad), jax.tree.leaves(params)):
        np.testing.assert_array_equal(a, b)
    assert int(nonfinite_update_count(state)) == 1
    updates, state = step(good, state, after_bad)
    after_good = optax.apply_updates(after_bad, updates)
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(after_good))
    assert not np.allclose(jax.tree.leaves(after_good)[0], jax.tree.leaves(params)[0])
    assert int(nonfinite_update_count(state)) == 1


def test_skip_nonfinite_agrees_with_optax_apply_if_finite_step_for_step():
    """optax.apply_if_finite (with no give-up limit) is the reference for our cheaper guard."""
    params = tree(4)
    inner = optax.chain(optax.clip_by_global_norm(0.5), optax.adam(1e-2))
    ours, reference = skip_nonfinite_updates(inner), optax.apply_if_finite(inner, max_consecutive_errors=10**6)
    good = [tree(seed) for seed in (5, 6, 7)]
    gradients = [good[0], jax.tree.map(lambda g: g.at[0].set(jnp.nan), good[1]), good[1],
                 jax.tree.map(lambda g: g.at[-1].set(-jnp.inf), good[2]), good[2]]
    p_ours, p_ref = params, params
    s_ours, s_ref = ours.init(params), reference.init(params)
    for grads in gradients:
        u_ours, s_ours = jax.jit(ours.update)(grads, s_ours, p_ours)
        u_ref, s_ref = jax.jit(reference.update)(grads, s_ref, p_ref)
        p_ours, p_ref = optax.apply_updates(p_ours, u_ours), optax.apply_updates(p_ref, u_ref)
        for a, b in zip(jax.tree.leaves(p_ours), jax.tree.leaves(p_ref)):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
        # Adam's moments and step count are untouched by a skipped update, exactly as in the reference.
        for a, b in zip(jax.tree.leaves(s_ours.inner_state), jax.tree.leaves(s_ref.inner_state)):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert int(s_ours.nonfinite_count) == int(s_ref.total_notfinite) == 2
    assert int(nonfinite_update_count(s_ours)) == 2


def test_linear_schedule_reaches_zero():
    schedule = linear_schedule(1e-3, 100)
    np.testing.assert_allclose([schedule(0), schedule(50), schedule(100), schedule(200)], [1e-3, 5e-4, 0, 0], atol=1e-9)
