"""The Pareto front of (error, cost): the best error seen at every cost.

Entries are ``search.records.FrontEntry`` records (anything with ``error`` and ``cost``).
``best_per_cost`` keeps one entry per cost; ``pareto`` drops the costs a
cheaper entry already beats or matches.
"""

from __future__ import annotations

import math


def improves(best_per_cost: dict, entry) -> bool:
    current = best_per_cost.get(entry.cost)
    return current is None or entry.error < current.error


def pareto(best_per_cost: dict) -> list:
    out: list = []
    best = math.inf
    for cost in sorted(best_per_cost):
        e = best_per_cost[cost]
        if e.error < best:
            out.append(e)
            best = e.error
    return out


def pareto_ranks(points: list[tuple[float, float]]) -> list[int]:
    """Non-domination rank (0 = not dominated) of (error, cost) pairs, both minimized."""
    n = len(points)
    ranks = [0] * n
    remaining = set(range(n))
    rank = 0
    while remaining:
        layer = {
            i for i in remaining
            if not any(_dominates(points[j], points[i]) for j in remaining if j != i)
        }
        for i in layer:
            ranks[i] = rank
        remaining -= layer
        rank += 1
    return ranks


def _dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] <= b[0] and a[1] <= b[1] and (a[0] < b[0] or a[1] < b[1])


def cheapest_within(best_per_cost: dict, max_error: float):
    for e in pareto(best_per_cost):
        if e.error <= max_error:
            return e
    return None


def most_accurate_within(best_per_cost: dict, max_cost: float):
    cands = [e for c, e in best_per_cost.items() if c <= max_cost]
    return min(cands, key=lambda e: (e.error, e.cost)) if cands else None
