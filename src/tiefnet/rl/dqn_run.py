"""The DQN training loop of 5.3 (see :mod:`tiefnet.rl.dqn` for the pieces) and its run folder.

``run(config, out)`` writes: config.json; metrics.jsonl (one line per episode: step, episode, return,
length, epsilon; every log_every steps a line with the mean loss); model.npz + model.json (the
Q-network, for ``tiefnet dqn play``); checkpoint.npz (resumable: Q-network, target network,
optimizer, random generator, replay memory, counters); returns.png; summary.json with
``eval_mean_return``, the mean return of ``eval_episodes`` greedy episodes at the end.

Every episode starts with ``env.reset(seed=...)``, the seed drawn from the run's generator. A
checkpoint stores the current episode's seed and actions, and a resumed run replays them to the
same environment state, so that it continues exactly as the uninterrupted run would have.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import numpy

from tiefnet import backend
from tiefnet.checkpoint import load_state, read_checkpoint, write_npz
from tiefnet.errors import CheckpointError, TrainingDiverged
from tiefnet.rl.dqn import (DQNConfig, clone, epsilon_at, hidden_sizes, make_loss, make_optimizer, select_action,
                            sync_target, train_step)
from tiefnet.rl.dqn_play import evaluate
from tiefnet.rl.replay import check_stored
from tiefnet.rl.environments import check_memory, make_env, make_memory, make_q_network
from tiefnet.runs import MetricsLog, RunFolder
from tiefnet.settings import is_number, is_whole

CHECKPOINT_FORMAT = "tiefnet-dqn-checkpoint/1"
# Settings that may change when a run is resumed; any other change would mix two experiments.
RESUMABLE_CHANGES = {"steps", "threads", "eval_episodes", "checkpoint_every", "log_every"}


@dataclass
class Progress:
    """The counters of a run: everything besides arrays that a checkpoint must restore."""

    step: int = 0  # environment steps t done
    episode: int = 0  # finished episodes
    episode_seed: int = 0  # the reset seed of the current episode
    episode_actions: list[int] = field(default_factory=list)  # its actions so far (replayed on resume)
    episode_return: float = 0.0
    losses: list[float] = field(default_factory=list)  # the TD costs since the last loss line
    metrics_lines: int = 0  # lines of metrics.jsonl written up to this state
    seconds: float = 0.0  # training wall time so far
    best_return: float | None = None  # the best mean return of a greedy check so far
    best_step: int = 0  # the step of that check: the network kept as model.npz


class Agent:
    """What DQN learns with: Q-network theta, target network theta^-, optimizer, loss, replay memory D."""

    def __init__(self, config: DQNConfig, obs_shape: tuple[int, ...], n_actions: int, rng: numpy.random.Generator):
        self.q_net = make_q_network(config.env, obs_shape, n_actions, hidden_sizes(config.hidden), rng)
        self.target_net = clone(self.q_net)  # theta^- = theta (copied, not shared)
        self.best_net = clone(self.q_net)  # the network of the best greedy check (model.npz)
        self.optimizer = make_optimizer(config, self.q_net)
        self.loss = make_loss(config)
        self.memory = make_memory(config.env, config.memory, obs_shape)
        self.n_actions = n_actions


def run(config: DQNConfig, out: str | Path, progress: bool = True, resume: bool = False,
        log: Callable[[str], None] = print, allow_env_module: bool = False) -> dict[str, Any]:
    """Train DQN as ``config`` says, write the run folder ``out`` (see the module docstring), return the summary.

    The loop of 5.3: epsilon-greedy a_t, (phi_t, a_t, r_t, phi_{t+1}) stored in D, a uniform mini-batch from D,
    a gradient step on (y_j - Q(phi_j, a_j; theta))^2 with y_j = r_j (episode ends) or
    r_j + gamma max_a' Q(phi_{j+1}, a'; theta^-), and theta^- = theta every C = ``target_every`` steps.
    ``allow_env_module``: config.env may be a ``module:Env`` id (see :func:`~tiefnet.rl.environments.check_env_id`)."""
    folder = RunFolder(out, app="dqn", resume_command="tiefnet dqn train --resume", progress=progress)
    env = make_env(config.env, allow_module=allow_env_module)
    obs_shape, n_actions = tuple(env.observation_space.shape), int(env.action_space.n)
    check_memory(config.env, obs_shape, n_actions, hidden_sizes(config.hidden), config.memory, config.batch_size,
                 max(config.eval_episodes, config.check_episodes))
    rng = numpy.random.default_rng(config.seed)
    with folder.start(config, resume, RESUMABLE_CHANGES), backend.thread_limit(config.threads):
        agent = Agent(config, obs_shape, n_actions, rng)
        state = Progress()
        if resume:
            obs = restore(folder.path / "checkpoint.npz", agent, state, rng, env, config)
        else:
            obs = start_episode(env, state, rng)
        # what was written after the checkpoint is dropped
        metrics = folder.metrics(keep_lines=state.metrics_lines)
        log(f"tiefnet dqn: {config.env}, {agent.q_net.describe()}, {n_actions} actions, "
            f"steps {state.step} -> {config.steps}, replay memory {config.memory} -> {folder.path}")
        train(config, agent, env, state, obs, rng, folder, metrics, allow_env_module)
        started = time.perf_counter()
        returns = evaluate(agent.best_net, env, config.eval_episodes, seed=[config.seed, 1])
        kept_final = state.best_return is None or state.best_step == state.step
        final = returns if kept_final else evaluate(agent.q_net, env, config.eval_episodes, seed=[config.seed, 1])
        eval_seconds = time.perf_counter() - started
        entries = metrics.entries()
    env.close()
    summary = summarize(config, state, returns, final, eval_seconds, entries)
    folder.write_json("summary.json", summary)
    if any("return" in e for e in entries):
        with folder.replacing("returns.png") as path:
            _plot(entries, path, config)
    return summary


def start_episode(env, state: Progress, rng: numpy.random.Generator) -> numpy.ndarray:
    """phi_1 = phi(s_1) of a new episode, reset with a seed drawn from the run's generator."""
    state.episode_seed = int(rng.integers(2**31))
    state.episode_actions, state.episode_return = [], 0.0
    obs, _ = env.reset(seed=state.episode_seed)
    return obs


def train(config: DQNConfig, agent: Agent, env, state: Progress, obs, rng, folder: RunFolder,
          metrics: MetricsLog, allow_env_module: bool = False) -> None:
    """The loop of 5.3 from ``state.step`` to ``config.steps``: act, store, learn, refresh theta^-."""
    recent: deque[float] = deque((e["return"] for e in metrics.entries() if "return" in e), maxlen=100)
    bar = folder.progress_bar(config.steps, "dqn", initial=state.step)
    tick = time.perf_counter()
    try:
        while state.step < config.steps:
            epsilon = epsilon_at(state.step, config)
            action = select_action(agent.q_net, obs, epsilon, agent.n_actions, rng)  # epsilon-greedy
            next_obs, reward, terminated, truncated, _ = env.step(action)  # r_t, x_{t+1}
            agent.memory.push(obs, action, reward, next_obs, terminated)  # (phi_t, a_t, r_t, phi_{t+1}) -> D
            state.step += 1
            state.episode_actions.append(action)
            state.episode_return += float(reward)
            obs = next_obs
            if state.step > config.learning_starts and state.step % config.train_every == 0 \
                    and len(agent.memory) >= config.batch_size:
                batch = agent.memory.sample(config.batch_size, rng)  # uniform mini-batch from D
                state.losses.append(train_step(agent.q_net, agent.target_net, agent.loss, agent.optimizer, batch,
                                         config.gamma))
            if state.step % config.target_every == 0:
                sync_target(agent.target_net, agent.q_net)  # every C steps theta^- = theta
            if terminated or truncated:
                entry = {"step": state.step, "episode": state.episode + 1, "return": state.episode_return,
                         "length": len(state.episode_actions), "epsilon": epsilon}
                _write(metrics, entry, state)
                recent.append(state.episode_return)
                state.episode += 1
                obs = start_episode(env, state, rng)
                if bar is not None:
                    bar.set_postfix(episode=state.episode, recent_return=f"{numpy.mean(recent):.1f}", refresh=False)
            if state.step % config.log_every == 0 and state.losses:
                _check_finite(state.losses, state.step)
                _write(metrics, {"step": state.step, "loss": float(numpy.mean(state.losses)), "epsilon": epsilon},
                       state)
                state.losses = []
            if config.check_every and state.step % config.check_every == 0:
                check(config, agent, state, metrics, allow_env_module)
            if bar is not None and state.step % 100 == 0:
                bar.update(100)
            if state.step % config.checkpoint_every == 0 or state.step == config.steps:
                state.seconds += time.perf_counter() - tick
                tick = time.perf_counter()
                save_checkpoint(folder, agent, state, rng, config)
    finally:
        if bar is not None:
            bar.close()


def check(config: DQNConfig, agent: Agent, state: Progress, metrics: MetricsLog,
          allow_env_module: bool = False) -> None:
    """A greedy check in an environment of its own; keep the network if it is the best so far."""
    env = make_env(config.env, allow_module=allow_env_module)
    mean = float(numpy.mean(evaluate(agent.q_net, env, config.check_episodes, seed=[config.seed, 2, state.step])))
    env.close()
    _write(metrics, {"step": state.step, "check_mean_return": mean}, state)
    if state.best_return is None or mean >= state.best_return:  # ties: the later, longer-trained network
        state.best_return, state.best_step = mean, state.step
        sync_target(agent.best_net, agent.q_net)


def _write(metrics: MetricsLog, entry: dict[str, Any], state: Progress) -> None:
    metrics.append(entry)
    state.metrics_lines += 1


def _check_finite(losses: list[float], step: int) -> None:
    if not numpy.isfinite(losses).all():
        raise TrainingDiverged(f"step {step}: the loss became NaN or infinite; try a smaller --eta")


# --- checkpoints ---------------------------------------------------------------------------------
def save_checkpoint(folder: RunFolder, agent: Agent, state: Progress, rng, config: DQNConfig) -> None:
    """checkpoint.npz (atomic): theta, theta^-, optimizer state, replay memory, generator, counters;
    and model.npz/.json, the Q-network alone (for play)."""
    opt_meta, opt_arrays = agent.optimizer.state_dict()
    arrays: dict[str, Any] = {f"q.{k}": v for k, v in agent.q_net.arrays().items()}  # parameters and buffers
    arrays.update({f"target.{k}": v for k, v in agent.target_net.arrays().items()})
    arrays.update({f"best.{k}": v for k, v in agent.best_net.arrays().items()})
    arrays.update({f"opt.{k}": v for k, v in opt_arrays.items()})
    arrays.update({f"memory.{k}": v for k, v in agent.memory.state_arrays().items()})
    meta = {"format": CHECKPOINT_FORMAT, "progress": asdict(state), "rng": rng.bit_generator.state,
            "optimizer": {"name": agent.optimizer.name, **opt_meta}, "config": asdict(config)}
    write_npz(folder.path / "checkpoint.npz", arrays, meta)
    if state.best_return is None:
        sync_target(agent.best_net, agent.q_net)  # no checks (yet): the final network is the one kept
    folder.save_model(agent.best_net, {"kind": "dqn", "env": config.env, "step": state.best_step or state.step,
                                     "check_mean_return": state.best_return})


def restore(path: Path, agent: Agent, state: Progress, rng, env, config: DQNConfig | None = None) -> numpy.ndarray:
    """Load a checkpoint into ``agent``, ``state`` and ``rng``, every value checked first; replay the current
    episode; returns phi_t."""
    arrays, meta = read_checkpoint(path, CHECKPOINT_FORMAT, "DQN")
    try:
        saved = check_progress(meta["progress"], agent.n_actions, config)
        check_optimizer(meta["optimizer"], {k[4:]: v for k, v in arrays.items() if k.startswith("opt.")},
                        agent.optimizer, saved.step)
        for prefix, model in (("q.", agent.q_net), ("target.", agent.target_net), ("best.", agent.best_net)):
            load_state(model, {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}, str(path))
        agent.optimizer.load_state_dict(meta["optimizer"], {k[4:]: backend.asarray(v) for k, v in arrays.items()
                                                             if k.startswith("opt.")})
        agent.memory.load_state_arrays({k[7:]: v for k, v in arrays.items() if k.startswith("memory.")})
        if len(agent.memory) and int(agent.memory.action[:len(agent.memory)].max()) >= agent.n_actions:
            raise CheckpointError(f"replay memory: actions beyond the environment's {agent.n_actions}")
        rng.bit_generator.state = meta["rng"]
    except CheckpointError as error:
        raise CheckpointError(f"{path}: {error}") from None
    except (KeyError, TypeError, ValueError, IndexError, OverflowError) as error:
        raise CheckpointError(f"{path}: not a complete DQN checkpoint ({error!r})") from None
    for f in fields(Progress):
        setattr(state, f.name, getattr(saved, f.name))
    obs, _ = env.reset(seed=state.episode_seed)
    for i, action in enumerate(state.episode_actions):  # the same seed and actions: the same environment state
        obs, _, terminated, truncated, _ = env.step(action)
        if (terminated or truncated) and i + 1 < len(state.episode_actions):
            raise CheckpointError(f"{path}: progress.episode_actions: the episode ends after {i + 1} of its "
                                  f"{len(state.episode_actions)} actions")
    return obs


def check_progress(saved: Any, n_actions: int, config: DQNConfig | None = None) -> Progress:
    """The checkpoint's counters as a :class:`Progress`, each of its type and range (CheckpointError if not)."""
    if not isinstance(saved, dict) or set(saved) != {f.name for f in fields(Progress)}:
        raise CheckpointError(f"progress must name exactly {', '.join(f.name for f in fields(Progress))}")
    step = saved["step"]
    log_every = config.log_every if config is not None else 2**63 - 1
    checks = {
        "step": is_whole(step),
        "episode": is_whole(saved["episode"]) and is_whole(step) and saved["episode"] <= step,
        "episode_seed": is_whole(saved["episode_seed"], 0, 2**31 - 1),
        "episode_actions": isinstance(saved["episode_actions"], list) and is_whole(step)
        and len(saved["episode_actions"]) <= step and all(is_whole(a, 0, n_actions - 1) for a in saved["episode_actions"]),
        "episode_return": is_number(saved["episode_return"]),
        "losses": isinstance(saved["losses"], list) and len(saved["losses"]) <= log_every
        and all(is_number(v) for v in saved["losses"]),
        "metrics_lines": is_whole(saved["metrics_lines"]),
        "seconds": is_number(saved["seconds"]) and saved["seconds"] >= 0,
        "best_return": saved["best_return"] is None or is_number(saved["best_return"]),
        "best_step": is_whole(saved["best_step"]) and is_whole(step) and saved["best_step"] <= step,
    }
    bad = [name for name, ok in checks.items() if not ok]
    if bad:
        shown = repr(saved[bad[0]])
        raise CheckpointError(f"progress.{bad[0]}={shown[:60] + '...' if len(shown) > 60 else shown} is of the "
                              f"wrong type or out of range" + (f" (and {', '.join(bad[1:])})" if bad[1:] else ""))
    return Progress(**saved)


def check_optimizer(meta: Any, arrays: dict[str, numpy.ndarray], optimizer, step: int) -> None:
    """The optimizer state of a checkpoint: this optimizer's name, numbers for its counters, arrays of
    its own shapes with finite numbers (what load_state_dict copies without looking)."""
    own_meta, own_arrays = optimizer.state_dict()
    if not isinstance(meta, dict) or meta.get("name") != optimizer.name or set(meta) != {"name", *own_meta}:
        raise CheckpointError(f"optimizer: not the state of {optimizer.name} (keys {', '.join(own_meta)})")
    if meta["eta"] != own_meta["eta"] or ("t" in own_meta and not is_whole(meta["t"], 0, step)):
        raise CheckpointError(f"optimizer: eta={meta['eta']!r} (the run's: {own_meta['eta']!r}), "
                              f"t={meta.get('t')!r} (at most the step, {step}) out of range")
    if set(arrays) != set(own_arrays):
        raise CheckpointError(f"optimizer: arrays {', '.join(sorted(arrays))} are not {', '.join(sorted(own_arrays))}")
    for name, own in own_arrays.items():
        if tuple(arrays[name].shape) != tuple(own.shape):
            raise CheckpointError(f"optimizer: array {name} has shape {tuple(arrays[name].shape)}, "
                                  f"expected {tuple(own.shape)}")
        check_stored(f"optimizer: array {name}", arrays[name])


def summarize(config: DQNConfig, state: Progress, returns: list[float], final: list[float], eval_seconds: float,
              entries: list[dict[str, Any]]) -> dict[str, Any]:
    """eval_* are of the network kept (model.npz: the best check's, or the final one); final_* of the last;
    ``entries`` are the lines of metrics.jsonl."""
    train_returns = [e["return"] for e in entries if "return" in e]
    return {
        "eval_mean_return": float(numpy.mean(returns)) if returns else None,
        "eval_std_return": float(numpy.std(returns)) if returns else None,
        "eval_episodes": len(returns), "eval_returns": returns,
        "kept_network_step": state.step if state.best_return is None else state.best_step,
        "best_check_mean_return": state.best_return,
        "final_network_eval_mean_return": float(numpy.mean(final)) if final else None,
        "steps": state.step, "episodes": state.episode,
        "last_100_train_mean_return": float(numpy.mean(train_returns[-100:])) if train_returns else None,
        "train_seconds": state.seconds, "eval_seconds": eval_seconds,
        "steps_per_second": state.step / state.seconds if state.seconds else None,
        "device": backend.DEVICE, "options": asdict(config),
    }


def _plot(entries: list[dict[str, Any]], path: Path, config: DQNConfig) -> None:
    from tiefnet.plot import plt, save

    episodes = [e for e in entries if "return" in e]
    steps, returns = [e["step"] for e in episodes], numpy.array([e["return"] for e in episodes])
    running = [returns[max(0, i - 99):i + 1].mean() for i in range(len(returns))]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(steps, returns, lw=0.5, alpha=0.5, label="episode return")
    ax.plot(steps, running, lw=2, label="mean of the last 100 episodes")
    checks = [e for e in entries if "check_mean_return" in e]
    if checks:
        ax.plot([e["step"] for e in checks], [e["check_mean_return"] for e in checks], "o", ms=3,
                label=f"greedy check ({config.check_episodes} episodes)")
    ax.set(xlabel="environment step", ylabel="return", title=f"DQN on {config.env}")
    ax.grid(alpha=0.3)
    ax.legend()
    save(fig, path)
