"""Jumanji's single-agent envs end by termination (Snake's time limit sets discount 0), so a truncation is
simulated: a Snake whose every LAST step keeps discount 1 (what jumanji.types.truncation returns)."""
import jax, jax.numpy as jnp, json
from jumanji.environments import Snake
from jumanji.types import StepType as JST
from stoa import AddRNGKey, AutoResetWrapper, JumanjiToStoa
from stoa.core_wrappers.vmap import VmapWrapper
from jaxppo.envs.jumanji import JumanjiEnv

class TruncSnake(Snake):
    def step(self, state, action):
        s, ts = super().step(state, action)
        return s, ts.replace(discount=jnp.where(ts.step_type == JST.LAST, 1.0, ts.discount))

raw = TruncSnake(time_limit=5)
venv = VmapWrapper(AutoResetWrapper(AddRNGKey(JumanjiToStoa(raw)), next_obs_in_extras=True), num_envs=64)
s, ts = venv.reset(jax.random.PRNGKey(0))
acts = jax.random.randint(jax.random.PRNGKey(1), (20, 64), 0, 4)
_, tss = jax.lax.scan(lambda s, a: venv.step(s, a), s, acts)
last = tss.last()
out = dict(stoa=dict(episode_ends=int(last.sum()), truncated_flag=int(tss.truncated().sum()),
           terminated_flag=int(tss.terminated().sum()), ends_with_discount_1=int(((tss.discount > 0) & last).sum())))
env = JumanjiEnv(raw, "Snake")
obs, st = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(0), 64))
def body(st, x):
    a, k = x
    o, st, r, te, tr, info = jax.vmap(env.step)(jax.random.split(k, 64), st, a)
    return st, (te, tr)
_, (te, tr) = jax.lax.scan(body, st, (acts, jax.random.split(jax.random.PRNGKey(2), 20)))
out["jaxppo"] = dict(terminated=int(te.sum()), truncated=int(tr.sum()))
print(json.dumps(out))
json.dump(out, open("/tmp/stoa_bench/out_check_jumanji.json", "w"))
