"""Deep Q-learning: Q-networks, TD losses, a replay buffer carried as pure state, and the train step."""

from jaxppo.dqn.train import DQNContext, DQNPolicy, DQNState, make_algorithm

__all__ = ["DQNContext", "DQNPolicy", "DQNState", "make_algorithm"]
