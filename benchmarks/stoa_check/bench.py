"""Side-by-side stepping throughput: stoa-env adapters vs jaxppo's stepping vs the plain suite.

usage: python bench.py cartpole|snake|checks [N T]
Each path: reset outside the timing, then ONE jitted function = actions pre-drawn [T, N] (same for every
path) + lax.scan over T auto-resetting steps of N envs. Compile excluded (first call), best of 3 timed calls.
Every path folds reward, done count and a checksum of the kept final observation into its carry, so no
path can drop that work.
"""
import json
import platform
import sys
import time

import jax
import jax.numpy as jnp

REPS = 3


def timed(name, reset_fn, rollout_fn, key, results, jit_reset=True):
    try:
        state = jax.block_until_ready((jax.jit(reset_fn) if jit_reset else reset_fn)(key))
        f = jax.jit(rollout_fn)
        t0 = time.perf_counter()
        out = jax.block_until_ready(f(state, key))
        compile_s = time.perf_counter() - t0
        times = []
        for i in range(REPS):
            k = jax.random.fold_in(key, i + 1)
            t0 = time.perf_counter()
            out = jax.block_until_ready(f(state, k))
            times.append(time.perf_counter() - t0)
        best = min(times)
        res = dict(ok=True, compile_plus_first_s=round(compile_s, 3), times_s=[round(t, 4) for t in times],
                   best_s=round(best, 4), steps_per_s=round(N * T / best), checksum=[float(x) for x in out])
    except Exception as e:  # record, e.g. stoa 0.1.2's gymnax adapter on gymnax 1.0
        res = dict(ok=False, error=f"{type(e).__name__}: {e}")
    results[name] = res
    print(name, json.dumps(res), flush=True)


def actions_for(key, n_actions):
    return jax.random.randint(jax.random.fold_in(key, 99), (T, N), 0, n_actions, dtype=jnp.int32)


def fold(obs):
    return sum(jnp.sum(jnp.asarray(x, jnp.float32)) for x in jax.tree.leaves(obs))


# ---------------------------------------------------------------- gymnax CartPole-v1
def stoa_gymnax_variants():
    from stoa import GymnaxToStoa
    from stoa.env_adapters.base import AdapterStateWithKey
    from stoa.env_types import StepType, TimeStep

    class OneLineFix(GymnaxToStoa):
        """stoa 0.1.2's GymnaxToStoa.step with only the unpack changed to gymnax 1.0's 6 values
        (done = terminated | truncated, everything else as shipped: gymnax auto-resets inside)."""

        def step(self, state, action, env_params=None):
            step_key, next_key = jax.random.split(state.rng_key)
            if env_params is None:
                env_params = self._env_params
            obs, s, reward, term, trunc, info = self._env.step(step_key, state.base_env_state, action, env_params)
            done = jnp.logical_or(term, trunc)
            new_state = AdapterStateWithKey(base_env_state=s, rng_key=next_key)
            step_type = jax.lax.select(done, StepType.TERMINATED, StepType.MID)
            ts = TimeStep(step_type=step_type, reward=jnp.asarray(reward, jnp.float32),
                          discount=jnp.asarray(1.0 - done, jnp.float32), observation=obs, extras={**info})
            return new_state, ts

    class Port(GymnaxToStoa):
        """A gymnax-1.0-correct adapter in stoa's style: step_env (no inner reset), truncation as
        TRUNCATED with discount 1; stoa's AutoResetWrapper does the reset."""

        def step(self, state, action, env_params=None):
            step_key, next_key = jax.random.split(state.rng_key)
            if env_params is None:
                env_params = self._env_params
            obs, s, reward, term, info = self._env.step_env(step_key, state.base_env_state, action, env_params)
            trunc = self._env.is_truncated(s, env_params)
            step_type = jnp.where(term, StepType.TERMINATED, jnp.where(trunc, StepType.TRUNCATED, StepType.MID))
            ts = TimeStep(step_type=step_type, reward=jnp.asarray(reward, jnp.float32),
                          discount=jnp.asarray(1.0 - term, jnp.float32), observation=obs, extras={**info})
            return AdapterStateWithKey(base_env_state=s, rng_key=next_key), ts

    return GymnaxToStoa, OneLineFix, Port


def stoa_stack(adapter_cls, env, params, optimistic=0):
    from stoa import AutoResetWrapper
    from stoa.core_wrappers.optimistic_auto_reset import OptimisticResetVmapWrapper
    from stoa.core_wrappers.vmap import VmapWrapper
    base = adapter_cls(env, params)
    if optimistic:
        return OptimisticResetVmapWrapper(base, num_envs=N, reset_ratio=optimistic, next_obs_in_extras=True)
    return VmapWrapper(AutoResetWrapper(base, next_obs_in_extras=True), num_envs=N)


def stoa_rollout(venv, n_actions):
    def reset(key):
        return venv.reset(key)

    def rollout(carry0, key):
        state, _ = carry0
        acts = actions_for(key, n_actions)

        def body(c, a):
            s, r, d, chk = c
            s, ts = venv.step(s, a)
            return (s, r + ts.reward.sum(), d + ts.last().sum(), chk + fold(ts.extras["next_obs"])), None

        (s, r, d, chk), _ = jax.lax.scan(body, (state, 0.0, 0, 0.0), acts)
        return r, d, chk
    return reset, rollout


def cartpole(results):
    import gymnax
    from jaxppo.envs import make_env
    from jaxppo.envs.stepping import draw_step_noise, step_envs
    key = jax.random.PRNGKey(0)
    env, params = gymnax.make("CartPole-v1")
    Shipped, OneLineFix, Port = stoa_gymnax_variants()
    nA = env.action_space(params).n

    for name, cls, opt in [("a0_stoa_0.1.2_as_shipped", Shipped, 0),
                           ("a1_stoa_oneline_unpack_fix+AutoReset+Vmap", OneLineFix, 0),
                           ("a2_stoa_port(step_env)+AutoReset+Vmap", Port, 0),
                           ("a3_stoa_port(step_env)+OptimisticResetVmap(ratio16)", Port, 16)]:
        reset, rollout = stoa_rollout(stoa_stack(cls, env, params, opt), nA)
        timed(name, reset, rollout, key, results)
        if opt and not results[name]["ok"]:  # its reset cannot be jitted (optimistic_auto_reset.py:66): reset eagerly
            timed(name + "[eager reset]", reset, rollout, key, results, jit_reset=False)

    # (b) jaxppo: make_env + draw_step_noise for the whole rollout (outside the scan) + step_envs
    jenv, jparams = make_env("CartPole-v1")

    def j_reset(key):
        return jax.vmap(jenv.reset, in_axes=(0, None))(jax.random.split(key, N), jparams)

    def j_rollout(carry0, key):
        obs, state = carry0
        acts = actions_for(key, nA)
        noise = draw_step_noise(jenv, jparams, key, (T, N))

        def body(c, x):
            s, r, d, chk = c
            a, nz = x
            o, s, rew, term, trunc, info = step_envs(jenv, jparams, s, a, nz)
            return (s, r + rew.sum(), d + (term | trunc).sum(), chk + fold(info["final_observation"])), None

        (s, r, d, chk), _ = jax.lax.scan(body, (state, 0.0, 0, 0.0), (acts, noise))
        return r, d, chk
    timed("b_jaxppo_draw_step_noise+step_envs", j_reset, j_rollout, key, results)

    # (c) plain gymnax 1.0 env.step vmapped (its own auto-reset, keys split inside the scan)
    def p_rollout(carry0, key):
        obs, state = carry0
        acts = actions_for(key, nA)

        def body(c, a):
            s, k, r, d, chk = c
            k, sub = jax.random.split(k)
            o, s, rew, term, trunc, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                jax.random.split(sub, N), s, a, params)
            return (s, k, r + rew.sum(), d + (term | trunc).sum(), chk + fold(info["final_observation"])), None

        (s, k, r, d, chk), _ = jax.lax.scan(body, (state, key, 0.0, 0, 0.0), acts)
        return r, d, chk
    timed("c_plain_gymnax_vmap_step", j_reset, p_rollout, key, results)


# ---------------------------------------------------------------- jumanji Snake-v1
def snake(results):
    import jumanji
    from jumanji.wrappers import VmapAutoResetWrapper
    from stoa import AddRNGKey, AutoResetWrapper, JumanjiToStoa
    from stoa.core_wrappers.vmap import VmapWrapper
    from jaxppo.envs import make_env
    from jaxppo.envs.stepping import draw_step_noise, step_envs
    key = jax.random.PRNGKey(0)
    raw = jumanji.make("Snake-v1")
    nA = int(raw.action_spec.num_values)

    venv = VmapWrapper(AutoResetWrapper(AddRNGKey(JumanjiToStoa(raw)), next_obs_in_extras=True), num_envs=N)
    reset, rollout = stoa_rollout(venv, nA)
    timed("a_stoa_JumanjiToStoa+AddRNGKey+AutoReset+Vmap", reset, rollout, key, results)

    jenv, jparams = make_env("jumanji/Snake-v1")

    def j_reset(key):
        return jax.vmap(jenv.reset, in_axes=(0, None))(jax.random.split(key, N), jparams)

    def j_rollout(carry0, key):
        obs, state = carry0
        acts = actions_for(key, nA)
        noise = draw_step_noise(jenv, jparams, key, (T, N))

        def body(c, x):
            s, r, d, chk = c
            a, nz = x
            o, s, rew, term, trunc, info = step_envs(jenv, jparams, s, a, nz)
            return (s, r + rew.sum(), d + (term | trunc).sum(), chk + fold(info["final_observation"])), None

        (s, r, d, chk), _ = jax.lax.scan(body, (state, 0.0, 0, 0.0), (acts, noise))
        return r, d, chk
    timed("b_jaxppo_draw_step_noise+step_envs(flat obs+mask)", j_reset, j_rollout, key, results)

    penv = VmapAutoResetWrapper(raw, next_obs_in_extras=True)

    def p_reset(key):
        return penv.reset(jax.random.split(key, N))

    def p_rollout(carry0, key):
        state, _ = carry0
        acts = actions_for(key, nA)

        def body(c, a):
            s, r, d, chk = c
            s, ts = penv.step(s, a)
            return (s, r + ts.reward.sum(), d + ts.last().sum(),
                    chk + sum(fold(x) for x in jax.tree.leaves(ts.extras["next_obs"]))), None

        (s, r, d, chk), _ = jax.lax.scan(body, (state, 0.0, 0, 0.0), acts)
        return r, d, chk
    timed("c_plain_jumanji_VmapAutoResetWrapper", p_reset, p_rollout, key, results)


# ---------------------------------------------------------------- semantic checks (small)
def checks(results):
    """What each stoa stack reports at an episode end (CartPole, max_steps_in_episode=10 so that
    random play both terminates and truncates)."""
    import gymnax
    from stoa import AutoResetWrapper
    from stoa.core_wrappers.vmap import VmapWrapper
    from stoa.env_types import StepType
    env, params = gymnax.make("CartPole-v1")
    params = params.replace(max_steps_in_episode=10)
    _, OneLineFix, Port = stoa_gymnax_variants()
    out = {}
    for name, cls in [("oneline_fix", OneLineFix), ("port", Port)]:
        venv = VmapWrapper(AutoResetWrapper(cls(env, params), next_obs_in_extras=True), num_envs=64)
        s, ts = venv.reset(jax.random.PRNGKey(1))
        acts = jax.random.randint(jax.random.PRNGKey(2), (30, 64), 0, 2)

        def body(s, a):
            s, ts = venv.step(s, a)
            return s, ts
        _, tss = jax.lax.scan(body, s, acts)
        last = tss.last()
        term_true = tss.extras["terminated"] if "terminated" in tss.extras else None
        # gymnax's own flag for the step (present in info for the one-line fix)
        rec = dict(episode_ends=int(last.sum()),
                   labelled_TRUNCATED=int((tss.step_type == StepType.TRUNCATED).sum()),
                   labelled_TERMINATED=int((tss.step_type == StepType.TERMINATED).sum()),
                   discount0_at_end=int(((tss.discount == 0) & last).sum()))
        if "truncated" in tss.extras:
            rec["gymnax_says_truncated"] = int(tss.extras["truncated"].sum())
        if "final_observation" in tss.extras:
            same = jnp.all(tss.extras["next_obs"] == tss.extras["final_observation"], axis=-1)
            rec["ends_where_next_obs_is_the_true_final_obs"] = int((same & last).sum())
            # next_obs at an end == the observation the env restarted from (i.e. terminal obs lost)
            rec["ends_where_next_obs_equals_reset_obs"] = int(
                (jnp.all(tss.extras["next_obs"] == tss.observation, axis=-1) & last).sum())
        else:
            # port: next_obs must differ from the reset observation returned in ts.observation
            rec["ends_where_next_obs_differs_from_reset_obs"] = int(
                (jnp.any(tss.extras["next_obs"] != tss.observation, axis=-1) & last).sum())
        out[name] = rec
    results["semantics_cartpole_max10"] = out
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    which = sys.argv[1]
    N = int(sys.argv[2]) if len(sys.argv) > 2 else (1024 if which == "cartpole" else 256)
    T = int(sys.argv[3]) if len(sys.argv) > 3 else (1000 if which == "cartpole" else 200)
    results = {}
    {"cartpole": cartpole, "snake": snake, "checks": checks}[which](results)
    meta = dict(which=which, N=N, T=T, jax=jax.__version__, backend=jax.default_backend(),
                devices=[str(d) for d in jax.devices()], python=platform.python_version(), argv=sys.argv)
    with open(f"/tmp/stoa_bench/out_{which}.json", "w") as f:
        json.dump(dict(meta=meta, results=results), f, indent=1)
