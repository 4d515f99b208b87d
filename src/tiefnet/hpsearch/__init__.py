"""Hyperparameter search (lecture 2.7.3): Optuna studies over any trainer's ``Config``
(:mod:`~tiefnet.hpsearch.study`), the search space (:mod:`~tiefnet.hpsearch.space`), the lecture's
heuristic strategy (:mod:`~tiefnet.hpsearch.lecture`), the report and figures.

    from tiefnet.hpsearch import Search, build_space, run_search, trainer
    mnist = trainer("mnist")
    space = build_space(mnist.config_class(), ["eta=log:0.01..10", "hidden=int:10..300"], ["epochs=30"])
    study = run_search(Search(mnist, space, Path("runs/search"), trials=40, seed=1))
"""
from tiefnet.hpsearch.space import Param, Space, build_space
from tiefnet.hpsearch.study import Search, run_search
from tiefnet.hpsearch.trainers import TRAINERS, trainer

__all__ = ["Param", "Space", "Search", "TRAINERS", "build_space", "run_search", "trainer"]
