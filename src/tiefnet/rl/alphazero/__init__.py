"""AlphaGo Zero (5.4-5.5): f_theta, self-play with MCTS, the learner, the arena and the workers."""
