"""PPO on CartPole from jaxppo's building blocks alone, in a training loop of your own.

Networks, sampling, log-probs and entropy (``jaxppo.ppo.networks``), GAE (``jaxppo.returns``), the
clipped surrogate and value loss (``jaxppo.ppo.losses``), and Adam with global-norm clipping, a
non-finite update guard and linear annealing as an optax schedule (``jaxppo.transforms``). The loop
is yours: rollout and update in one ``jax.jit``, seeds as a ``jax.vmap`` axis.

    python examples/ppo_cartpole.py --total-timesteps 500000 --seeds 4
"""

import argparse
import json

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxppo.diagnosis.core import final_returns
from jaxppo.ppo.losses import clipped_policy_loss, normalize_advantages, value_loss
from jaxppo.ppo.networks import Actor, Critic, entropy, log_prob, sample_action
from jaxppo.returns import gae_advantages
from jaxppo.transforms import linear_schedule, make_optimizer

NUM_ENVS, NUM_STEPS, EPOCHS, MINIBATCHES = 4, 128, 4, 4
GAMMA, GAE_LAMBDA, CLIP, ENTROPY_COEF, VALUE_COEF, LEARNING_RATE = 0.99, 0.95, 0.2, 0.01, 0.5, 2.5e-4


def make_train(total_timesteps: int):
    env, params = gymnax.make("CartPole-v1")
    num_updates = total_timesteps // (NUM_ENVS * NUM_STEPS)
    actor = Actor((64, 64), "tanh", env.action_space(params).n, discrete=True)
    critic = Critic((64, 64), "tanh")
    optimizer = make_optimizer(linear_schedule(LEARNING_RATE, num_updates * EPOCHS * MINIBATCHES), max_grad_norm=0.5,
                               adam_eps=1e-5)

    def env_step(carry, _):
        net, env_state, obs, episode_return, key = carry
        key, act_key, step_key = jax.random.split(key, 3)
        policy = actor.apply(net["actor"], obs)
        action = sample_action(policy, act_key)
        obs_next, env_state, reward, terminated, truncated, info = jax.vmap(env.step, (0, 0, 0, None))(
            jax.random.split(step_key, NUM_ENVS), env_state, action, params)
        done = terminated | truncated
        # V of the true next state (before the auto-reset): truncated episodes bootstrap from it.
        bootstrap = critic.apply(net["critic"], info["final_observation"])
        episode_return = episode_return + reward
        finished = jnp.where(done, episode_return, jnp.nan)
        step = (obs, action, log_prob(policy, action), critic.apply(net["critic"], obs), reward, terminated, done,
                bootstrap, finished)
        return (net, env_state, obs_next, jnp.where(done, 0.0, episode_return), key), step

    def loss(net, minibatch):
        obs, action, old_log_prob, old_value, advantage, target = minibatch
        policy = actor.apply(net["actor"], obs)
        surrogate = clipped_policy_loss(log_prob(policy, action), old_log_prob,
                                        normalize_advantages(advantage, 1e-8), CLIP).loss
        # PureJaxRL's clipped value loss (docs/building_blocks.md measures what leaving it out cost).
        critic_loss, _ = value_loss(critic.apply(net["critic"], obs), old_value, target, clipping="absolute",
                                    clip_epsilon=CLIP)
        return surrogate + VALUE_COEF * critic_loss - ENTROPY_COEF * jnp.mean(entropy(policy))

    def gradient_step(carry, minibatch):
        net, opt_state = carry
        updates, opt_state = optimizer.update(jax.grad(loss)(net, minibatch), opt_state, net)
        return (optax.apply_updates(net, updates), opt_state), None

    def update(carry, _):
        net, opt_state, env_state, obs, episode_return, key = carry
        (_, env_state, obs, episode_return, key), trajectory = jax.lax.scan(
            env_step, (net, env_state, obs, episode_return, key), None, NUM_STEPS)
        obs_t, action, old_log_prob, value, reward, terminated, done, bootstrap, finished = trajectory
        # GAE is written for one trajectory [T]; vmap it over the envs axis.
        advantage = jax.vmap(gae_advantages, in_axes=(1, 1, 1, 1, 1, None, None), out_axes=1)(
            reward, value, bootstrap, terminated, done, GAMMA, GAE_LAMBDA)
        batch = jax.tree.map(lambda x: x.reshape((NUM_ENVS * NUM_STEPS,) + x.shape[2:]),
                             (obs_t, action, old_log_prob, value, advantage, advantage + value))
        key, shuffle_key = jax.random.split(key)
        for epoch_key in jax.random.split(shuffle_key, EPOCHS):
            order = jax.random.permutation(epoch_key, NUM_ENVS * NUM_STEPS)
            minibatches = jax.tree.map(lambda x: x[order].reshape((MINIBATCHES, -1) + x.shape[1:]), batch)
            (net, opt_state), _ = jax.lax.scan(gradient_step, (net, opt_state), minibatches)
        return (net, opt_state, env_state, obs, episode_return, key), jnp.nanmean(finished)

    def train(key):
        key, actor_key, critic_key, reset_key = jax.random.split(key, 4)
        obs, env_state = jax.vmap(env.reset, (0, None))(jax.random.split(reset_key, NUM_ENVS), params)
        net = {"actor": actor.init(actor_key, obs), "critic": critic.init(critic_key, obs)}
        carry = (net, optimizer.init(net), env_state, obs, jnp.zeros(NUM_ENVS), key)
        return jax.lax.scan(update, carry, None, num_updates)[1]  # mean finished-episode return per update

    return train


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="PPO on CartPole-v1 from jaxppo's building blocks.")
    parser.add_argument("--total-timesteps", type=int, default=500_000)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    keys = jax.random.split(jax.random.PRNGKey(args.seed), args.seeds)
    returns = np.asarray(jax.jit(jax.vmap(make_train(args.total_timesteps)))(keys))
    print(json.dumps({"example": "ppo_cartpole", "total_timesteps": args.total_timesteps,
                      # jaxppo's "final return": the mean over the last 10% of updates that finished an episode.
                      "final_return": final_returns({"episode_return": returns}).tolist()}))
