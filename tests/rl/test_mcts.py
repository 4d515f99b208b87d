"""MCTS (5.4): P, N, Q, U, the negamax sign convention, Dirichlet noise at the root once per search,
virtual loss and batched leaf evaluation over many trees, tree reuse, and pi = N^(1/tau).

Most tests use evaluators without a network: a uniform one (P = 1/k, nu constant), random
play-outs (RolloutEvaluator) and a "hashed" one whose (P, nu) is a fixed pseudo-random function of
the position, so that results cannot depend on how positions are batched.
"""

import numpy as np
import pytest

from tiefnet.errors import ConfigError
from tiefnet.rl.alphazero.net import Evaluator, policy_value_net
from tiefnet.rl.games import make_game
from tiefnet.rl.mcts import Node, RolloutEvaluator, SearchConfig, advance, policy, search

TICTACTOE = make_game("tictactoe", history=2)
CONNECT4 = make_game("connect4", history=2)


def position(game, moves):
    state = game.initial()
    for a in moves:
        state = game.play(state, a)
    return state


class Uniform:
    """P = 1/k over the k legal moves, nu = ``nu`` for the player to move; records its batch sizes."""

    def __init__(self, game, nu=0.0):
        self.game, self.nu, self.batches = game, nu, []

    def __call__(self, states):
        self.batches.append(len(states))
        P = [np.full(len(self.game.legal_actions(s)), 1.0 / len(self.game.legal_actions(s))) for s in states]
        return P, np.full(len(states), self.nu)


class Hashed:
    """(P, nu) a fixed pseudo-random function of the moves that led to the position."""

    def __init__(self, game):
        self.game, self.batches = game, []

    def __call__(self, states):
        self.batches.append(len(states))
        P, nu = [], np.zeros(len(states))
        for j, s in enumerate(states):
            rng = np.random.default_rng([7, len(s.moves), *s.moves])
            P.append(rng.dirichlet(np.ones(len(self.game.legal_actions(s)))))
            nu[j] = rng.uniform(-0.9, 0.9)
        return P, nu


class CountingRng:
    """A Generator that counts its dirichlet draws (search draws nothing else)."""

    def __init__(self, seed):
        self.rng, self.dirichlet_calls = np.random.default_rng(seed), 0

    def dirichlet(self, alpha):
        self.dirichlet_calls += 1
        return self.rng.dirichlet(alpha)


def nodes_below(root):
    """Every expanded node of the tree but the root."""
    out, stack = [], [c for c in root.children if c is not None]
    while stack:
        node = stack.pop()
        if node.expanded:
            out.append(node)
            stack.extend(c for c in node.children if c is not None)
    return out


@pytest.fixture(scope="module")
def fixed_net():
    net = policy_value_net(TICTACTOE, 1, 4, np.random.default_rng(0))
    return Evaluator(TICTACTOE, net)


# --- reproducibility ---------------------------------------------------------------------------------
def test_visit_counts_reproducible_by_seed(fixed_net):
    state = position(TICTACTOE, [4])
    config = SearchConfig(simulations=60, dirichlet_alpha=0.3, noise_fraction=0.25)

    def visits(seed, noise=True):
        root = Node(state)
        search(TICTACTOE, [root], fixed_net, config, np.random.default_rng(seed), noise=noise)
        return root.N.copy()

    np.testing.assert_array_equal(visits(0), visits(0))
    assert not np.array_equal(visits(0), visits(1))  # other noise, other search
    np.testing.assert_array_equal(visits(0, noise=False), visits(1, noise=False))  # no noise: no randomness


# --- Dirichlet noise ----------------------------------------------------------------------------------
def test_noise_at_the_root_only_once_per_search():
    game = TICTACTOE
    root, rng = Node(position(game, [0])), CountingRng(1)
    config = SearchConfig(simulations=80, dirichlet_alpha=0.5, noise_fraction=0.25)
    search(game, [root], Hashed(game), config, rng)
    assert rng.dirichlet_calls == 1  # once per search, not per simulation
    assert not np.allclose(root.P, root.P_net) and root.P.sum() == pytest.approx(1.0)
    eta = (root.P - 0.75 * root.P_net) / 0.25  # P = (1 - eps) p + eps eta with eta a point of the simplex
    assert eta.min() >= -1e-12 and eta.sum() == pytest.approx(1.0)
    below = nodes_below(root)
    assert len(below) > 5
    for node in below:  # the children keep f_theta's prior
        assert node.P is node.P_net
    np.testing.assert_array_equal(root.P_net, Hashed(game)([root.state])[0][0])
    # a second search from the same (reused) root mixes fresh noise into P_net, not noise into noise
    first = root.P.copy()
    search(game, [root], Hashed(game), config, rng)
    assert rng.dirichlet_calls == 2 and not np.allclose(root.P, first)
    eta = (root.P - 0.75 * root.P_net) / 0.25
    assert eta.min() >= -1e-12 and eta.sum() == pytest.approx(1.0)
    search(game, [root], Hashed(game), config, rng, noise=False)
    assert rng.dirichlet_calls == 2 and root.P is root.P_net  # off: the network's prior again


def test_noise_per_root_and_not_for_a_single_move():
    game = TICTACTOE
    roots = [Node(position(game, moves)) for moves in ([], [4], [0, 1, 2, 4, 3, 5, 7, 6])]  # the last: one move left
    rng = CountingRng(2)
    search(game, roots, Hashed(game), SearchConfig(simulations=10), rng)
    assert rng.dirichlet_calls == 2  # one draw per root with a choice
    assert len(roots[2].actions) == 1 and roots[2].P is roots[2].P_net
    search(game, roots, Hashed(game), SearchConfig(simulations=10, noise_fraction=0.0), rng)
    assert rng.dirichlet_calls == 2 and all(r.P is r.P_net for r in roots)


# --- counting visits ----------------------------------------------------------------------------------
@pytest.mark.parametrize("leaves_per_round", [1, 4, 16])
def test_root_visits_sum_to_the_simulations_and_reuse_adds_up(leaves_per_round):
    game = TICTACTOE
    config = SearchConfig(simulations=120, leaves_per_round=leaves_per_round)
    root = Node(position(game, [0, 4]))
    search(game, [root], Hashed(game), config, np.random.default_rng(0))
    assert root.N.sum() == 120
    i = int(np.argmax(root.N))
    reused = int(root.N[i])
    child = advance(game, root, int(root.actions[i]))
    assert child is root.children[i] and child.expanded
    assert child.N.sum() == reused - 1  # the first visit expanded it; each later one went on below it
    search(game, [child], Hashed(game), config, np.random.default_rng(0))
    assert child.N.sum() == reused - 1 + 120
    assert (root.W <= root.N + 1e-9).all() and (root.W >= -root.N - 1e-9).all()  # |Q| <= 1: no virtual loss left


def test_advance_without_a_tree_is_a_fresh_node():
    game = TICTACTOE
    root = Node(game.initial())
    child = advance(game, root, 4)
    assert not child.expanded and child.state.moves == (4,)
    search(game, [root], Uniform(game), SearchConfig(simulations=3), np.random.default_rng(0))
    unvisited = next(int(a) for a, c in zip(root.actions, root.children) if c is None)
    fresh = advance(game, root, unvisited)
    assert not fresh.expanded and fresh.state.moves == (unvisited,)


# --- what the search finds ------------------------------------------------------------------------------
CASES = [
    # (game, moves so far, the one good move, why)
    (TICTACTOE, [0, 3, 1, 4], 2, "X completes the top row"),
    (TICTACTOE, [0, 4, 8, 1], 7, "X blocks O's middle column"),
    (CONNECT4, [0, 1, 0, 1, 0, 1], 0, "red completes column 1"),
    (CONNECT4, [0, 1, 0, 1, 0], 0, "yellow blocks red's column 1"),
]


@pytest.mark.parametrize("game, moves, best, why", CASES, ids=[c[3] for c in CASES])
@pytest.mark.parametrize("evaluator", ["uniform", "rollouts"])
def test_finds_the_immediate_win_and_blocks_the_immediate_loss(game, moves, best, why, evaluator):
    evaluate = Uniform(game) if evaluator == "uniform" else RolloutEvaluator(game, np.random.default_rng(3))
    root = Node(position(game, moves))
    simulations = 200 if game is TICTACTOE else 400
    search(game, [root], evaluate, SearchConfig(simulations=simulations, noise_fraction=0.0),
           np.random.default_rng(0), noise=False)
    assert int(root.actions[np.argmax(root.N)]) == best, (why, root.N)
    assert int(np.argmax(policy(game, root, 0.0))) == best


@pytest.mark.parametrize("game, moves, win", [(TICTACTOE, [0, 3, 1, 4], 2), (CONNECT4, [0, 1, 0, 1, 0, 1], 0)])
def test_a_winning_move_has_q_plus_one(game, moves, win):
    """Sign convention: the terminal child has z = -1 for its player to move (who lost), so the edge's
    W and Q are +1 for the player who chose it."""
    root = Node(position(game, moves))
    search(game, [root], Uniform(game), SearchConfig(simulations=100), np.random.default_rng(0), noise=False)
    i = int(np.flatnonzero(root.actions == win)[0])
    assert root.children[i].state.terminal and root.children[i].state.z == -1
    assert root.N[i] > 0 and root.W[i] / root.N[i] == pytest.approx(1.0, abs=1e-12)


def test_values_flip_sign_one_level_up():
    """nu = +0.5 for every player to move: each child position is good for the opponent, so after one
    visit per edge every Q(root, a) = -0.5."""
    game = TICTACTOE
    root = Node(game.initial())
    search(game, [root], Uniform(game, nu=0.5), SearchConfig(simulations=9), np.random.default_rng(0), noise=False)
    np.testing.assert_array_equal(root.N, np.ones(9))
    np.testing.assert_allclose(root.W / root.N, -0.5)


@pytest.mark.parametrize("leaves_per_round", [1, 4])
def test_negamax_backup_on_every_edge(leaves_per_round):
    """For every edge (s, a) to a child s': N(s, a) = 1 + sum_b N(s', b) and W(s, a) = -nu(s') - sum_b W(s', b)
    (the first visit brought -nu(s'), each later one the negated value of an edge of s'); at a terminal
    child every visit brought -z(s')."""
    game = TICTACTOE
    root = Node(position(game, [4]))
    search(game, [root], Hashed(game), SearchConfig(simulations=300, leaves_per_round=leaves_per_round),
           np.random.default_rng(0), noise=False)
    stack, edges, terminal = [root], 0, 0
    while stack:
        node = stack.pop()
        for i, child in enumerate(node.children):
            if child is None:
                assert node.N[i] == 0 and node.W[i] == 0
                continue
            edges += 1
            if child.state.terminal:
                terminal += 1
                assert node.W[i] == pytest.approx(-child.state.z * node.N[i], abs=1e-9)
            else:
                assert node.N[i] == 1 + child.N.sum()
                assert node.W[i] == pytest.approx(-child.nu - child.W.sum(), abs=1e-9)
                stack.append(child)
    assert edges > 100 and terminal > 0


# --- virtual loss and batching -------------------------------------------------------------------------
def test_virtual_loss_sends_several_leaves_per_call():
    game = CONNECT4
    one, many = Uniform(game), Uniform(game)
    r1, r4 = Node(game.initial()), Node(game.initial())
    search(game, [r1], one, SearchConfig(simulations=100, leaves_per_round=1), np.random.default_rng(0), noise=False)
    search(game, [r4], many, SearchConfig(simulations=100, leaves_per_round=4), np.random.default_rng(0), noise=False)
    assert r1.N.sum() == r4.N.sum() == 100
    assert max(one.batches[1:]) == 1 and max(many.batches) == 4
    assert len(many.batches) < len(one.batches) / 2  # fewer, larger f_theta calls
    assert (r4.W <= r4.N).all() and (r4.W >= -r4.N).all()  # every virtual loss taken back
    # the virtual loss makes the leaves of one round differ: the first round's four are four columns
    fresh = Node(game.initial())
    search(game, [fresh], Uniform(game), SearchConfig(simulations=5, leaves_per_round=4), np.random.default_rng(0),
           noise=False)
    assert (fresh.N > 0).sum() >= 4


def test_many_roots_in_one_batch_per_round():
    game = TICTACTOE
    evaluate = Uniform(game)
    roots = [Node(position(game, moves)) for moves in ([], [0], [4], [0, 8])]
    search(game, roots, evaluate, SearchConfig(simulations=20), np.random.default_rng(0), noise=False)
    assert evaluate.batches[0] == 4 and max(evaluate.batches) == 4  # one leaf of each tree per call
    assert all(r.N.sum() == 20 for r in roots)


@pytest.mark.parametrize("leaves_per_round", [1, 3])
def test_batched_roots_equal_separate_searches(leaves_per_round):
    game = TICTACTOE
    config = SearchConfig(simulations=50, leaves_per_round=leaves_per_round)
    games = ([], [4], [0, 4], [0, 4, 8], [2, 4, 6, 0])
    together = [Node(position(game, m)) for m in games]
    search(game, together, Hashed(game), config, np.random.default_rng(0), noise=False)
    for root, moves in zip(together, games):
        alone = Node(position(game, moves))
        search(game, [alone], Hashed(game), config, np.random.default_rng(5), noise=False)
        np.testing.assert_array_equal(root.N, alone.N)
        np.testing.assert_allclose(root.W, alone.W, rtol=0, atol=1e-12)


def test_terminal_and_finished_roots():
    game = TICTACTOE
    over = Node(position(game, [0, 3, 1, 4, 2]))  # X has won
    live = Node(game.initial())
    evaluate = Uniform(game)
    search(game, [over, live], evaluate, SearchConfig(simulations=5), np.random.default_rng(0))
    assert not over.expanded and live.N.sum() == 5
    np.testing.assert_array_equal(policy(game, over, 1.0), np.zeros(9))


# --- pi = N^(1/tau) ----------------------------------------------------------------------------------------
def visited(game, actions, N):
    """A root expanded over ``actions`` with the visit counts N."""
    root = Node(game.initial())
    root.expand(game, np.full(9, 1 / 9), 0.0)
    keep = np.isin(root.actions, actions)
    root.actions, root.N = root.actions[keep], np.asarray(N, np.float64)
    root.P = root.P_net = root.P[keep]
    root.W = np.zeros(len(N))
    return root


def test_policy_tau_one_and_half():
    root = visited(TICTACTOE, [1, 4, 7], [10, 30, 60])
    np.testing.assert_allclose(policy(TICTACTOE, root, 1.0), [0, 0.1, 0, 0, 0.3, 0, 0, 0.6, 0], rtol=1e-12)
    squares = np.array([100, 900, 3600]) / 4600
    np.testing.assert_allclose(policy(TICTACTOE, root, 0.5)[[1, 4, 7]], squares, rtol=1e-12)
    with np.errstate(over="raise", invalid="raise"):
        pi = policy(TICTACTOE, visited(TICTACTOE, [1, 4], [999, 1000]), 1e-3)  # 1000^1000 would overflow
    assert pi[4] > 0.7 and pi.sum() == pytest.approx(1.0)


def test_policy_tau_zero_and_ties():
    root = visited(TICTACTOE, [1, 4, 7], [10, 60, 30])
    np.testing.assert_array_equal(policy(TICTACTOE, root, 0.0), np.eye(9)[4])
    tie = visited(TICTACTOE, [2, 5, 8], [40, 40, 20])
    np.testing.assert_array_equal(policy(TICTACTOE, tie, 0.0), np.eye(9)[2])  # without rng: the first
    picks = {int(np.argmax(policy(TICTACTOE, tie, 0.0, np.random.default_rng(s)))) for s in range(30)}
    assert picks == {2, 5}  # with rng: either of the most visited, never the other
    np.testing.assert_allclose(policy(TICTACTOE, tie, 1.0)[[2, 5, 8]], [0.4, 0.4, 0.2])
    unvisited = visited(TICTACTOE, [3, 6], [0, 0])
    assert policy(TICTACTOE, unvisited, 1.0).sum() == 1.0  # no visits: a move all the same
    assert policy(TICTACTOE, Node(TICTACTOE.initial()), 1.0).sum() == 0.0  # not searched: no pi


# --- settings and contracts --------------------------------------------------------------------------------
@pytest.mark.parametrize("changes", [{"simulations": 0}, {"simulations": 2.0}, {"leaves_per_round": 0},
                                     {"leaves_per_round": 257}, {"c_puct": 0.0}, {"dirichlet_alpha": -1.0},
                                     {"noise_fraction": 1.5}, {"c_puct": float("nan")}])
def test_bad_search_settings(changes):
    with pytest.raises(ConfigError, match=next(iter(changes))):
        SearchConfig(**changes)


def test_wrong_number_of_priors():
    node = Node(TICTACTOE.initial())
    with pytest.raises(ValueError, match="8 priors for 9 legal actions"):
        node.expand(TICTACTOE, np.full(8, 1 / 8), 0.0)


# --- MCTS-solver (solve=True) ---------------------------------------------------------------------
def _proven_nodes(node):
    if node.proven is not None:
        yield node
    for child in node.children:
        if child is not None:
            yield from _proven_nodes(child)


@pytest.mark.parametrize("moves", [(), (4,), (0, 4), (4, 0, 8), (0, 1, 4), (4, 2, 6, 0)])
def test_every_proof_of_the_solver_is_the_minimax_value(moves):
    """Whatever the solver proves anywhere in the tree is the exact value of that position (for the
    player to move), checked against perfect minimax; a decided root (a forced win) is proven."""
    from tiefnet.rl.games import tictactoe_minimax
    root = Node(position(TICTACTOE, moves))
    search(TICTACTOE, [root], Hashed(TICTACTOE), SearchConfig(simulations=3000, solve=True),
           np.random.default_rng(0), noise=False)
    proven = list(_proven_nodes(root))
    assert len(proven) > 50
    for node in proven:
        assert node.proven == tictactoe_minimax.value(node.state.moves), node.state.moves
    if tictactoe_minimax.value(moves) != 0:
        assert root.proven == tictactoe_minimax.value(moves)


def test_the_solver_takes_a_proven_win_and_avoids_a_proven_loss():
    # X: 0, 4; O: 1, 2 -> X to move wins at once at 8 (3, 5, 6 win later); 7 only draws
    state = position(TICTACTOE, (0, 1, 4, 2))

    class Misleading(Uniform):  # nearly all prior on 7, the drawing move
        def __call__(self, states):
            P, nu = super().__call__(states)
            for s, p in zip(states, P):
                actions = list(self.game.legal_actions(s))
                if s is state or s.moves == state.moves:
                    p[:] = 0.001
                    p[actions.index(7)] = 1.0 - 0.001 * (len(p) - 1)
            return P, nu

    for solve in (False, True):
        root = Node(state)
        search(TICTACTOE, [root], Misleading(TICTACTOE), SearchConfig(simulations=60, solve=solve),
               np.random.default_rng(0), noise=False)
        move = int(np.argmax(policy(TICTACTOE, root, 0.0)))
        if solve:
            assert root.proven == 1.0 and move in (3, 5, 6, 8)
        else:
            assert all(c is None or c.proven is None for c in root.children)  # no proofs without solve
    # O to move after X threatens twice (X: 0, 4, 6 vs O: 1, 8): every move loses, the root is proven lost
    root = Node(position(TICTACTOE, (0, 1, 4, 8, 6)))
    search(TICTACTOE, [root], Uniform(TICTACTOE), SearchConfig(simulations=400, solve=True),
           np.random.default_rng(0), noise=False)
    assert root.proven == -1.0


def test_the_solvers_proofs_in_connect_four_agree_with_the_exact_solver():
    """Connect Four from random positions of ply 22-26: every proof of the MCTS-solver is the exact
    value of the weak solver (win / draw / loss for the player to move)."""
    from tiefnet.rl.games.connect4_solver import Solver
    solver, rng, checked = Solver(table_size=2 ** 16), np.random.default_rng(3), 0
    for _ in range(3):
        state = CONNECT4.initial()
        while state.ply < rng.integers(22, 27) or state.terminal:
            state = CONNECT4.initial() if state.terminal else state
            state = CONNECT4.play(state, int(rng.choice(CONNECT4.legal_actions(state))))
        root = Node(state)
        search(CONNECT4, [root], Hashed(CONNECT4), SearchConfig(simulations=400, solve=True), rng, noise=False)
        for node in _proven_nodes(root):
            if not node.state.terminal:
                assert node.proven == solver.weak_solve(node.state.moves), node.state.moves
                checked += 1
    assert checked >= 10


def test_simulations_and_noise_per_root():
    """One batched search with its own budget and noise per root (playout cap randomisation)."""
    roots = [Node(TICTACTOE.initial()) for _ in range(3)]
    search(TICTACTOE, roots, Uniform(TICTACTOE), SearchConfig(simulations=40, noise_fraction=0.5),
           np.random.default_rng(0), noise=[True, False, True], simulations=[40, 8, 0])
    assert [r.N.sum() for r in roots] == [40, 8, 0]
    assert not np.allclose(roots[0].P, roots[0].P_net) and np.allclose(roots[1].P, roots[1].P_net)
    with pytest.raises(ValueError, match="one entry per root"):
        search(TICTACTOE, roots, Uniform(TICTACTOE), SearchConfig(), np.random.default_rng(0), simulations=[1])


def test_root_value_is_the_mean_of_the_backups():
    from tiefnet.rl.mcts import root_value
    root = Node(position(TICTACTOE, (0, 1, 4, 2)))  # X to move wins
    assert root_value(root) == 0.0  # not expanded yet: nu = 0
    search(TICTACTOE, [root], Uniform(TICTACTOE, nu=0.0), SearchConfig(simulations=200), np.random.default_rng(0),
           noise=False)
    assert root_value(root) == pytest.approx(root.W.sum() / root.N.sum()) and root_value(root) > 0.5
