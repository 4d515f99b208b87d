"""Reinforcement learning, lecture chapter 5: MDPs and dynamic programming (5.1), Q-learning (5.2), DQN (5.3)."""
