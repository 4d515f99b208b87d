"""The torch peer of bench/dqn_cartpole.py: DQN on CartPole-v1 with CleanRL's published dqn.py defaults
(checked against vwxyzjn/cleanrl cleanrl/dqn.py), written here for tiefnet, not copied:

    500,000 steps, Adam lr 2.5e-4, replay buffer 10,000, gamma 0.99, target network copied every 500 steps
    (tau 1), batch 128, epsilon 1 -> 0.05 over 50 % of the steps, learning starts at step 10,000, one
    gradient step every 10 steps, MLP 120-84 (ReLU), MSE loss on the gathered Q-values.

Like tiefnet's run, a time-limit truncation still bootstraps (CleanRL's handle_timeout_termination),
and the final network is evaluated on 100 greedy episodes (CleanRL itself evaluates 10 episodes
with epsilon 0.05).

    .venv/bin/python bench/cleanrl_dqn_cartpole.py --seeds 0 1 2 [--steps 500000]
"""
from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import gymnasium
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

SOLVED = 475.0


def q_network(n_obs: int, n_actions: int) -> nn.Module:
    return nn.Sequential(nn.Linear(n_obs, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, n_actions))


def train(seed: int, steps: int) -> tuple[nn.Module, dict]:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    env = gymnasium.make("CartPole-v1")
    n_obs, n_actions = env.observation_space.shape[0], int(env.action_space.n)
    q_net, target_net = q_network(n_obs, n_actions), q_network(n_obs, n_actions)
    target_net.load_state_dict(q_net.state_dict())
    optimizer = torch.optim.Adam(q_net.parameters(), lr=2.5e-4)
    capacity, batch_size, gamma = 10_000, 128, 0.99
    obs_buf = np.zeros((capacity, n_obs), np.float32)
    next_buf = np.zeros((capacity, n_obs), np.float32)
    act_buf = np.zeros(capacity, np.int64)
    rew_buf = np.zeros(capacity, np.float32)
    term_buf = np.zeros(capacity, np.float32)
    size = position = episodes = 0
    started = time.perf_counter()
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    for step in range(steps):
        epsilon = max(1.0 + (0.05 - 1.0) * step / (0.5 * steps), 0.05)
        if random.random() < epsilon:
            action = env.action_space.sample()
        else:
            with torch.no_grad():
                action = int(q_net(torch.from_numpy(obs)[None]).argmax(dim=1))
        next_obs, reward, terminated, truncated, _ = env.step(action)
        obs_buf[position], next_buf[position], act_buf[position] = obs, next_obs, action
        rew_buf[position], term_buf[position] = reward, terminated
        position, size = (position + 1) % capacity, min(size + 1, capacity)
        obs = next_obs
        if terminated or truncated:
            episodes += 1
            obs, _ = env.reset()
        if step > 10_000:
            if step % 10 == 0:
                j = np.random.randint(0, size, batch_size)
                with torch.no_grad():
                    target_max = target_net(torch.from_numpy(next_buf[j])).max(dim=1).values
                    y = torch.from_numpy(rew_buf[j]) + gamma * target_max * (1 - torch.from_numpy(term_buf[j]))
                q = q_net(torch.from_numpy(obs_buf[j])).gather(1, torch.from_numpy(act_buf[j])[:, None]).squeeze(1)
                loss = F.mse_loss(y, q)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            if step % 500 == 0:
                target_net.load_state_dict(q_net.state_dict())
    env.close()
    return q_net, {"steps": steps, "episodes": episodes, "train_seconds": time.perf_counter() - started}


def evaluate(q_net: nn.Module, episodes: int, seed: int) -> list[float]:
    env = gymnasium.make("CartPole-v1")
    returns = []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed * 1000 + i)
        total, done = 0.0, False
        while not done:
            with torch.no_grad():
                action = int(q_net(torch.from_numpy(obs)[None]).argmax(dim=1))
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return returns


def main() -> None:
    parser = argparse.ArgumentParser(description="CleanRL's DQN CartPole configuration in torch (the peer)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=500_000)
    parser.add_argument("--out", type=Path, default=None, help="write the figures to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = []
    print(f"torch {torch.__version__}, CleanRL dqn.py CartPole-v1 defaults, {args.steps} steps, 1 thread")
    for seed in args.seeds:
        q_net, info = train(seed, args.steps)
        returns = evaluate(q_net, 100, seed)
        result = {"seed": seed, "eval_mean_return": float(np.mean(returns)), **info,
                  "solved": float(np.mean(returns)) >= SOLVED}
        results.append(result)
        print(f"seed {seed}: eval mean return {result['eval_mean_return']:.1f} over 100 greedy episodes "
              f"({'solved' if result['solved'] else 'not solved'}), {info['steps']} steps, {info['episodes']} "
              f"episodes, training {info['train_seconds']:.1f} s", flush=True)
    print(f"{sum(r['solved'] for r in results)} of {len(results)} seeds reach >= {SOLVED}")
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
