"""An exact Connect Four solver (7 columns x 6 rows): the judge of the Connect Four agents of 5.4.

It works from a move sequence alone (columns 0..6, the first player first) and depends on no
other module of tiefnet. The ideas are those of Pascal Pons' solver blog, written anew here:

    bitboards          a position is two Python ints, one bit per cell
    negamax            v(s) = max_a -v(s a), searched with alpha-beta
    null windows       the exact score by a binary search of (alpha, alpha + 1) searches
    move ordering      moves that create the most threats first, then centre-first
    non-losing moves   never play below an opponent's threat; block a single threat at once;
                       two threats lose
    transposition      an upper and a lower bound per position in a fixed-size table
    follow-up rule     (Allis' "claimeven") when every column has an even height, the second
                       player can answer each move on top of it; if the first player's stones
                       plus every empty cell of rows 0, 2, 4 hold no four, he cannot win

Score (Pons' convention), from the view of the player to move:

    +k   the mover wins with his (22 - k)-th stone: score = (43 - n) // 2 for a win on move n + 1
     0   a draw
    -k   the opponent wins with his (22 - k)-th stone

so the empty board scores +1 (the first player wins with his last stone) and larger means sooner.

Bitboard layout: bit 7 c + r is column c, row r (row 0 at the bottom); row 6 of each column is an
always-empty sentinel so that shifts never wrap from one column into the next.

Speed (bench/connect4_solver_speed.py, one core of a shared 2-core machine, ~200k positions/s):
random positions after 10 plies are weak-solved in 4 s on average (median 0.8 s, the slowest
draws 14 s), after 12 plies in 0.7 s, after 16 in 0.05 s; after 8 plies in 12 s (up to a minute).
The empty board is out of reach. Judging a move of a game at ply >= 10 takes ~1.2 s on average
(weak) or ~1.5 s (exact); the positions of one game judged from its end backwards with one
Solver reuse the table and take about a third less.
"""
from __future__ import annotations

import operator
from array import array

WIDTH, HEIGHT = 7, 6
CELLS = WIDTH * HEIGHT                                   # 42
_H1 = HEIGHT + 1                                         # bits per column, sentinel included
BOTTOM = sum(1 << (c * _H1) for c in range(WIDTH))      # row 0 of every column
BOARD = BOTTOM * ((1 << HEIGHT) - 1)                     # the 42 playable cells
EVEN_ROWS = BOTTOM * 0b1010101                           # rows 0, 2, 4 and the sentinel row 6
COLUMN = tuple(((1 << HEIGHT) - 1) << (c * _H1) for c in range(WIDTH))
TOP = tuple(1 << (c * _H1 + HEIGHT - 1) for c in range(WIDTH))   # set when column c is full
CENTRE_FIRST = (3, 2, 4, 1, 5, 0, 6)
RANKED_COLUMNS = tuple((-rank, COLUMN[col]) for rank, col in enumerate(CENTRE_FIRST))
_OFFSET = 64                                             # a bound is stored as score + 64 in one byte
_LOW, _HIGH = 255, 255 << 8                              # the bytes of the lower and the upper bound


def _winning_cells(p: int, mask: int) -> int:
    """The empty cells where stones ``p`` would complete four in a row (mask: every stone)."""
    r = (p << 1) & (p << 2) & (p << 3)                   # vertical: three below
    for s in (_H1, _H1 - 1, _H1 + 1):                    # horizontal, diagonal /, diagonal \
        a = (p << s) & (p << 2 * s)                      # x-s and x-2s are own
        r |= a & ((p << 3 * s) | (p >> s))               # ... and x-3s or x+s
        b = (p >> s) & (p >> 2 * s)                      # x+s and x+2s are own
        r |= b & ((p << s) | (p >> 3 * s))               # ... and x-s or x+3s
    return r & (BOARD ^ mask)


def _lines_through() -> tuple[tuple[int, ...], ...]:
    """Indexed by a cell's bit.bit_length(): each line of four through the cell, less the cell."""
    lines = []
    for c in range(WIDTH):
        for r in range(HEIGHT):
            for dc, dr in ((1, 0), (0, 1), (1, 1), (1, -1)):
                cells = [(c + k * dc, r + k * dr) for k in range(4)]
                if all(0 <= cc < WIDTH and 0 <= rr < HEIGHT for cc, rr in cells):
                    lines.append(sum(1 << (cc * _H1 + rr) for cc, rr in cells))
    through = [()] * (WIDTH * _H1 + 1)
    for c in range(WIDTH):
        for r in range(HEIGHT):
            cell = 1 << (c * _H1 + r)
            through[cell.bit_length()] = tuple(line ^ cell for line in lines if line & cell)
    return tuple(through)


LINES_THROUGH = _lines_through()                         # the 69 lines of the board, by cell


def _has_four(p: int) -> bool:
    """Whether stones ``p`` hold four in a row."""
    for s in (1, _H1, _H1 - 1, _H1 + 1):
        m = p & (p >> s)
        if m & (m >> 2 * s):
            return True
    return False


def position(moves) -> tuple[int, int]:
    """(current, mask): the stones of the player to move and all stones after ``moves``.

    Raises ValueError for a column outside 0..6, a full column, or a move after a win.
    """
    current, mask = 0, 0
    for n, move in enumerate(moves):
        try:
            col = operator.index(move)
        except TypeError:
            raise ValueError(f"move {n}: {move!r} is not a column number") from None
        if not 0 <= col < WIDTH:
            raise ValueError(f"move {n}: column {col} is outside 0..{WIDTH - 1}")
        if mask & TOP[col]:
            raise ValueError(f"move {n}: column {col} is full")
        if _has_four(current ^ mask):
            raise ValueError(f"move {n}: the game was already won by the previous move")
        current ^= mask                                  # the opponent becomes the player to move
        mask |= mask + (1 << (col * _H1))
    return current, mask


def winning_columns(moves, opponent: bool = False) -> list[int]:
    """The columns where the player to move (or, with opponent=True, the other player, were it his
    turn) makes four with his next stone; ValueError for an invalid sequence."""
    current, mask = position(moves)
    stones = current ^ mask if opponent else current
    cells = _winning_cells(stones, mask) & (mask + BOTTOM)
    return [col for col in range(WIDTH) if cells & COLUMN[col]]


def _largest_prime_at_most(n: int) -> int:
    def is_prime(k):
        return k >= 2 and all(k % d for d in range(2, int(k ** 0.5) + 1))
    while not is_prime(n):
        n -= 1
    return n


class Solver:
    """Exact and weak Connect Four solving with a transposition table of ``table_size`` entries.

    The table is an ``array('Q')`` of 8 bytes per entry (2**22 entries: 32 MiB, allocated once),
    indexed by key % size for the largest prime size <= table_size. An entry is
    ``tag << 16 | (upper + 64) << 8 | (lower + 64)`` with tag = key // size (index and tag give the
    key back, so a hit is never a collision) and a zero byte for "no bound"; a new position
    replaces the old one. The table is kept between calls: judging many positions of one game
    reuses what the earlier searches found (``reset`` empties it).
    """

    def __init__(self, table_size: int = 2 ** 22) -> None:
        if not (isinstance(table_size, int) and not isinstance(table_size, bool) and 2 ** 10 <= table_size <= 2 ** 28):
            raise ValueError(f"table_size={table_size!r} must be a whole number in 2**10..2**28")
        self.table_size = _largest_prime_at_most(table_size)
        self.table = array("Q", bytes(8 * self.table_size))
        self.nodes = 0                                   # positions searched so far, for benchmarks

    @property
    def table_megabytes(self) -> float:
        """The memory of the transposition table in MiB."""
        return self.table.itemsize * len(self.table) / 2 ** 20

    def reset(self) -> None:
        """Empty the transposition table."""
        self.table = array("Q", bytes(8 * self.table_size))

    # --- the search ----------------------------------------------------------------------------
    def _negamax(self, current: int, mask: int, n: int, alpha: int, beta: int, threats: int, own: int) -> int:
        """The score of a position where the player to move cannot win at once, or a bound:
        v <= alpha means score <= v, v >= beta means score >= v, else v is the score.

        current, mask: the mover's stones and all stones; n: stones on the board;
        threats, own: the opponent's and the mover's winning cells (kept up to date move by move).
        """
        self.nodes += 1
        possible = (mask + BOTTOM) & BOARD
        forced = possible & threats
        if forced:
            if forced & (forced - 1):                    # two threats at once: lost next move
                return -((CELLS - n) // 2)
            possible = forced
        playable = possible & ~(threats >> 1)            # never fill the cell below a threat
        if not playable:
            return -((CELLS - n) // 2)
        if n >= CELLS - 2:                               # neither side can win any more
            return 0
        lowest = -((CELLS - 2 - n) // 2)                 # the opponent cannot win next move
        if alpha < lowest:
            alpha = lowest
            if alpha >= beta:
                return alpha
        highest = (CELLS - 1 - n) // 2                   # we cannot win with this move
        key = current + mask + BOTTOM
        table, size = self.table, self.table_size
        index = key % size
        tag = key // size                                # with the index, tag gives the key back
        entry = table[index]
        if entry >> 16 == tag:
            if entry & _LOW and (entry & _LOW) - _OFFSET > alpha:             # a stored lower bound
                alpha = (entry & _LOW) - _OFFSET
            if entry & _HIGH and (entry >> 8 & 255) - _OFFSET < highest:      # a stored upper bound
                highest = (entry >> 8 & 255) - _OFFSET
        else:
            entry = tag << 16
        if beta > highest:
            beta = highest
        if alpha >= beta:
            return alpha
        odd = (mask + BOTTOM) & ~EVEN_ROWS               # a bit in each column of odd height
        if not n & 1:
            if beta > 0 and not odd and not _has_four(current | (BOARD & ~mask & EVEN_ROWS)):
                beta = 0                                 # the follow-up rule: the opponent holds a draw
        elif alpha < 0 and not odd & (odd - 1) and not _has_four((current ^ mask) | (BOARD & ~mask & EVEN_ROWS)):
            alpha = 0                                    # the follow-up rule after one move in the odd column
        if alpha >= beta:
            return alpha

        children = []
        for rank, column in RANKED_COLUMNS:
            move = playable & column
            if move:
                made = own                               # our winning cells after the move:
                for line in LINES_THROUGH[move.bit_length()]:
                    mine = current & line                # a line with the move and two more of ours
                    if mine & (mine - 1):
                        made |= line ^ mine
                made &= ~(mask | move)
                children.append((made.bit_count(), rank, move, made))
        if len(children) > 1:
            children.sort(reverse=True)                  # most threats first, then centre-first
        opponent = current ^ mask
        for _, _, move, made in children:
            v = -self._negamax(opponent, mask | move, n + 1, -beta, -alpha, made, threats & ~move)  # negated
            if v >= beta:
                table[index] = (entry & ~_LOW) | (v + _OFFSET)                # keep the upper bound
                return v
            if v > alpha:
                alpha = v
        table[index] = (entry & ~_HIGH) | ((alpha + _OFFSET) << 8)            # keep the lower bound
        return alpha

    def _search(self, current: int, mask: int, n: int, alpha: int, beta: int) -> int:
        threats, own = _winning_cells(current ^ mask, mask), _winning_cells(current, mask)
        return self._negamax(current, mask, n, alpha, beta, threats, own)

    def _root(self, moves) -> tuple[int, int, int, int | None]:
        """(current, mask, n, score): score is set when the position needs no search."""
        current, mask = position(moves)
        n = mask.bit_count()
        if _has_four(current ^ mask):                    # the previous move won
            return current, mask, n, -((CELLS + 2 - n) // 2)
        if n == CELLS:
            return current, mask, n, 0
        if _winning_cells(current, mask) & (mask + BOTTOM):   # a winning move now
            return current, mask, n, (CELLS + 1 - n) // 2
        return current, mask, n, None

    def weak_solve(self, moves) -> int:
        """+1 if the player to move wins, 0 for a draw, -1 if he loses (null-window searches)."""
        current, mask, n, score = self._root(moves)
        if score is not None:
            return (score > 0) - (score < 0)
        if self._search(current, mask, n, 0, 1) > 0:    # two null windows: a win? ...
            return 1
        return 0 if self._search(current, mask, n, -1, 0) >= 0 else -1   # ... else a draw?

    def solve(self, moves) -> int:
        """The exact score for the player to move (module docstring), by null-window searches."""
        current, mask, n, score = self._root(moves)
        if score is not None:
            return score
        low, high = -((CELLS - n) // 2), (CELLS + 1 - n) // 2     # score in [low, high]
        while low < high:
            mid = low + (high - low) // 2
            if mid <= 0 and -(-low // 2) < mid:          # look near 0 first (halves rounded towards 0)
                mid = -(-low // 2)
            elif mid >= 0 and high // 2 > mid:
                mid = high // 2
            v = self._search(current, mask, n, mid, mid + 1)  # is the score > mid?
            if v <= mid:
                high = v
            else:
                low = v
        return low

    def move_values(self, moves) -> list[int | None]:
        """Per column, the exact score of playing it for the player to move; None if illegal
        (every column is None once the game has ended)."""
        moves = list(moves)
        current, mask, n, score = self._root(moves)
        if n == CELLS or _has_four(current ^ mask):
            return [None] * WIDTH
        return [None if mask & TOP[col] else self._move_score(moves, current, mask, col) for col in range(WIDTH)]

    def _move_score(self, moves: list, current: int, mask: int, col: int) -> int:
        if _winning_cells(current, mask) & COLUMN[col] & (mask + BOTTOM):   # it wins at once
            return (CELLS + 1 - mask.bit_count()) // 2
        return -self.solve(moves + [col])                # negamax: the child is scored for the opponent

    def _checked(self, moves, action) -> tuple[list, int, int, int]:
        """(moves, action, current, mask) for a legal ``action`` after ``moves``, else ValueError."""
        moves = list(moves)
        current, mask = position(moves)
        try:
            action = operator.index(action)
        except TypeError:
            raise ValueError(f"action {action!r} is not a column number") from None
        if _has_four(current ^ mask) or mask == BOARD:
            raise ValueError("the game has ended: there is no move to judge")
        if not 0 <= action < WIDTH or mask & TOP[action]:
            raise ValueError(f"action {action} is not a legal column here")
        return moves, action, current, mask

    def _move_class(self, moves: list, current: int, mask: int, action: int) -> int:
        """The outcome (+1, 0, -1) of playing ``action`` for the player to move now."""
        if _winning_cells(current, mask) & COLUMN[action] & (mask + BOTTOM):
            return 1
        return -self.weak_solve(moves + [action])

    def losing_move(self, moves, action: int) -> bool:
        """Whether ``action`` worsens the mover's outcome (win -> draw or loss, draw -> loss)."""
        moves, action, current, mask = self._checked(moves, action)
        outcome = self.weak_solve(moves)
        return outcome > -1 and self._move_class(moves, current, mask, action) < outcome

    def judge(self, moves, action: int, exact: bool = True) -> str:
        """How good ``action`` is for the player to move after ``moves``:

            "losing"  it worsens the outcome (win -> draw or loss, draw -> loss): two weak solves
            "best"    it keeps the outcome and its exact score is the position's (in a drawn
                      position every move that keeps the draw is best)
            "ok"      it keeps the outcome but wins later or loses sooner than the best move

        exact=False skips the exact solves: every move that keeps the outcome is then "best".
        """
        moves, action, current, mask = self._checked(moves, action)
        outcome = self.weak_solve(moves)
        if outcome > -1 and self._move_class(moves, current, mask, action) < outcome:
            return "losing"
        if outcome == 0 or not exact:
            return "best"
        return "best" if self._move_score(moves, current, mask, action) == self.solve(moves) else "ok"
