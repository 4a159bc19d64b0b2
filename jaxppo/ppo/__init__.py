"""Proximal Policy Optimization: networks, losses and the compiled train step."""

from jaxppo.ppo.train import PPOState, make_algorithm

__all__ = ["PPOState", "make_algorithm"]
