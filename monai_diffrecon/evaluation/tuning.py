"""Equal-budget tuning on the validation split: every method — ours and each baseline — searches a grid of at most
``budget`` settings scored on validation cases only; the grid, every score, the choice and whether the choice lies on
the grid's edge (then the grid should grow) are recorded in the results file."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass

from monai_diffrecon.errors import InvalidValueError

__all__ = ["Tuned", "grid_search"]


@dataclass
class Tuned:
    """The chosen ``params``, its validation ``score``, every ``(params, score)`` tried, the parameters whose chosen
    value is the first or last of its grid (``on_edge``), and the ``budget`` the search was allowed."""

    params: dict
    score: float
    trials: list[dict]
    on_edge: list[str]
    budget: int

    def as_dict(self) -> dict:
        return asdict(self)


def grid_search(score: Callable[[dict], float], grid: Mapping[str, Sequence], budget: int, higher_is_better: bool = True) -> Tuned:
    """Score every combination of ``grid`` with ``score(params)`` (on validation cases) and keep the best.

    Raises:
        InvalidValueError: the grid has more combinations than ``budget`` (every method gets the same budget; a
            method with fewer knobs simply uses fewer of it).
    """
    names = list(grid)
    combos = [dict(zip(names, vals)) for vals in itertools.product(*(grid[n] for n in names))] if names else [{}]
    if len(combos) > budget:
        raise InvalidValueError(f"grid_search: {len(combos)} settings exceed the search budget of {budget}")
    trials = [{"params": c, "score": float(score(c))} for c in combos]
    best = (max if higher_is_better else min)(trials, key=lambda t: t["score"])
    edge = [n for n in names if len(grid[n]) > 1 and best["params"][n] in (grid[n][0], grid[n][-1])]
    return Tuned(dict(best["params"]), best["score"], trials, edge, budget)
