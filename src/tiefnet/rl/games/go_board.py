"""Go's board bookkeeping for :mod:`tiefnet.rl.games.go`: groups, liberties, captures, hashes.

Points are numbered as OpenSpiel numbers Go's actions, p = r * size + c, row r = 0 being the
row Go players call 1. A :class:`Position` keeps, besides each point's colour, the group
("chain") of every stone: ``head[p]`` names the group, and at the head ``stones`` and ``libs``
hold the group's points and its liberties (the empty points next to it). So "is this group in
atari" is ``len(libs[head[p]]) == 1``, O(1), and a move touches only the groups next to it.

A Position is never written after it is made: :func:`place` copies the four lists it changes
(O(points) for a list copy, which is a memcpy) and builds new frozensets only for the groups
the stone touches.
"""
from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numpy

BLACK, WHITE, EMPTY = 1, -1, 0  # as on State.board: player 0 (Black) +1, player 1 (White) -1


class Geometry(NamedTuple):
    """What depends only on the board size: neighbours and Zobrist keys, one per (colour, point)."""

    size: int
    neighbours: tuple[tuple[int, ...], ...]  # (N,) the 2..4 points next to each point
    zobrist: dict[int, tuple[int, ...]]      # colour (+1/-1) -> (N,) 64-bit random keys
    off_left: int                            # bit masks (bit p = point p): all but column a,
    off_right: int                           # all but the last column (negative ints: ~edge)


@lru_cache(maxsize=None)
def geometry(size: int) -> Geometry:
    neighbours = tuple(
        tuple(rr * size + cc for rr, cc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1))
              if 0 <= rr < size and 0 <= cc < size)
        for r in range(size) for c in range(size))
    keys = numpy.random.default_rng(20240 + size).integers(1, 2**63, size=(2, size * size), dtype=numpy.int64)
    zobrist = {BLACK: tuple(int(k) for k in keys[0]), WHITE: tuple(int(k) for k in keys[1])}
    left_edge = sum(1 << (r * size) for r in range(size))
    return Geometry(size, neighbours, zobrist, ~left_edge, ~(left_edge << (size - 1)))


class Position(NamedTuple):
    """The stones and their groups. All lists have one entry per point and are never written."""

    colour: list[int]               # +1 Black, -1 White, 0 empty
    head: list[int]                 # the point that names the stone's group; -1 on an empty point
    stones: list                    # at a head: tuple of the group's points (None elsewhere)
    libs: list                      # at a head: frozenset of the group's liberties (None elsewhere)
    hash: int                       # Zobrist hash: XOR of zobrist[colour][p] over the stones
    empty: int                      # bit p is set when point p is empty


def empty_position(size: int) -> Position:
    N = size * size
    return Position([EMPTY] * N, [-1] * N, [None] * N, [None] * N, 0, (1 << N) - 1)


def legal_points(position: Position, geo: Geometry, c: int) -> int:
    """The points where colour c may put a stone (ko aside) as a bit mask, for all points at
    once: an empty point with an empty neighbour is legal (four shifts of the empty mask; the
    edge masks stop a shift from wrapping to the next row); the few empty points without
    one are checked one by one with :func:`is_legal`."""
    E, size = position.empty, geo.size
    # point p's neighbours are p - 1, p + 1, p - size, p + size; the bits shifted past the
    # last point are dropped by ``E &`` below
    free = ((E >> 1) & geo.off_right) | ((E << 1) & geo.off_left) | (E >> size) | (E << size)
    legal = E & free
    enclosed = E & ~free
    while enclosed:
        low = enclosed & -enclosed  # the lowest set bit
        if is_legal(position, geo, low.bit_length() - 1, c):
            legal |= low
        enclosed ^= low
    return legal


def is_legal(position: Position, geo: Geometry, p: int, c: int) -> bool:
    """May colour c put a stone on p (ko aside)? p must be empty, and the stone must keep a
    liberty: an empty neighbour, an own group with >= 2 liberties to join, or an enemy group
    in atari to capture (suicide is forbidden)."""
    colour, head, libs = position.colour, position.head, position.libs
    if colour[p] != EMPTY:
        return False
    for n in geo.neighbours[p]:
        cn = colour[n]
        if cn == EMPTY:
            return True
        liberties = len(libs[head[n]])
        if (liberties >= 2) if cn == c else (liberties == 1):
            return True
    return False


def hash_after(position: Position, geo: Geometry, p: int, c: int) -> int:
    """The Zobrist hash of the position after colour c plays the legal move p (for superko)."""
    h = position.hash ^ geo.zobrist[c][p]
    colour, head, libs, stones = position.colour, position.head, position.libs, position.stones
    captured = set()
    for n in geo.neighbours[p]:
        if colour[n] == -c and len(libs[head[n]]) == 1:
            captured.add(head[n])
    for g in captured:
        for q in stones[g]:
            h ^= geo.zobrist[-c][q]
    return h


def place(position: Position, geo: Geometry, p: int, c: int) -> tuple[Position, list[int], int]:
    """Colour c plays the legal move p: the new Position, the points of the stones it captured,
    and the ko point: where the one stone lay that a stone played into an enemy eye (all its
    neighbours enemy stones) captured, else -1 (OpenSpiel's ``last_ko_point_``)."""
    colour, head = position.colour.copy(), position.head.copy()
    stones, libs = position.stones.copy(), position.libs.copy()
    zobrist = geo.zobrist
    h = position.hash ^ zobrist[c][p]
    empty = position.empty ^ (1 << p)
    colour[p] = c
    own, enemies, free = [], [], set()
    for n in geo.neighbours[p]:
        cn = colour[n]
        if cn == EMPTY:
            free.add(n)
        elif cn == c:
            if head[n] not in own:
                own.append(head[n])
        elif head[n] not in enemies:
            enemies.append(head[n])
    # join p and the own groups around it; the largest group keeps its head (fewest relabels)
    if own:
        g = max(own, key=lambda k: len(stones[k]))
        merged, liberties = [p], set(free)
        for k in own:
            liberties |= libs[k]
            if k != g:
                merged.extend(stones[k])
                stones[k] = libs[k] = None
        for q in merged:
            head[q] = g
        stones[g] = stones[g] + tuple(merged)
        liberties.discard(p)
        libs[g] = frozenset(liberties)
    else:
        head[p], stones[p], libs[p] = p, (p,), frozenset(free)
    # the enemy groups lose the liberty p; those left with none are captured
    captured = []
    for k in enemies:
        liberties = libs[k] - {p}
        if liberties:
            libs[k] = liberties
        else:
            captured.extend(stones[k])
            stones[k] = libs[k] = None
    if captured:
        key = zobrist[-c]
        for q in captured:
            colour[q], head[q] = EMPTY, -1
            h ^= key[q]
            empty |= 1 << q
        gained: dict[int, set[int]] = {}  # own group head -> the captured points it now borders
        for q in captured:
            for n in geo.neighbours[q]:
                if colour[n] == c:
                    gained.setdefault(head[n], set()).add(q)
        for k, points in gained.items():
            libs[k] = libs[k] | points
    ko = captured[0] if len(captured) == 1 and not own and not free else -1
    return Position(colour, head, stones, libs, h, empty), captured, ko


def area_difference(colour: list[int], geo: Geometry) -> int:
    """Tromp-Taylor area, Black's minus White's: stones, plus the empty regions that reach
    stones of only one colour (a flood fill over each empty region)."""
    total = sum(colour)  # the stones: +1 each Black, -1 each White
    seen = [False] * len(colour)
    for start, cs in enumerate(colour):
        if cs != EMPTY or seen[start]:
            continue
        seen[start] = True
        region, reached, stack = 0, set(), [start]
        while stack:
            q = stack.pop()
            region += 1
            for n in geo.neighbours[q]:
                cn = colour[n]
                if cn != EMPTY:
                    reached.add(cn)
                elif not seen[n]:
                    seen[n] = True
                    stack.append(n)
        if len(reached) == 1:
            total += region * reached.pop()
    return total
