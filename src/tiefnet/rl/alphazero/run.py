"""The AlphaGo Zero training loop (5.4 (a)/(b)) and its run folder.

Each generation: (a) the workers play ``games_per_generation`` self-play games with the current
f_theta; their tuples (s_t, pi_t, z_t) join the replay window; (b) f_theta takes ``train_steps``
gradient steps on L = (z - nu)^2 - pi . log p + c ||theta||^2; then the new network plays the
previous generation's in the arena for an Elo rating, and a random player.

Gating: none — like AlphaZero (not AlphaGo Zero's 55 % arena gate), every generation continues
from the latest network. On these small budgets a gate's evaluation games would cost as much as
self-play, and continuous updates learned as well in AlphaZero; the arena games are kept for the
Elo curve only, so a weaker generation shows as a dip there.

The run folder: config.json; metrics.jsonl (one line per generation: losses, games, positions,
speeds, arena scores, Elo); games.jsonl (every self-play game: generation, moves, winner 0/1/null); model.npz + model.json (the latest f_theta, for ``tiefnet play`` and
the arena); checkpoint.npz (f_theta, the previous generation's, optimizer, replay window,
counters); curves.png; summary.json. Every random choice of generation g comes from the seed
(seed, g, ...), so a resumed run continues exactly as the uninterrupted one (with the same number
of workers: the games are shared out by worker, each share with its own seed).
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import numpy

from tiefnet import backend
from tiefnet.checkpoint import copy_state, load_state, read_checkpoint, write_npz
from tiefnet.errors import CheckpointError
from tiefnet.nn import layer_to_config
from tiefnet.rl.alphazero import learner
from tiefnet.rl.alphazero.arena import JudgePlayer, RandomPlayer, SearchPlayer, elo_difference, match
from tiefnet.rl.alphazero.config import AlphaZeroConfig
from tiefnet.rl.alphazero.net import Evaluator, policy_value_net
from tiefnet.rl.alphazero.selfplay import SelfPlayConfig
from tiefnet.rl.alphazero.workers import Task, make_workers, split
from tiefnet.rl.games import make_game
from tiefnet.rl.mcts import SearchConfig
from tiefnet.runs import RunFolder
from tiefnet.settings import check_app, check_resumable, is_number, is_whole

CHECKPOINT_FORMAT = "tiefnet-alphazero-checkpoint/1"
TRAIN_THREADS = max(1, min(4, os.cpu_count() or 1))
RESUMABLE_CHANGES = {"generations", "max_minutes", "workers", "ray", "arena_games", "random_games", "judge_games",
                     "checkpoint_every"}


@dataclass
class Progress:
    generation: int = 0  # generations done
    games: int = 0
    positions: int = 0
    seconds: float = 0.0  # training wall time so far
    elo: list[float] = field(default_factory=lambda: [0.0])  # Elo of generations 0..generation
    metrics_lines: int = 0
    games_lines: int = 0  # lines of games.jsonl written up to this state


def search_config(config: AlphaZeroConfig, simulations: int | None = None) -> SearchConfig:
    return SearchConfig(simulations=simulations or config.simulations, c_puct=config.c_puct,
                        dirichlet_alpha=config.dirichlet_alpha, noise_fraction=config.noise_fraction)


def run(config: AlphaZeroConfig, out: str | Path, progress: bool = True, resume: bool = False,
        log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train as ``config`` says into the run folder ``out``; returns the summary.

    Each generation (5.4): (a) self-play with MCTS and f_theta gives the tuples (s_t, pi_t, z); (b) gradient
    steps on L = (z - nu)^2 - sum_a pi_a log p_a + c ||theta||^2; then the arena games (Elo, random, judge).
    """
    folder = RunFolder(out, app="alphazero", resume_command="tiefnet alphazero train --resume", progress=progress)
    game = make_game(config.game, **config.game_settings())
    net = policy_value_net(game, config.blocks, config.filters, numpy.random.default_rng([config.seed, 0]))
    previous = policy_value_net(game, config.blocks, config.filters, numpy.random.default_rng([config.seed, 0]))
    optimizer = learner.make_optimizer(net, config.optimizer, config.eta, config.c)
    replay = learner.ReplayWindow(game, config.window)
    state = Progress()
    if resume:  # every check before anything in the folder is written
        check_app(folder.path, "alphazero")
        check_resumable(folder.path, config, RESUMABLE_CHANGES)
        restore(folder.path / "checkpoint.npz", net, previous, optimizer, replay, state)
    with folder.start(config, resume, RESUMABLE_CHANGES):
        metrics = folder.metrics(keep_lines=state.metrics_lines)
        games_log = folder.metrics(keep_lines=state.games_lines, name="games.jsonl")
        n_params = sum(p.value.size for p in net.parameters())
        log(f"tiefnet alphazero: {game!r}, {config.blocks} blocks x {config.filters} filters ({n_params} "
            f"parameters), {config.simulations} simulations per move, generations {state.generation} -> "
            f"{config.generations}, {config.workers} worker(s){' on Ray' if config.ray else ''} -> {folder.path}")
        workers = make_workers(config.workers, config.ray)
        bar = folder.progress_bar(config.generations, "alphazero", unit="generation", initial=state.generation)
        mark = time.perf_counter()  # the training time counts everything since, checkpoints included
        try:
            while state.generation < config.generations:
                if config.max_minutes and state.seconds >= 60 * config.max_minutes:
                    log(f"tiefnet alphazero: stopped after {state.seconds / 60:.1f} minutes (--max-minutes)")
                    break
                entry = generation(config, game, net, previous, optimizer, replay, state, workers, games_log)
                now = time.perf_counter()
                state.seconds += now - mark  # (a checkpoint's own writing counts into the next generation)
                mark = now
                entry["minutes"] = state.seconds / 60
                metrics.append(entry)
                state.metrics_lines += 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(elo=f"{state.elo[-1]:.0f}", vs_random=entry.get("vs_random_score"),
                                    refresh=False)
                if state.generation % config.checkpoint_every == 0 or state.generation == config.generations:
                    save_checkpoint(folder, config, net, previous, optimizer, replay, state)
        finally:
            if bar is not None:
                bar.close()
            workers.close()
        save_checkpoint(folder, config, net, previous, optimizer, replay, state)
        entries = metrics.entries()
    summary = summarize(config, state, entries)
    folder.write_json("summary.json", summary)
    if entries:
        with folder.replacing("curves.png") as path:
            plot(entries, path, config)
    return summary


def generation(config: AlphaZeroConfig, game, net, previous, optimizer, replay, state: Progress, workers,
               games_log) -> dict:
    """One generation: self-play (each game's moves to games.jsonl), training, arena. Returns its metrics line."""
    g = state.generation + 1
    tick = time.perf_counter()
    selfplay = SelfPlayConfig(search_config(config), config.temperature_moves, config.parallel_games,
                              value_q_weight=config.value_q_weight, fast_simulations=config.fast_simulations,
                              full_search_share=config.full_search_share)
    architecture, arrays = layer_to_config(net), {k: backend.to_numpy(v) for k, v in net.arrays().items()}
    shares = split(config.games_per_generation, max(1, workers.count))
    tasks = [Task(config.game, config.game_settings(), architecture, arrays, selfplay, n, (config.seed, g, 1, i))
             for i, n in enumerate(shares)]
    results = workers.map(tasks)  # (a) self-play
    records = [r for rs, _ in results for r in rs]
    play_seconds = time.perf_counter() - tick
    replay.add(records, config.value_q_weight)
    for r in records:
        games_log.append({"generation": g, "moves": list(r.moves), "winner": r.winner})
    state.games_lines += len(records)
    copy_state(previous, net)  # theta of generation g - 1, for the arena
    tock = time.perf_counter()
    rng = numpy.random.default_rng([config.seed, g, 2])
    with backend.thread_limit(TRAIN_THREADS):  # BLAS on one thread per part of the batch: no idle spinning
        losses = learner.train(net, optimizer, replay, config.train_steps if len(replay) else 0,
                               config.batch_size, rng)  # (b)
    train_seconds = time.perf_counter() - tock
    positions = sum(r.length for r in records)
    evaluations = sum(s.evaluations for _, s in results)
    entry: dict[str, Any] = {
        "generation": g, **losses, "games": len(records), "positions": positions,
        "mean_game_length": positions / max(1, len(records)),
        "first_player_wins": sum(r.winner == 0 for r in records), "draws": sum(r.winner is None for r in records),
        "selfplay_seconds": play_seconds, "train_seconds": train_seconds,
        "recorded_positions": sum(len(r.z) for r in records),
        "positions_per_second": positions / play_seconds, "evaluations_per_second": evaluations / play_seconds,
        "replay_positions": len(replay)}
    entry.update(evaluate(config, game, net, previous, state, g))
    state.generation, state.games, state.positions = g, state.games + len(records), state.positions + positions
    entry["elo"] = state.elo[-1]
    return entry


def evaluate(config: AlphaZeroConfig, game, net, previous, state: Progress, g: int) -> dict[str, Any]:
    """The arena: the new network against the previous one (Elo), a random player and the judge."""
    out: dict[str, Any] = {}
    rng = numpy.random.default_rng([config.seed, g, 3])
    search = search_config(config, config.arena_simulations)
    with backend.thread_limit(1):
        new = SearchPlayer(game, Evaluator(game, net), search, random_moves=2, name=f"generation {g}")
        if config.arena_games:
            old = SearchPlayer(game, Evaluator(game, previous), search, random_moves=2, name=f"generation {g - 1}")
            result = match(game, new, old, config.arena_games, rng)
            out["vs_previous_score"] = result.score
            state.elo.append(state.elo[-1] + elo_difference(result.score, result.games))
        else:
            state.elo.append(state.elo[-1])
        greedy = SearchPlayer(game, Evaluator(game, net), search, name=f"generation {g}")
        if config.random_games:
            out["vs_random_score"] = match(game, greedy, RandomPlayer(game), config.random_games, rng).score
        if config.judge_games:
            result = match(game, greedy, JudgePlayer(game), config.judge_games, rng)
            out["vs_judge_losses"], out["vs_judge_score"] = result.losses, result.score
    return out


# --- checkpoints -----------------------------------------------------------------------------------
def save_checkpoint(folder: RunFolder, config: AlphaZeroConfig, net, previous, optimizer, replay,
                    state: Progress) -> None:
    opt_meta, opt_arrays = optimizer.state_dict()
    arrays: dict[str, Any] = {f"net.{k}": v for k, v in net.arrays().items()}
    arrays.update({f"previous.{k}": v for k, v in previous.arrays().items()})
    arrays.update({f"opt.{k}": v for k, v in opt_arrays.items()})
    arrays.update({f"replay.{k}": v for k, v in replay.state_arrays().items()})
    meta = {"format": CHECKPOINT_FORMAT, "progress": asdict(state),
            "optimizer": {"name": optimizer.name, **opt_meta}, "config": asdict(config)}
    write_npz(folder.path / "checkpoint.npz", arrays, meta)
    folder.save_model(net, {"kind": "alphazero", "game": config.game, "game_settings": config.game_settings(),
                            "generation": state.generation, "elo": state.elo[-1],
                            "simulations": config.simulations, "c_puct": config.c_puct,
                            "dirichlet_alpha": config.dirichlet_alpha, "noise_fraction": config.noise_fraction})


def restore(path: Path, net, previous, optimizer, replay, state: Progress) -> None:
    from tiefnet.rl.dqn_run import check_optimizer

    arrays, meta = read_checkpoint(path, CHECKPOINT_FORMAT, "AlphaZero")
    try:
        saved = check_progress(meta["progress"])
        part = lambda prefix: {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
        check_optimizer(meta["optimizer"], part("opt."), optimizer, 10**12)
        load_state(net, part("net."), "the network")
        load_state(previous, part("previous."), "the previous generation's network")
        optimizer.load_state_dict(meta["optimizer"], {k: backend.asarray(v) for k, v in part("opt.").items()})
        replay.load_state_arrays(part("replay."))
    except CheckpointError as error:
        raise CheckpointError(f"{path}: {error}") from None
    except (KeyError, TypeError, ValueError, IndexError, OverflowError, AttributeError) as error:
        raise CheckpointError(f"{path}: not a complete AlphaZero checkpoint ({error!r})") from None
    for f in fields(Progress):
        setattr(state, f.name, getattr(saved, f.name))


def check_progress(saved: Any) -> Progress:
    if isinstance(saved, dict) and "games_lines" not in saved:  # a checkpoint from before games.jsonl
        saved = {**saved, "games_lines": 0}
    if not isinstance(saved, dict) or set(saved) != {f.name for f in fields(Progress)}:
        raise CheckpointError(f"progress must name exactly {', '.join(f.name for f in fields(Progress))}")
    g = saved["generation"]
    ok = {"generation": is_whole(g, 0, 10**7), "games": is_whole(saved["games"]),
          "positions": is_whole(saved["positions"]), "seconds": is_number(saved["seconds"], 0.0),
          "elo": isinstance(saved["elo"], list) and is_whole(g, 0, 10**7) and len(saved["elo"]) == g + 1
          and all(is_number(e) for e in saved["elo"]), "metrics_lines": is_whole(saved["metrics_lines"]),
          "games_lines": is_whole(saved["games_lines"])}
    bad = [name for name, good in ok.items() if not good]
    if bad:
        raise CheckpointError(f"progress.{bad[0]}={str(saved[bad[0]])[:60]!s} is of the wrong type or out of range")
    return Progress(**saved)


def summarize(config: AlphaZeroConfig, state: Progress, entries: list[dict[str, Any]]) -> dict[str, Any]:
    last = entries[-1] if entries else {}
    return {"game": config.game, "generations": state.generation, "games": state.games, "positions": state.positions,
            "train_minutes": state.seconds / 60, "elo": state.elo[-1], "elo_by_generation": state.elo,
            "last": last, "options": asdict(config)}


def plot(entries: list[dict[str, Any]], path: Path, config: AlphaZeroConfig) -> None:
    from tiefnet.plot import plt, save

    g = [e["generation"] for e in entries]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(g, [e["value_loss"] for e in entries], label="value cost (z - nu)^2")
    ax1.plot(g, [e["policy_loss"] for e in entries], label="policy cost -pi . log p")
    ax1.set(xlabel="generation", ylabel="cost", title=f"AlphaZero {config.game}: the cost L")
    ax1.legend()
    ax1.grid(alpha=0.3)
    ax2.plot(g, [e["elo"] for e in entries], "o-", ms=3, label="Elo (each generation vs the previous)")
    ax2.set(xlabel="generation", ylabel="Elo")
    if any("vs_random_score" in e for e in entries):
        twin = ax2.twinx()
        twin.plot(g, [e.get("vs_random_score") for e in entries], "g.", label="score vs random")
        twin.set(ylabel="score vs random", ylim=(0, 1.05))
    ax2.grid(alpha=0.3)
    ax2.legend(loc="lower right")
    save(fig, path)
