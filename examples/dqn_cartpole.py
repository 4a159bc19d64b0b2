"""DQN on CartPole from jaxppo's building blocks alone, in a training loop of your own.

The Q-network (``jaxppo.dqn.networks``), a replay buffer carried as pure state
(``jaxppo.dqn.buffer``), the TD loss with a held target (``jaxppo.dqn.losses``), and Adam with a
non-finite update guard (``jaxppo.transforms``). CleanRL's CartPole settings; the loop is yours:
collection, learning and target syncs in one ``jax.jit``, seeds as a ``jax.vmap`` axis.

    python examples/dqn_cartpole.py --total-timesteps 500000 --seeds 4
"""

import argparse
import json

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxppo.diagnosis.core import final_returns
from jaxppo.dqn import buffer as replay
from jaxppo.dqn.losses import q_learning_loss
from jaxppo.dqn.networks import QNetwork
from jaxppo.transforms import make_optimizer

BUFFER, BATCH, LEARNING_STARTS, TRAIN_EVERY, TARGET_EVERY = 10_000, 128, 10_000, 10, 500
GAMMA, LEARNING_RATE, EPSILON_END, EXPLORATION_FRACTION = 0.99, 2.5e-4, 0.05, 0.5


def make_train(total_timesteps: int):
    env, params = gymnax.make("CartPole-v1")
    num_actions = env.action_space(params).n
    network = QNetwork((120, 84), "relu", num_actions)
    optimizer = make_optimizer(LEARNING_RATE, max_grad_norm=None)
    num_updates = total_timesteps // TRAIN_EVERY

    def epsilon(step):
        return jnp.maximum(EPSILON_END, 1.0 - (1.0 - EPSILON_END) * step / (EXPLORATION_FRACTION * total_timesteps))

    def env_step(carry, step):
        online, env_state, obs, buffer, episode_return, key = carry
        key, explore_key, action_key, step_key = jax.random.split(key, 4)
        greedy = jnp.argmax(network.apply(online, obs))
        action = jnp.where(jax.random.uniform(explore_key) < epsilon(step),
                           jax.random.randint(action_key, (), 0, num_actions), greedy)
        obs_next, env_state, reward, terminated, truncated, info = env.step(step_key, env_state, action, params)
        # Store the true next state (before the auto-reset); only termination stops the bootstrap.
        buffer = replay.add(buffer, jax.tree.map(lambda x: x[None], replay.Transition(
            obs, action, reward, terminated, info["final_observation"])))
        episode_return = episode_return + reward
        finished = jnp.where(terminated | truncated, episode_return, jnp.nan)
        episode_return = jnp.where(terminated | truncated, 0.0, episode_return)
        return (online, env_state, obs_next, buffer, episode_return, key), finished

    def loss(online, target, batch):
        return q_learning_loss(network.apply(online, batch.obs), batch.action, batch.reward, batch.terminated,
                               network.apply(target, batch.next_obs), network.apply(online, batch.next_obs),
                               gamma=GAMMA).loss

    def update(carry, index):
        online, target, opt_state, env_state, obs, buffer, episode_return, key = carry
        steps = index * TRAIN_EVERY + jnp.arange(TRAIN_EVERY)
        (online, env_state, obs, buffer, episode_return, key), finished = jax.lax.scan(
            env_step, (online, env_state, obs, buffer, episode_return, key), steps)
        key, sample_key = jax.random.split(key)
        updates, new_opt_state = optimizer.update(
            jax.grad(loss)(online, target, replay.sample(buffer, sample_key, BATCH)), opt_state, online)
        learn = steps[-1] + 1 >= LEARNING_STARTS
        online, opt_state = jax.tree.map(lambda new, old: jnp.where(learn, new, old),
                                         (optax.apply_updates(online, updates), new_opt_state), (online, opt_state))
        sync = (steps[-1] + 1) % TARGET_EVERY < TRAIN_EVERY
        target = jax.tree.map(lambda o, t: jnp.where(sync, o, t), online, target)
        return (online, target, opt_state, env_state, obs, buffer, episode_return, key), jnp.nanmean(finished)

    def train(key):
        key, init_key, reset_key = jax.random.split(key, 3)
        obs, env_state = env.reset(reset_key, params)
        online = network.init(init_key, obs)
        example = replay.Transition(obs, jnp.int32(0), jnp.float32(0), jnp.bool_(False), obs)
        carry = (online, online, optimizer.init(online), env_state, obs, replay.init(BUFFER, example),
                 jnp.float32(0), key)
        return jax.lax.scan(update, carry, jnp.arange(num_updates))[1]  # mean finished-episode return per update

    return train


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="DQN on CartPole-v1 from jaxppo's building blocks.")
    parser.add_argument("--total-timesteps", type=int, default=500_000)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    keys = jax.random.split(jax.random.PRNGKey(args.seed), args.seeds)
    returns = np.asarray(jax.jit(jax.vmap(make_train(args.total_timesteps)))(keys))
    print(json.dumps({"example": "dqn_cartpole", "total_timesteps": args.total_timesteps,
                      # jaxppo's "final return": the mean over the last 10% of updates that finished an episode.
                      "final_return": final_returns({"episode_return": returns}).tolist()}))
