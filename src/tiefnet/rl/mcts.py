"""Monte Carlo tree search guided by f_theta (5.4), for many trees at once.

Every edge (s, a) keeps the prior P(s, a), the visit count N(s, a) and the mean value Q(s, a).
One simulation:
  (i)   selection: from the root, follow a = argmax_a Q(s, a) + U(s, a) with
        U(s, a) = c_puct P(s, a) sqrt(sum_b N(s, b)) / (1 + N(s, a)), and N(s, a) += 1 on the path;
  (ii)  expansion and evaluation: the new leaf s' gets (P(s', .), nu(s')) = f_theta(s');
  (iii) backup: Q(s, a) = W(s, a) / N(s, a) = the mean of the values nu(s'') in the subtree of (s, a).
Output: pi_a = N(s, a)^(1/tau) / sum_b N(s, b)^(1/tau); tau -> 0 is the most visited move.

Sign convention (negamax): nu(s') is the value for the player to move at s'; an edge's W and Q
are for the player who chooses it at s, so the backup flips the sign at every level.

Batched leaf evaluation: ``search`` runs the simulations of many trees (one per self-play game)
side by side, and within one tree may collect several leaves per round with a *virtual loss*
(N += 1, W -= 1 on the path while the leaf waits, so the next selection looks elsewhere).
All leaves of a round go to f_theta in one mini-batch.

MCTS-solver (``solve``, off by default; OpenSpiel's MCTSBot has it as well): a terminal leaf is a
proven result, and proofs move up: a node is won when one move leads to a position lost for the
opponent, and decided when every move is proven. The search stops descending at proven nodes, and
the final choice takes a proven win and avoids proven losses. It uses only the rules.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy

from tiefnet.errors import ConfigError
from tiefnet.rl.games.base import Game, State

# evaluate(states) -> (P over each state's legal actions, nu for the player to move (n,))
Evaluate = Callable[[Sequence[State]], tuple[list[numpy.ndarray], numpy.ndarray]]


@dataclass(frozen=True)
class SearchConfig:
    """Settings of one search (5.4): U(s, a) = c_puct P(s, a) sqrt(sum_b N(s, b)) / (1 + N(s, a)), and at the
    root P(root, a) = (1 - eps) p_a + eps eta_a with Dirichlet noise eta."""

    simulations: int = 100
    """simulations per move (AlphaGo Zero: 1,600)"""
    c_puct: float = 1.5
    """weight of the exploration term U"""
    dirichlet_alpha: float = 0.3
    """alpha of the Dirichlet noise at the root (AlphaGo Zero: 0.03 on 19x19, ~10 / moves)"""
    noise_fraction: float = 0.25
    """epsilon: P(root, a) = (1 - eps) p_a + eps eta_a, eta ~ Dir(alpha); 0 = no noise"""
    leaves_per_round: int = 1
    """leaves one tree sends per f_theta call (virtual loss makes them differ)"""
    solve: bool = False
    """MCTS-solver: propagate proven wins, losses and draws from terminal leaves up the tree"""

    def __post_init__(self) -> None:
        if not (isinstance(self.simulations, int) and 1 <= self.simulations <= 1_000_000):
            raise ConfigError(f"simulations={self.simulations!r} must be a whole number in 1..1000000")
        if not (isinstance(self.leaves_per_round, int) and 1 <= self.leaves_per_round <= 256):
            raise ConfigError(f"leaves_per_round={self.leaves_per_round!r} must be a whole number in 1..256")
        for name, value, ok in (("c_puct", self.c_puct, lambda v: v > 0), ("dirichlet_alpha", self.dirichlet_alpha,
                                lambda v: v > 0), ("noise_fraction", self.noise_fraction, lambda v: 0 <= v <= 1)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and ok(value)):
                raise ConfigError(f"{name}={value!r} is out of range")


class Node:
    """A position s in the tree and the statistics of its edges (s, a) over the legal actions (5.4):
    P(s, a), N(s, a) and W(s, a), so that Q(s, a) = W(s, a) / N(s, a).

    actions: (k,) legal action indices; P, N, W: (k,) float64; children: the child node per edge.
    P_net keeps f_theta's prior, so noise can be mixed in afresh for each search from this root.
    """

    __slots__ = ("state", "actions", "P", "P_net", "N", "W", "children", "nu", "pending", "proven")

    def __init__(self, state: State) -> None:
        self.state = state
        self.actions: numpy.ndarray | None = None  # None until expanded
        self.P = self.P_net = self.N = self.W = None
        self.children: list[Node | None] = []
        self.nu = 0.0
        self.pending = False  # waiting in this round's batch
        self.proven: float | None = None  # solve: the exact value for the player to move (+1, 0, -1)

    @property
    def expanded(self) -> bool:
        return self.actions is not None

    def expand(self, game: Game, P: numpy.ndarray, nu: float) -> None:
        """(ii): attach f_theta's (P(s, .), nu(s)) and create the edges with N = W = 0."""
        self.actions = game.legal_actions(self.state)
        k = len(self.actions)
        self.P_net = numpy.asarray(P, numpy.float64)
        if self.P_net.shape != (k,):
            raise ValueError(f"MCTS: the evaluator gave {self.P_net.shape[0]} priors for {k} legal actions")
        self.P = self.P_net
        self.N = numpy.zeros(k)
        self.W = numpy.zeros(k)
        self.children = [None] * k
        self.nu = float(nu)

    def select(self, c_puct: float, solve: bool = False) -> int:
        """(i): the edge index maximising Q + U (solve: only open moves while there are any; a proven move's
        value is known, more visits would not change it)."""
        N = self.N
        Q = numpy.divide(self.W, N, out=numpy.zeros_like(N), where=N > 0)  # Q = 0 for unvisited edges
        # max(1, .): at a fresh node sum N = 0 and U would vanish; the prior should decide the first visit
        U = c_puct * self.P * math.sqrt(max(1.0, N.sum())) / (1.0 + N)
        score = Q + U
        if solve:
            closed = [i for i, c in enumerate(self.children) if c is not None and c.proven is not None]
            if closed and len(closed) < len(self.children):
                score[closed] = -numpy.inf
        return int(numpy.argmax(score))

    def prove(self) -> bool:
        """solve: this node's exact value from its children's, if they decide it; True if it is proven now."""
        if self.proven is None and self.expanded:
            values = [None if c is None else c.proven for c in self.children]
            if -1.0 in values:  # a move to a position lost for the opponent
                self.proven = 1.0
            elif values and None not in values:
                self.proven = max(-v for v in values)
        return self.proven is not None

    def child(self, game: Game, i: int) -> "Node":
        node = self.children[i]
        if node is None:
            node = self.children[i] = Node(game.play(self.state, int(self.actions[i])))
        return node

    def add_noise(self, rng: numpy.random.Generator, alpha: float, fraction: float) -> None:
        """Dirichlet noise on this root's priors (once per search, the root only)."""
        if fraction > 0 and len(self.P_net) > 1:
            eta = rng.dirichlet(numpy.full(len(self.P_net), alpha))
            self.P = (1 - fraction) * self.P_net + fraction * eta
        else:
            self.P = self.P_net


def search(game: Game, roots: Sequence[Node], evaluate: Evaluate, config: SearchConfig,
           rng: numpy.random.Generator, noise: bool | Sequence[bool] = True,
           simulations: Sequence[int] | None = None) -> None:
    """Run ``config.simulations`` simulations from each root, all trees batched together.

    Each simulation (5.4): (i) select a = argmax_a Q(s, a) + U(s, a) down to a leaf, N(s, a) += 1 on the
    path; (ii) expand and evaluate the leaf, (P(s', .), nu(s')) = f_theta(s') (``evaluate``); (iii) back up
    Q(s, a) = W(s, a) / N(s, a), the mean of the values nu in the subtree, the sign flipped at every level.

    ``noise`` and ``simulations`` may also be given per root. Afterwards each root's N holds its
    visit counts (see :func:`policy`). Roots may be reused subtrees from the previous move; their
    earlier visits stay and the new ones add up.
    """
    noise = [noise] * len(roots) if isinstance(noise, bool) else list(noise)
    budget = [config.simulations] * len(roots) if simulations is None else [int(n) for n in simulations]
    if len(noise) != len(roots) or len(budget) != len(roots):
        raise ValueError("MCTS: noise and simulations need one entry per root")
    fresh = [r for r in roots if not r.expanded and not r.state.terminal]
    if fresh:
        P, nu = evaluate([r.state for r in fresh])
        for r, p, v in zip(fresh, P, nu):
            r.expand(game, p, v)
    remaining = {}
    for r, with_noise, n in zip(roots, noise, budget):  # once per search, at the root only
        if r.expanded and len(r.actions) and n > 0:
            r.add_noise(rng, config.dirichlet_alpha, config.noise_fraction if with_noise else 0.0)
            remaining[id(r)] = n
    live = [r for r in roots if id(r) in remaining]
    while live:
        leaves: list[tuple[Node, list[tuple[Node, int]]]] = []
        for root in live:
            for _ in range(min(config.leaves_per_round, remaining[id(root)])):
                remaining[id(root)] -= 1
                leaf, path = _descend(game, root, config.c_puct, config.solve)
                if leaf.state.terminal or leaf.proven is not None:
                    exact = float(leaf.state.z) if leaf.state.terminal else leaf.proven
                    _backup(path, -exact)  # z is for the player to move at the leaf
                    if config.solve:
                        leaf.proven = exact
                        _prove_path(path)
                elif leaf.pending:  # a collision: this leaf already waits in the batch
                    _undo_virtual_loss(path)
                    remaining[id(root)] += 1  # no simulation: it runs in a later round (a round's first never collides)
                else:
                    leaf.pending = True
                    leaves.append((leaf, path))
        if leaves:
            P, nu = evaluate([leaf.state for leaf, _ in leaves])
            for (leaf, path), p, v in zip(leaves, P, nu):
                leaf.pending = False
                leaf.expand(game, p, v)
                _backup(path, -float(v))  # (iii), v is for the player to move at the leaf
        live = [r for r in live if remaining[id(r)] > 0]


def _descend(game: Game, root: Node, c_puct: float, solve: bool = False) -> tuple[Node, list[tuple[Node, int]]]:
    """(i): from the root to an unexpanded, terminal (or, solve, proven) node; adds the virtual loss on the way."""
    node, path = root, []
    while node.expanded and len(node.actions) and node.proven is None:
        i = node.select(c_puct, solve)
        node.N[i] += 1  # the visit, and with W -= 1 the virtual loss until the backup
        node.W[i] -= 1.0
        path.append((node, i))
        node = node.child(game, i)
    return node, path


def _backup(path: list[tuple[Node, int]], value: float) -> None:
    """(iii): W(s, a) += value on the path, flipping the sign for the other player at each level.

    ``value`` is for the player who chose the last edge. The virtual loss W -= 1 is taken back.
    """
    for node, i in reversed(path):
        node.W[i] += value + 1.0  # + 1.0 removes the virtual loss
        value = -value  # negamax: one level up the other player chose


def _prove_path(path: list[tuple[Node, int]]) -> None:
    """solve: move the proof of the path's leaf up as far as it decides the nodes above."""
    for node, _ in reversed(path):
        if not node.prove():
            break


def _undo_virtual_loss(path: list[tuple[Node, int]]) -> None:
    for node, i in path:
        node.N[i] -= 1
        node.W[i] += 1.0


def root_value(root: Node) -> float:
    """The root's mean value for the player to move there (5.4's backup at the root): V(s) = sum_a W(s, a) /
    sum_a N(s, a) over its edges (nu if unvisited)."""
    if not root.expanded or not len(root.actions) or root.N.sum() == 0:
        return float(root.nu)
    return float(root.W.sum() / root.N.sum())


def policy(game: Game, root: Node, tau: float, rng: numpy.random.Generator | None = None) -> numpy.ndarray:
    """pi over all A actions: N(s, a)^(1/tau) / sum_b N(s, b)^(1/tau); tau = 0: the most visited move
    (ties broken at random with ``rng``, else the first)."""
    pi = numpy.zeros(game.action_count)
    if not root.expanded or not len(root.actions):
        return pi
    N = root.N
    if tau <= 0 or N.max() == 0:
        proven = numpy.array([numpy.nan if c is None or c.proven is None else -c.proven for c in root.children])
        if (proven == 1.0).any():  # solve: a proven win (the most visited of them)
            N = numpy.where(proven == 1.0, N + 1.0, 0.0)
        elif (proven == -1.0).any() and not (proven == -1.0).all():  # never a proven loss while another move is open
            N = numpy.where(proven == -1.0, -1.0, N)
        best = numpy.flatnonzero(N == N.max())
        pi[root.actions[best[0] if rng is None else rng.choice(best)]] = 1.0
        return pi
    weights = (N / N.max()) ** (1.0 / tau)  # divide by max N first: no overflow for small tau
    pi[root.actions] = weights / weights.sum()
    return pi


def advance(game: Game, root: Node, action: int) -> Node:
    """The subtree after ``action`` (its statistics are kept: tree reuse), or a fresh node."""
    if root.expanded:
        hits = numpy.flatnonzero(root.actions == action)
        if len(hits):
            return root.child(game, int(hits[0]))
    return Node(game.play(root.state, action))


class RolloutEvaluator:
    """Pure MCTS without a network: uniform priors P(s, a) = 1 / |A(s)| and nu = z of a random play-out
    to the end (instead of (p, nu) = f_theta(s) of 5.4).

    The classic Monte Carlo evaluation, an opponent for the arena ("vs pure MCTS").
    """

    def __init__(self, game: Game, rng: numpy.random.Generator, rollouts: int = 1) -> None:
        self.game, self.rng, self.rollouts = game, rng, int(rollouts)
        self.positions = 0

    def __call__(self, states: Sequence[State]) -> tuple[list[numpy.ndarray], numpy.ndarray]:
        P, nu = [], numpy.zeros(len(states))
        for j, state in enumerate(states):
            k = len(self.game.legal_actions(state))
            P.append(numpy.full(k, 1.0 / k))
            nu[j] = numpy.mean([self._playout(state) for _ in range(self.rollouts)])
        self.positions += len(states)
        return P, nu

    def _playout(self, state: State) -> float:
        """The result of random play from ``state``, for the player to move there."""
        me, game = state.player, self.game
        while not state.terminal:
            state = game.play(state, int(self.rng.choice(game.legal_actions(state))))
        return float(state.z if state.player == me else -state.z)
