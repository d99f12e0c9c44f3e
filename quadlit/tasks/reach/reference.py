"""Slow pure-Python reference of the reach task, written from the rules, for tests.

It keeps the same state as ``ReachTask`` (plain NumPy arrays) and steps one environment at a
time with Python floats, drawing random numbers from its own splitmix64 implementation on
Python integers, in the documented draw order (see ``quadlit.tasks.reach.kernels``).
"""

from __future__ import annotations

import math

import numpy as np

from quadlit.tasks.reach.params import ReachParams

_MASK = (1 << 64) - 1


def splitmix64_uniform(state: int) -> tuple[int, float]:
    """One draw of a splitmix64 stream: returns (next state, uniform float in [0, 1))."""
    state = (state + 0x9E3779B97F4A7C15) & _MASK
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    z = z ^ (z >> 31)
    return state, (z >> 11) / 9007199254740992.0


class ReachReference:
    """Reference environments over copies of a task's state arrays (see ``ReachTask.state_dict``).

    Args:
        params: the task parameters.
        state: dict with pos, vel, goal (N, 3); stamina, prev_dist, ep_return (N,); step_count,
            goals (N,); rng_state (N,) uint64.
    """

    def __init__(self, params: ReachParams, state: dict) -> None:
        self.p = params
        arrays = {k: v for k, v in state.items() if isinstance(v, np.ndarray)}
        self.state = {k: np.array(v, copy=True) for k, v in arrays.items()}
        self.num_envs = len(self.state["stamina"])

    # ---- random stream -------------------------------------------------------------------
    def _uniform(self, i: int) -> float:
        s, u = splitmix64_uniform(int(self.state["rng_state"][i]))
        self.state["rng_state"][i] = np.uint64(s)
        return u

    # ---- pieces ----------------------------------------------------------------------------
    def _spawn_goal(self, i: int) -> None:
        h = self.p.box_half_extent
        gx = -h + 2.0 * h * self._uniform(i)
        gy = -h + 2.0 * h * self._uniform(i)
        gz = self.p.ground_level + self.p.goal_height * self._uniform(i)
        self.state["goal"][i] = (gx, gy, gz)

    def _distance(self, i: int) -> float:
        d = self.state["goal"][i] - self.state["pos"][i]
        return math.sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2])

    def reset_env(self, i: int) -> None:
        s, h = self.state, self.p.box_half_extent
        x = -h + 2.0 * h * self._uniform(i)
        y = -h + 2.0 * h * self._uniform(i)
        s["pos"][i] = (x, y, self.p.ground_level)
        s["vel"][i] = 0.0
        s["stamina"][i] = self.p.max_stamina
        self._spawn_goal(i)
        s["prev_dist"][i] = self._distance(i)
        s["step_count"][i] = 0
        s["ep_return"][i] = 0.0
        s["goals"][i] = 0

    def observe(self, i: int) -> np.ndarray:
        p, s = self.p, self.state
        pos, goal = s["pos"][i], s["goal"][i]
        o = np.array(
            [
                (goal[0] - pos[0]) / (2 * p.box_half_extent),
                (goal[1] - pos[1]) / (2 * p.box_half_extent),
                (goal[2] - pos[2]) / p.box_height,
                pos[0] / p.box_half_extent,
                pos[1] / p.box_half_extent,
                2 * (pos[2] - p.ground_level) / p.box_height - 1,
                2 * s["stamina"][i] / p.max_stamina - 1,
            ]
        )
        return np.clip(o, -1.0, 1.0)

    # ---- one step of one environment ---------------------------------------------------------
    def step_env(self, i: int, action) -> dict:
        p, s = self.p, self.state
        dt = p.dt
        a = [min(1.0, max(-1.0, float(v))) if math.isfinite(v) else 0.0 for v in action]
        x, y, z = (float(v) for v in s["pos"][i])
        vx, vy, vz = (float(v) for v in s["vel"][i])
        on_ground = z <= p.ground_level

        ax, ay = p.accel_xy * a[0], p.accel_xy * a[1]
        mag = math.sqrt(ax * ax + ay * ay)
        if mag > p.max_accel:
            ax, ay, mag = ax * (p.max_accel / mag), ay * (p.max_accel / mag), p.max_accel
        walk = mag / p.max_accel
        jump = a[2] if (on_ground and a[2] > 0) else 0.0
        az = p.accel_z * jump

        stamina = float(s["stamina"][i])
        cost = p.walk_stamina_cost * walk * dt + p.jump_stamina_cost * jump
        if cost > stamina:
            frac = stamina / cost
            ax, ay, az = ax * frac, ay * frac, az * frac
            stamina = 0.0
        else:
            stamina -= cost
        idle = walk < p.idle_threshold and jump < p.idle_threshold
        if idle:
            stamina = min(p.max_stamina, stamina + p.stamina_regen * dt)

        vx, vy, vz = vx + ax * dt, vy + ay * dt, vz + az * dt
        if not on_ground:
            vz -= p.gravity * dt
            speed = math.sqrt(vx * vx + vy * vy + vz * vz)
            k = max(0.0, 1 - p.air_friction * dt) / (1 + p.air_drag * speed * dt)
            vx, vy, vz = vx * k, vy * k, vz * k
        else:
            k = max(0.0, 1 - p.ground_friction * dt)
            vx, vy = vx * k, vy * k
        k = max(0.0, 1 - p.momentum_damping * dt)
        vx, vy, vz = vx * k, vy * k, vz * k
        sxy = math.sqrt(vx * vx + vy * vy)
        if sxy > p.max_velocity:
            vx, vy = vx * (p.max_velocity / sxy), vy * (p.max_velocity / sxy)
        vz = min(vz, p.max_velocity)
        vz = max(vz, -p.terminal_fall_velocity)

        x, y, z = x + vx * dt, y + vy * dt, z + vz * dt
        h, top = p.box_half_extent, p.ground_level + p.box_height
        pen = 0.0
        if x > h:
            pen, x, vx = pen + x - h, h, min(vx, 0.0)
        elif x < -h:
            pen, x, vx = pen + (-h - x), -h, max(vx, 0.0)
        if y > h:
            pen, y, vy = pen + y - h, h, min(vy, 0.0)
        elif y < -h:
            pen, y, vy = pen + (-h - y), -h, max(vy, 0.0)
        if z > top:
            pen, z, vz = pen + z - top, top, min(vz, 0.0)
        elif z <= p.ground_level:
            z, vz = p.ground_level, max(vz, 0.0)
        s["pos"][i] = (x, y, z)
        s["vel"][i] = (vx, vy, vz)
        s["stamina"][i] = stamina

        dist = self._distance(i)
        terms = {
            "progress": p.distance_reward_scale * (float(s["prev_dist"][i]) - dist),
            "proximity": p.proximity_bonus_scale * max(0.0, 1 - dist / p.proximity_threshold),
            "goal": 0.0,
            "wall": 0.0 - p.wall_penalty_scale * pen,
            "stamina": -p.stamina_penalty if stamina <= 0 else 0.0,
            "idle": p.idle_bonus if idle else 0.0,
        }
        if dist < p.goal_threshold:
            terms["goal"] = p.goal_bonus
            s["goals"][i] += 1
            self._spawn_goal(i)
            dist = self._distance(i)
        s["prev_dist"][i] = dist
        order = ("progress", "proximity", "goal", "wall", "stamina", "idle")
        reward = 0.0
        for name in order:
            reward += terms[name]

        s["step_count"][i] += 1
        s["ep_return"][i] += reward
        out = {
            "reward": reward,
            "terms": np.array([terms[n] for n in order]),
            "episode": (float(s["ep_return"][i]), int(s["step_count"][i]), int(s["goals"][i])),
            "final_obs": self.observe(i),
            "truncated": bool(s["step_count"][i] >= p.max_steps),
        }
        if out["truncated"]:
            self.reset_env(i)
        out["obs"] = self.observe(i)
        return out

    def step(self, actions: np.ndarray) -> dict:
        """Step every environment; returns stacked arrays keyed like ``step_env``'s output."""
        outs = [self.step_env(i, actions[i]) for i in range(self.num_envs)]
        return {
            "obs": np.stack([o["obs"] for o in outs]),
            "final_obs": np.stack([o["final_obs"] for o in outs]),
            "reward": np.array([o["reward"] for o in outs]),
            "terms": np.stack([o["terms"] for o in outs]),
            "truncated": np.array([o["truncated"] for o in outs]),
            "episode_return": np.array([o["episode"][0] for o in outs]),
            "episode_length": np.array([o["episode"][1] for o in outs]),
            "episode_goals": np.array([o["episode"][2] for o in outs]),
        }
