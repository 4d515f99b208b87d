"""Finite Markov decision processes and dynamic programming (lecture 5.1): the MDP (S, A, R, P, gamma),
the Bellman equation, value iteration with the lecture's stopping rule, policy iteration with exact
policy evaluation, modified policy iteration, and the greedy policy pi(s) = argmax_a sum_s' P(s'|s,a) U(s').

Notation (the lecture's):
    P(s'|s, a), |A| x |S| x |S| numbers; R[s] = R(s), shape (|S|,); 0 < gamma <= 1.
    A terminal state s has no successor: P(.|s, a) = 0, so its utility is U(s) = R(s) (the exits of
    the grid world). The Bellman step of a whole sweep is one matrix product, (A S, S) @ (S,) -> (A, S).

P is stored sparse (a scipy CSR matrix of shape (A S, S), row a S + s = P(.|s, a)): a grid world has at
most 3 successors per (s, a), so a map of 10^6 fields needs about 10^7 numbers, not 4 10^12.
Tabular MDPs are host bookkeeping, so this module computes with NumPy/SciPy in float64.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy
import scipy.sparse
import scipy.sparse.csgraph
import scipy.sparse.linalg

from tiefnet.errors import ConfigError

NO_ACTION = -1  # pi(s) of a terminal state: nothing to choose
DENSE_STATES = 2000  # up to this many states policy evaluation solves densely (and checks the condition)


@dataclass(frozen=True)
class MDP:
    """The tuple (S, A, R, P, gamma) of 5.1; states and actions are numbered 0..|S|-1, 0..|A|-1.

    Shapes: P given as a dense (A, S, S) array with P[a, s, s'] = P(s'|s, a) or a sparse (A S, S) matrix,
    stored as the sparse one (:meth:`dense` gives the array back); R (S,); terminal (S,) bool, derived
    from P (a state whose rows are all zero). Every other row of P sums to 1.
    """

    P: numpy.ndarray
    R: numpy.ndarray
    gamma: float = 1.0
    actions: tuple[str, ...] = ()  # names of the actions, for printing (default "0", "1", ...)
    terminal: numpy.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        P = _sparse(self.P)  # (A S, S)
        R = numpy.array(self.R, dtype=numpy.float64)
        S = P.shape[1]
        A = P.shape[0] // S
        if R.shape != (S,):
            raise ConfigError(f"R has shape {R.shape}; the MDP has S = {S} states, so R needs shape ({S},)")
        if not (numpy.isfinite(P.data).all() and numpy.isfinite(R).all()) or (P.data < 0).any():
            raise ConfigError("P and R must be finite and P non-negative")
        rows = P.sum(axis=1).reshape(A, S)  # (A, S)
        terminal = (rows == 0).all(axis=0)  # (S,)
        bad = ~numpy.isclose(rows, 1.0, atol=1e-9) & ~terminal[None, :]
        if bad.any():
            a, s = map(int, numpy.argwhere(bad)[0])
            raise ConfigError(f"P(.|s={s}, a={a}) sums to {rows[a, s]:.6g}, not 1 (a terminal state has all rows 0)")
        if not (isinstance(self.gamma, (int, float)) and 0.0 < self.gamma <= 1.0):
            raise ConfigError(f"gamma={self.gamma} must be in (0, 1]")
        if self.actions and len(self.actions) != A:
            raise ConfigError(f"{len(self.actions)} action names for A = {A} actions")
        for part in (P.data, P.indices, P.indptr, R):
            part.setflags(write=False)
        terminal.setflags(write=False)
        object.__setattr__(self, "P", P)
        object.__setattr__(self, "R", R)
        object.__setattr__(self, "gamma", float(self.gamma))
        object.__setattr__(self, "actions", tuple(self.actions) or tuple(str(a) for a in range(A)))
        object.__setattr__(self, "terminal", terminal)

    @property
    def n_states(self) -> int:
        return self.P.shape[1]

    @property
    def n_actions(self) -> int:
        return self.P.shape[0] // self.P.shape[1]

    def dense(self) -> numpy.ndarray:
        """P as the dense (A, S, S) array, P[a, s, s'] = P(s'|s, a) (for small MDPs: tests, printing)."""
        return self.P.toarray().reshape(self.n_actions, self.n_states, self.n_states)

    def policy_matrix(self, pi: numpy.ndarray):
        """P_pi, sparse (S, S): row s is P(.|s, pi(s)); zero at terminal states."""
        S = self.n_states
        return self.P[numpy.clip(pi, 0, None) * S + numpy.arange(S)]


def _sparse(P):
    """P as a CSR matrix (A S, S) of float64, sorted, without stored zeros; from (A, S, S) or (A S, S)."""
    if scipy.sparse.issparse(P):
        if P.ndim != 2 or P.shape[1] < 1 or P.shape[0] < P.shape[1] or P.shape[0] % P.shape[1]:
            raise ConfigError(f"sparse P has shape {P.shape}; an MDP needs (A S, S) with row a S + s = P(.|s,a)")
        P = scipy.sparse.csr_array(P, dtype=numpy.float64, copy=True)
    else:
        P = numpy.array(P, dtype=numpy.float64)
        if P.ndim != 3 or P.shape[1] != P.shape[2] or P.shape[0] < 1 or P.shape[1] < 1:
            raise ConfigError(f"P has shape {P.shape}; an MDP needs P of shape (A, S, S) with P[a, s, s'] = P(s'|s,a)")
        A, S, _ = P.shape
        P = scipy.sparse.csr_array(P.reshape(A * S, S))
    P.sum_duplicates()
    P.eliminate_zeros()
    P.sort_indices()
    return P


@dataclass
class Solution:
    """What a dynamic-programming solver returns: U (S,), the greedy policy pi (S,) (NO_ACTION at
    terminal states), the iterations it took, the lecture's bound on ||U - U*|| and whether it stopped
    by its rule (not by the iteration limit)."""

    U: numpy.ndarray
    pi: numpy.ndarray
    iterations: int
    error_bound: float
    converged: bool
    method: str
    sweeps: int = 0  # Bellman sweeps over all states (value iteration: = iterations)


def expected_utility(mdp: MDP, U: numpy.ndarray) -> numpy.ndarray:
    """sum_s' P(s'|s, a) U(s') for every (a, s): (A S, S) @ (S,) -> (A, S)."""
    return (mdp.P @ U).reshape(mdp.n_actions, mdp.n_states)


def bellman(mdp: MDP, U: numpy.ndarray) -> numpy.ndarray:
    """B(U)(s) = R(s) + gamma max_a sum_s' P(s'|s,a) U(s')   (Bellman equation, one value-iteration step)."""
    return mdp.R + mdp.gamma * expected_utility(mdp, U).max(axis=0)


def q_values(mdp: MDP, U: numpy.ndarray) -> numpy.ndarray:
    """Q(s, a) = R(s) + gamma sum_s' P(s'|s,a) U(s') (5.2), shape (S, A) like a Q-learning table.

    With U = U* this is the optimal Q-function Q*, from which U*(s) = max_a Q*(s, a) and
    pi*(s) = argmax_a Q*(s, a) follow without P (the reason Q-learning is model-free).
    """
    return (mdp.R[None, :] + mdp.gamma * expected_utility(mdp, U)).T


def bellman_q(mdp: MDP, Q: numpy.ndarray) -> numpy.ndarray:
    """Q*(s, a) = R(s) + gamma sum_s' P(s'|s, a) max_a' Q*(s', a')   (5.2.1, the Bellman equation for Q*):
    one sweep of its right-hand side, (S, A) -> (S, A). Q* is its fixed point."""
    return q_values(mdp, Q.max(axis=1))


def greedy_policy(mdp: MDP, U: numpy.ndarray, pi: numpy.ndarray | None = None) -> numpy.ndarray:
    """pi(s) = argmax_a sum_s' P(s'|s,a) U(s'); NO_ACTION at terminal states.

    Ties (up to rounding, 1e-12 relative) go to ``pi``'s action where it is among the best (so policy
    iteration cannot cycle between equally good policies), else to the first best action.
    """
    EU = expected_utility(mdp, U)  # (A, S)
    best = EU.max(axis=0)  # (S,)
    tie = EU >= best - 1e-12 * numpy.maximum(1.0, numpy.abs(best))  # (A, S)
    new = tie.argmax(axis=0)
    if pi is not None:
        keep = (pi >= 0) & tie[numpy.clip(pi, 0, None), numpy.arange(mdp.n_states)]
        new = numpy.where(keep, pi, new)
    return numpy.where(mdp.terminal, NO_ACTION, new)


def max_norm(U: numpy.ndarray) -> float:
    """||U|| = max_s |U(s)|."""
    return float(numpy.abs(U).max())


def bellman_residual(mdp: MDP, U: numpy.ndarray) -> float:
    """||B(U) - U||: zero exactly at the solution of the Bellman equation."""
    return max_norm(bellman(mdp, U) - U)


def lecture_bound(gamma: float, delta: float) -> float:
    """||U_i - U|| <= gamma / (1 - gamma) ||U_i - U_{i-1}||  for U_i = B(U_{i-1}).

    For gamma = 1 there is no such bound (B is no contraction): inf, even at an exact fixed point.
    """
    return math.inf if gamma >= 1.0 else gamma / (1.0 - gamma) * delta


def _check(epsilon: float, limit: int, name: str) -> None:
    if not (math.isfinite(epsilon) and epsilon > 0):
        raise ConfigError(f"epsilon={epsilon} must be a positive number")
    if limit < 1:
        raise ConfigError(f"{name}={limit} must be at least 1")


def value_iteration(mdp: MDP, epsilon: float = 1e-6, max_sweeps: int = 100_000,
                    U0: numpy.ndarray | None = None) -> Solution:
    """U_{i+1} = B(U_i) until ||U_i - U_{i-1}|| <= epsilon (1 - gamma) / gamma, so that ||U_i - U|| < epsilon.

    For gamma = 1 the rule asks for an exact fixed point (U_i = U_{i-1} in floating point); ``max_sweeps``
    stops the iteration where that never happens (then ``converged`` is False).
    """
    _check(epsilon, max_sweeps, "max_sweeps")
    threshold = epsilon * (1.0 - mdp.gamma) / mdp.gamma
    U = numpy.zeros(mdp.n_states) if U0 is None else numpy.array(U0, dtype=numpy.float64)
    delta = math.inf
    for i in range(1, max_sweeps + 1):
        U, U_prev = bellman(mdp, U), U
        delta = max_norm(U - U_prev)
        if delta <= threshold:
            break
    converged = delta <= threshold
    return Solution(U, greedy_policy(mdp, U), i, lecture_bound(mdp.gamma, delta), converged, "value", sweeps=i)


def policy_evaluation(mdp: MDP, pi: numpy.ndarray) -> numpy.ndarray:
    """U^pi(s) = R(s) + gamma sum_s' P(s'|s, pi(s)) U^pi(s'): solve (I - gamma P_pi) U = R (dense up to
    DENSE_STATES states, O(|S|^3); sparse LU above)."""
    S = mdp.n_states
    P_pi = mdp.policy_matrix(pi)  # (S, S): row s is P(.|s, pi(s)), zero at terminal states: U(s) = R(s)
    if S <= DENSE_STATES:
        M = numpy.eye(S) - mdp.gamma * P_pi.toarray()
        try:
            U = numpy.linalg.solve(M, mdp.R)
        except numpy.linalg.LinAlgError:
            U = None
        singular = U is None or not numpy.isfinite(U).all() or numpy.linalg.cond(M) > 1e12
    else:
        M = (scipy.sparse.identity(S, format="csc") - mdp.gamma * P_pi).tocsc()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", scipy.sparse.linalg.MatrixRankWarning)
                U = scipy.sparse.linalg.spsolve(M, mdp.R)
        except (RuntimeError, scipy.sparse.linalg.MatrixRankWarning):
            U = None
        except MemoryError:
            raise ConfigError(f"policy evaluation: the linear solve for {S} states needs more memory than there "
                              f"is; use --method value or modified") from None
        singular = U is None or not numpy.isfinite(U).all() or max_norm(M @ U - mdp.R) > 1e-8 * max(1, max_norm(U))
    if singular:
        raise ConfigError("policy evaluation: I - gamma P_pi is singular: the policy never reaches a terminal "
                          "state from some state (gamma = 1); use gamma < 1 or a policy that ends the episodes")
    return U


def proper_policy(mdp: MDP) -> numpy.ndarray:
    """A policy that reaches a terminal state with positive probability from every state where any policy can.

    Built backwards from the terminal states: a state joins once some action can move it (P > 0) into a
    state that has already joined, and takes that action. For gamma = 1 its U^pi is finite, so policy
    iteration can start from it (the lecture's "e.g. random" pi_0 may circle forever, e.g. into a wall).
    """
    A, S = mdp.n_actions, mdp.n_states
    P = mdp.P.tocoo()
    s_of, s_next = P.row % S, P.col  # one entry per P(s'|s, a) > 0; its action is P.row // S
    # the steps a state joins at: the shortest path s -> s' -> ... into a terminal state (node S: all of them)
    steps = scipy.sparse.csr_array((numpy.ones(len(s_of)), (s_next, s_of)), shape=(S + 1, S + 1))
    steps += scipy.sparse.csr_array((numpy.ones(int(mdp.terminal.sum())), (numpy.full(int(mdp.terminal.sum()), S),
                                     numpy.flatnonzero(mdp.terminal))), shape=(S + 1, S + 1))
    joins = scipy.sparse.csgraph.dijkstra(steps, indices=S, unweighted=True)[:S] - 1  # (S,): 0 for terminal
    # the first action that can step into the states that joined one step earlier (as the sweeps of 5.1 find it)
    into = numpy.zeros(A * S, dtype=bool)
    into[P.row[numpy.isfinite(joins[s_of]) & (joins[s_next] == joins[s_of] - 1)]] = True
    into = into.reshape(A, S)
    pi = numpy.where(into.any(axis=0), into.argmax(axis=0), 0)
    return numpy.where(mdp.terminal, NO_ACTION, pi)


def policy_iteration(mdp: MDP, pi0: numpy.ndarray | None = None, max_iterations: int = 1000) -> Solution:
    """(a) U_i = U^{pi_i} (exact, a linear solve); (b) pi_{i+1}(s) = argmax_a sum_s' P(s'|s,a) U_i(s');
    stop when pi_{i+1} = pi_i (then U_i is the fixed point of B). pi_0 defaults to :func:`proper_policy`."""
    _check(1.0, max_iterations, "max_iterations")
    if pi0 is not None and numpy.shape(pi0) != (mdp.n_states,):
        raise ConfigError(f"pi0 must hold one action per state ({mdp.n_states} states), got shape {numpy.shape(pi0)}")
    pi = proper_policy(mdp) if pi0 is None else numpy.where(mdp.terminal, NO_ACTION, numpy.asarray(pi0))
    if ((pi < 0) & ~mdp.terminal).any() or (pi >= mdp.n_actions).any():
        raise ConfigError(f"pi0 must hold one action in 0..{mdp.n_actions - 1} per state ({mdp.n_states} states)")
    stable = False
    for i in range(1, max_iterations + 1):
        U = policy_evaluation(mdp, pi)  # (a)
        pi, pi_prev = greedy_policy(mdp, U, pi), pi  # (b)
        stable = bool((pi == pi_prev).all())
        if stable:
            break
    residual = bellman_residual(mdp, U)  # zero up to rounding at a fixed point
    bound = math.inf if mdp.gamma >= 1 else residual / (1.0 - mdp.gamma)
    return Solution(U, pi, i, bound, stable, "policy", sweeps=0)


def modified_policy_iteration(mdp: MDP, k: int = 10, epsilon: float = 1e-6, max_iterations: int = 100_000,
                              U0: numpy.ndarray | None = None) -> Solution:
    """pi_{i+1} = greedy(U_i), then k sweeps U_{i,j+1}(s) = R(s) + gamma sum_s' P(s'|s, pi(s)) U_{i,j}(s').

    The first sweep is the value-iteration step B(U_i), so the lecture's stopping rule applies to it:
    stop when ||B(U_i) - U_i|| <= epsilon (1 - gamma) / gamma and return B(U_i) (error < epsilon).
    """
    _check(epsilon, max_iterations, "max_iterations")
    if k < 1:
        raise ConfigError(f"k={k} evaluation sweeps must be at least 1")
    threshold = epsilon * (1.0 - mdp.gamma) / mdp.gamma
    S = mdp.n_states
    U = numpy.zeros(S) if U0 is None else numpy.array(U0, dtype=numpy.float64)
    pi, sweeps, delta = greedy_policy(mdp, U), 0, math.inf
    for i in range(1, max_iterations + 1):
        pi = greedy_policy(mdp, U, pi)  # policy improvement
        P_pi = mdp.policy_matrix(pi)  # (S, S), zero rows at terminal states
        for j in range(k):  # k evaluation sweeps; j = 0 is B(U_i)
            U_next = mdp.R + mdp.gamma * (P_pi @ U)
            sweeps += 1
            if j == 0:
                delta = max_norm(U_next - U)
            U = U_next
            if j == 0 and delta <= threshold:
                break
        if delta <= threshold:
            break
    converged = delta <= threshold
    return Solution(U, greedy_policy(mdp, U, pi), i, lecture_bound(mdp.gamma, delta), converged, "modified",
                    sweeps=sweeps)


SOLVERS = {"value": value_iteration, "policy": policy_iteration, "modified": modified_policy_iteration}


def solve(mdp: MDP, method: str = "value", **options) -> Solution:
    """Solve ``mdp`` with value iteration, policy iteration or modified policy iteration."""
    if method not in SOLVERS:
        raise ConfigError(f"method={method!r} is not one of {', '.join(SOLVERS)}")
    return SOLVERS[method](mdp, **options)
