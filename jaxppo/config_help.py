"""One line per config field: what it means and its unit, for ``jaxppo config show --explain``.

Pure data (imports nothing); ``tests/test_first_hour.py`` checks that every field of ``PPOConfig``,
``DQNConfig`` and ``RunSettings`` has a line here, so a new field cannot ship unexplained.
"""

from __future__ import annotations

__all__ = ["COMMON", "PPO", "DQN", "RUN", "help_for"]

COMMON = {
    "algorithm": "ppo or dqn: which config class this file builds",
    "env": "environment name: gymnax's, jaxppo's own, or <suite>/<name> (jaxppo envs lists them)",
    "num_envs": "environments stepped side by side per seed (count)",
    "total_timesteps": "env steps per seed for the whole run (steps)",
    "hidden_sizes": "units per hidden layer of each network (list of counts)",
    "activation": "hidden-layer nonlinearity: tanh, relu, gelu, ...",
    "learning_rate": "Adam step size (per optimiser step)",
    "adam_eps": "Adam's epsilon, added to the root of the second moment (gradient units)",
    "gamma": "discount per env step (1/(1 - gamma) is the horizon in steps)",
    "huber_delta": "where the Huber loss turns from quadratic to linear (target units)",
    "max_grad_norm": "global gradient-norm clip before Adam; null: no clipping (gradient norm)",
    "reward_normalization": "off, or running: rewards divided by the running size of the discounted return",
    "value_target_transform": "off, or symlog: the network predicts symlog of its targets (DreamerV3)",
    "env_reward_scale": "every reward multiplied by this before learning (to test a config across scales)",
    "torso": "mlp, or conv: a 3x3 conv over [height, width, channels] observations (MinAtar, grids, pixels) first",
    "conv_field": "with torso conv: the named [height, width, channels] observation field it reads (Jumanji's grid); null: all of it",
    "action_mask": "apply the env's legal-action mask where it has one (Jumanji): only legal actions are chosen",
    "memory_size": "GRU units when memory is gru (count)",
    "run": "host-side run settings: chunking, checkpoints, evaluation, metric history",
}

PPO = {
    "num_steps": "rollout length per env per update (steps); with memory, also the BPTT length",
    "num_epochs": "passes over each rollout's data per update (count)",
    "num_minibatches": "gradient steps per epoch; the rollout is split into this many minibatches (count)",
    "memory": "none, or gru: actor and critic get a GRU after their first layer (docs/memory.md)",
    "return_estimator": "gae or monte_carlo: how value targets and advantages are formed",
    "advantage_normalization": "minibatch, batch or off: where advantages are standardised",
    "value_clipping": "off, absolute or relative: trust region on the critic's change per update",
    "value_loss": "mse, huber or mixed: the critic's loss",
    "return_normalization": "off, batch, running or popart: the units the critic predicts in",
    "observation_normalization": "true: observations standardised by running statistics",
    "anneal_lr": "true: learning rates fall linearly to 0 over the run's updates",
    "critic_learning_rate": "the critic's own Adam step size; null: the actor's learning_rate",
    "gae_lambda": "GAE's lambda: 0 is one-step TD, 1 is Monte Carlo",
    "clip_epsilon": "PPO's ratio clip: the policy ratio is clipped to [1 - eps, 1 + eps]",
    "value_clip_epsilon": "value clip radius (target units; relative: times max(|v_old|, floor))",
    "value_clip_floor": "relative value clipping's smallest scale (target units)",
    "value_loss_coef": "weight of the value loss in the total loss",
    "entropy_coef": "weight of the entropy bonus in the loss (loss units per nat of entropy)",
    "target_kl": "stop an update's epochs once approximate KL exceeds this (nats); null: never",
    "advantage_std_floor": "smallest standard deviation advantages are divided by",
    "return_scale": "the critic predicts normalised returns times this",
    "reward_clip": "normalised rewards are clipped to [-reward_clip, reward_clip]",
    "observation_clip": "normalised observations are clipped to [-observation_clip, observation_clip]",
    "log_std_init": "continuous actions: the Gaussian's starting log standard deviation (log action units)",
    "value_head_init_scale": "scale of the critic's output-layer init; 0: every first prediction is 0",
}

DQN = {
    "buffer_size": "replay buffer capacity per seed (transitions)",
    "batch_size": "transitions per gradient step; with memory, sequences per gradient step (count)",
    "memory": "none, or gru: the Q-network gets a GRU after its first layer and learns from replayed sequences",
    "sequence_length": "with memory: steps of each replayed sequence the TD loss is taken on (steps)",
    "burn_in": "with memory: steps replayed before each sequence without a gradient, to refresh its stored memory (steps)",
    "learning_starts": "env steps collected before the first gradient step (steps)",
    "train_frequency": "env steps per env between gradient phases (steps)",
    "gradient_steps": "gradient steps per phase (count)",
    "target_update_interval": "env steps between hard target-network copies (steps)",
    "target_update": "hard (copy every interval) or polyak (move by tau every step)",
    "double_dqn": "true: the online network picks the next action, the target network values it",
    "anneal_lr": "true: the learning rate falls linearly to 0 over the gradient steps after learning_starts",
    "loss": "mse or huber: the TD loss",
    "tau": "polyak target update's step (fraction per gradient phase)",
    "td_target_clip": "TD targets clipped to [-clip, clip] (return units); null: no clip",
    "epsilon_start": "exploration rate at the first step (probability)",
    "epsilon_end": "exploration rate after the decay (probability)",
    "epsilon_decay_fraction": "share of total_timesteps over which epsilon decays linearly",
}

RUN = {
    "updates_per_chunk": "updates per compiled chunk between host round trips (count)",
    "checkpoint_every_chunks": "a checkpoint every this many chunks, and at the end (count)",
    "eval_interval": "greedy evaluation every this many updates and at the last; 0: none while training (updates)",
    "eval_episodes": "episodes per greedy evaluation, one per fresh env (count)",
    "metrics_every": "per-seed history keeps one column per this many updates (updates)",
}


def help_for(algorithm: str, field: str) -> str:
    """The one-line meaning of ``field`` for ``algorithm`` (``"ppo"`` or ``"dqn"``), ``""`` if none."""
    specific = PPO if algorithm == "ppo" else DQN
    return specific.get(field) or COMMON.get(field, "")
