"""Fused Numba kernels of the reach task.

One call of ``step_shard`` advances every environment of a shard by one control step:
actions -> stamina -> velocity physics -> integration -> walls -> reward -> done ->
final observation -> auto-reset -> observation. The kernels trust their inputs (the
``ReachTask`` class validates at the edge); each writes only the rows it is given.

Parameters travel as one float64 vector (``pack_params``) indexed by the ``P_*`` constants.

Random draws, all from the environment's own stream ``rng_state[i]``, in this order:
  * goal respawn (goal reached):        goal x, goal y, goal z;
  * episode reset (time-out / reset()):  creature x, creature y, goal x, goal y, goal z.
A step that both reaches a goal and ends the episode draws the respawn first, then the reset.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from quadlit.envs.rng import uniform
from quadlit.tasks.reach.params import ReachParams

OBS_DIM = 7
ACTION_DIM = 3
REWARD_TERMS = ("progress", "proximity", "goal", "wall", "stamina", "idle")
NUM_TERMS = len(REWARD_TERMS)
T_PROGRESS, T_PROXIMITY, T_GOAL, T_WALL, T_STAMINA, T_IDLE = range(NUM_TERMS)

# Index of each field of ReachParams in the packed float64 parameter vector.
PARAM_NAMES = (
    "accel_xy", "accel_z", "max_accel", "max_velocity", "momentum_damping", "gravity",
    "terminal_fall_velocity", "ground_level", "ground_friction", "air_friction", "air_drag",
    "goal_threshold", "proximity_threshold", "distance_reward_scale", "proximity_bonus_scale",
    "goal_bonus", "wall_penalty_scale", "stamina_penalty", "walk_stamina_cost",
    "jump_stamina_cost", "stamina_regen", "idle_bonus", "idle_threshold", "max_stamina",
    "box_half_extent", "box_height", "goal_height", "max_steps", "dt",
)  # fmt: skip
(
    P_ACCEL_XY, P_ACCEL_Z, P_MAX_ACCEL, P_MAX_VELOCITY, P_MOMENTUM_DAMPING, P_GRAVITY,
    P_TERMINAL_FALL_VELOCITY, P_GROUND_LEVEL, P_GROUND_FRICTION, P_AIR_FRICTION, P_AIR_DRAG,
    P_GOAL_THRESHOLD, P_PROXIMITY_THRESHOLD, P_DISTANCE_REWARD_SCALE, P_PROXIMITY_BONUS_SCALE,
    P_GOAL_BONUS, P_WALL_PENALTY_SCALE, P_STAMINA_PENALTY, P_WALK_STAMINA_COST,
    P_JUMP_STAMINA_COST, P_STAMINA_REGEN, P_IDLE_BONUS, P_IDLE_THRESHOLD, P_MAX_STAMINA,
    P_BOX_HALF_EXTENT, P_BOX_HEIGHT, P_GOAL_HEIGHT, P_MAX_STEPS, P_DT,
) = range(len(PARAM_NAMES))  # fmt: skip
NUM_PARAMS = len(PARAM_NAMES)


def pack_params(params: ReachParams) -> np.ndarray:
    """The kernel's parameter record. Returns: shape (NUM_PARAMS,), float64, read-only."""
    packed = np.array([float(getattr(params, name)) for name in PARAM_NAMES], dtype=np.float64)
    packed.flags.writeable = False
    return packed


@nb.njit(inline="always", cache=True, nogil=True)
def _clip_unit(a):
    """Clip to [-1, 1]; NaN and ±inf become 0 (a broken action must not poison the state)."""
    if not (a - a == 0.0):  # NaN or ±inf (inf - inf is NaN)
        return 0.0
    if a > 1.0:
        return 1.0
    if a < -1.0:
        return -1.0
    return a


@nb.njit(inline="always", cache=True, nogil=True)
def _spawn_goal(p, i, goal, rng_state):
    """Draw a new goal for env i (3 draws: x, y, z)."""
    half = p[P_BOX_HALF_EXTENT]
    goal[i, 0] = -half + 2.0 * half * uniform(rng_state, i)
    goal[i, 1] = -half + 2.0 * half * uniform(rng_state, i)
    goal[i, 2] = p[P_GROUND_LEVEL] + p[P_GOAL_HEIGHT] * uniform(rng_state, i)


@nb.njit(inline="always", cache=True, nogil=True)
def _goal_distance(i, pos, goal):
    dx = goal[i, 0] - pos[i, 0]
    dy = goal[i, 1] - pos[i, 1]
    dz = goal[i, 2] - pos[i, 2]
    return np.sqrt(dx * dx + dy * dy + dz * dz)


@nb.njit(inline="always", cache=True, nogil=True)
def _reset_env(p, i, pos, vel, stamina, goal, prev_dist, step_count, ep_return, goals, rng_state):
    """Start a fresh episode in env i: creature at rest on the floor, full stamina (5 draws)."""
    half = p[P_BOX_HALF_EXTENT]
    pos[i, 0] = -half + 2.0 * half * uniform(rng_state, i)
    pos[i, 1] = -half + 2.0 * half * uniform(rng_state, i)
    pos[i, 2] = p[P_GROUND_LEVEL]
    vel[i, 0] = 0.0
    vel[i, 1] = 0.0
    vel[i, 2] = 0.0
    stamina[i] = p[P_MAX_STAMINA]
    _spawn_goal(p, i, goal, rng_state)
    prev_dist[i] = _goal_distance(i, pos, goal)
    step_count[i] = 0
    ep_return[i] = 0.0
    goals[i] = 0


@nb.njit(inline="always", cache=True, nogil=True)
def _obs_component(x):
    if x > 1.0:
        return 1.0
    if x < -1.0:
        return -1.0
    return x


@nb.njit(inline="always", cache=True, nogil=True)
def _write_obs(p, i, pos, stamina, goal, out):
    """Observation of env i into out[i]: goal - position (3), position (3), stamina (1),
    each scaled by the arena into [-1, 1]."""
    half = p[P_BOX_HALF_EXTENT]
    height = p[P_BOX_HEIGHT]
    ground = p[P_GROUND_LEVEL]
    out[i, 0] = _obs_component((goal[i, 0] - pos[i, 0]) / (2.0 * half))
    out[i, 1] = _obs_component((goal[i, 1] - pos[i, 1]) / (2.0 * half))
    out[i, 2] = _obs_component((goal[i, 2] - pos[i, 2]) / height)
    out[i, 3] = _obs_component(pos[i, 0] / half)
    out[i, 4] = _obs_component(pos[i, 1] / half)
    out[i, 5] = _obs_component(2.0 * (pos[i, 2] - ground) / height - 1.0)
    out[i, 6] = _obs_component(2.0 * stamina[i] / p[P_MAX_STAMINA] - 1.0)


@nb.njit(cache=True, nogil=True, error_model="numpy")
def reset_shard(p, pos, vel, stamina, goal, prev_dist, step_count, ep_return, goals, rng_state, obs):
    """Reset every environment of the shard and write its first observation.

    Shapes: n = rows of the shard; pos, vel, goal (n, 3) float64; stamina, prev_dist,
    ep_return (n,) float64; step_count, goals (n,) int64; rng_state (n,) uint64; obs (n, 7)
    float32 (output).
    """
    for i in range(pos.shape[0]):
        _reset_env(p, i, pos, vel, stamina, goal, prev_dist, step_count, ep_return, goals, rng_state)
        _write_obs(p, i, pos, stamina, goal, obs)


@nb.njit(cache=True, nogil=True, error_model="numpy")
def write_obs_shard(p, pos, stamina, goal, obs):
    """Recompute the observation of every environment of the shard (after a state load)."""
    for i in range(pos.shape[0]):
        _write_obs(p, i, pos, stamina, goal, obs)


@nb.njit(cache=True, nogil=True, error_model="numpy")
def step_shard(
    p, actions,
    pos, vel, stamina, goal, prev_dist, step_count, ep_return, goals, rng_state,
    obs, reward, reward_terms, terminated, truncated, final_obs,
    ep_return_out, ep_length_out, ep_goals_out,
):  # fmt: skip
    """Advance every environment of the shard by one control step (fused, allocation-free).

    Args:
        p: packed parameters, (NUM_PARAMS,) float64.
        actions: (n, 3) float32 acceleration commands, clipped here to [-1, 1];
            [0], [1] horizontal, [2] jump (only its positive part, only on the ground).
        pos .. rng_state: state rows of the shard (see ``reset_shard``), updated in place.
        obs, reward, reward_terms, terminated, truncated, final_obs: outputs, shapes
            (n, 7) f32, (n,) f32, (n, 6) f32, (n,) bool, (n,) bool, (n, 7) f32. ``final_obs``
            is the observation of the state the step ended in, before any auto-reset.
        ep_return_out, ep_length_out, ep_goals_out: (n,) f32 outputs, the episode's return,
            length and goals so far including this step (the finished episode's where done).

    Returns: how many environments had a non-finite state (reset, counted as terminated).
    """
    dt = p[P_DT]
    ground = p[P_GROUND_LEVEL]
    half = p[P_BOX_HALF_EXTENT]
    ceiling = ground + p[P_BOX_HEIGHT]
    max_stamina = p[P_MAX_STAMINA]
    max_velocity = p[P_MAX_VELOCITY]
    max_steps = np.int64(p[P_MAX_STEPS])
    damping_keep = max(0.0, 1.0 - p[P_MOMENTUM_DAMPING] * dt)
    ground_keep = max(0.0, 1.0 - p[P_GROUND_FRICTION] * dt)
    air_keep = max(0.0, 1.0 - p[P_AIR_FRICTION] * dt)
    num_nonfinite = 0

    for i in range(pos.shape[0]):
        a_x = _clip_unit(actions[i, 0])
        a_y = _clip_unit(actions[i, 1])
        a_jump = _clip_unit(actions[i, 2])
        on_ground = pos[i, 2] <= ground

        # Actuation: horizontal command capped in magnitude, jump only from the ground.
        acc_x = p[P_ACCEL_XY] * a_x
        acc_y = p[P_ACCEL_XY] * a_y
        acc_xy = np.sqrt(acc_x * acc_x + acc_y * acc_y)
        if acc_xy > p[P_MAX_ACCEL]:
            shrink = p[P_MAX_ACCEL] / acc_xy
            acc_x *= shrink
            acc_y *= shrink
            acc_xy = p[P_MAX_ACCEL]
        walk_effort = acc_xy / p[P_MAX_ACCEL]
        jump_effort = a_jump if (on_ground and a_jump > 0.0) else 0.0
        acc_z = p[P_ACCEL_Z] * jump_effort

        # Stamina: pay for the effort; what cannot be paid for is not delivered.
        cost = p[P_WALK_STAMINA_COST] * walk_effort * dt + p[P_JUMP_STAMINA_COST] * jump_effort
        if cost > stamina[i]:
            delivered = stamina[i] / cost
            acc_x *= delivered
            acc_y *= delivered
            acc_z *= delivered
            stamina[i] = 0.0
        else:
            stamina[i] -= cost
        idle = walk_effort < p[P_IDLE_THRESHOLD] and jump_effort < p[P_IDLE_THRESHOLD]
        if idle:
            stamina[i] = min(max_stamina, stamina[i] + p[P_STAMINA_REGEN] * dt)

        # Velocity: actuation, gravity (above the floor only), contact-dependent friction.
        v_x = vel[i, 0] + acc_x * dt
        v_y = vel[i, 1] + acc_y * dt
        v_z = vel[i, 2] + acc_z * dt
        if pos[i, 2] > ground:
            v_z -= p[P_GRAVITY] * dt
        if on_ground:
            v_x *= ground_keep
            v_y *= ground_keep
        else:
            speed = np.sqrt(v_x * v_x + v_y * v_y + v_z * v_z)
            air_keep_now = air_keep / (1.0 + p[P_AIR_DRAG] * speed * dt)
            v_x *= air_keep_now
            v_y *= air_keep_now
            v_z *= air_keep_now
        v_x *= damping_keep
        v_y *= damping_keep
        v_z *= damping_keep
        speed_xy = np.sqrt(v_x * v_x + v_y * v_y)
        if speed_xy > max_velocity:
            v_x *= max_velocity / speed_xy
            v_y *= max_velocity / speed_xy
        if v_z > max_velocity:
            v_z = max_velocity
        if v_z < -p[P_TERMINAL_FALL_VELOCITY]:
            v_z = -p[P_TERMINAL_FALL_VELOCITY]

        # Integrate, then walls: clamp into the box, stop motion into a wall, measure penetration.
        x = pos[i, 0] + v_x * dt
        y = pos[i, 1] + v_y * dt
        z = pos[i, 2] + v_z * dt
        penetration = 0.0
        if x > half:
            penetration += x - half
            x = half
            v_x = min(v_x, 0.0)
        elif x < -half:
            penetration += -half - x
            x = -half
            v_x = max(v_x, 0.0)
        if y > half:
            penetration += y - half
            y = half
            v_y = min(v_y, 0.0)
        elif y < -half:
            penetration += -half - y
            y = -half
            v_y = max(v_y, 0.0)
        if z > ceiling:
            penetration += z - ceiling
            z = ceiling
            v_z = min(v_z, 0.0)
        elif z <= ground:  # landing on the floor: no bounce, no penalty
            z = ground
            v_z = max(v_z, 0.0)
        pos[i, 0] = x
        pos[i, 1] = y
        pos[i, 2] = z
        vel[i, 0] = v_x
        vel[i, 1] = v_y
        vel[i, 2] = v_z

        # Reward terms.
        dist = _goal_distance(i, pos, goal)
        r_progress = p[P_DISTANCE_REWARD_SCALE] * (prev_dist[i] - dist)
        r_proximity = p[P_PROXIMITY_BONUS_SCALE] * max(0.0, 1.0 - dist / p[P_PROXIMITY_THRESHOLD])
        r_goal = 0.0
        if dist < p[P_GOAL_THRESHOLD]:
            r_goal = p[P_GOAL_BONUS]
            goals[i] += 1
            _spawn_goal(p, i, goal, rng_state)
            dist = _goal_distance(i, pos, goal)
        prev_dist[i] = dist
        r_wall = 0.0 - p[P_WALL_PENALTY_SCALE] * penetration
        r_stamina = -p[P_STAMINA_PENALTY] if stamina[i] <= 0.0 else 0.0
        r_idle = p[P_IDLE_BONUS] if idle else 0.0
        r = r_progress + r_proximity + r_goal + r_wall + r_stamina + r_idle
        reward_terms[i, T_PROGRESS] = r_progress
        reward_terms[i, T_PROXIMITY] = r_proximity
        reward_terms[i, T_GOAL] = r_goal
        reward_terms[i, T_WALL] = r_wall
        reward_terms[i, T_STAMINA] = r_stamina
        reward_terms[i, T_IDLE] = r_idle
        reward[i] = r

        # Episode bookkeeping, final observation, auto-reset.
        step_count[i] += 1
        ep_return[i] += r
        ep_return_out[i] = ep_return[i]
        ep_length_out[i] = step_count[i]
        ep_goals_out[i] = goals[i]
        finite = np.isfinite(x + y + z + v_x + v_y + v_z + stamina[i] + r)
        if not finite:
            num_nonfinite += 1
        terminated[i] = not finite
        truncated[i] = finite and step_count[i] >= max_steps
        _write_obs(p, i, pos, stamina, goal, final_obs)
        if terminated[i] or truncated[i]:
            _reset_env(
                p, i, pos, vel, stamina, goal, prev_dist, step_count, ep_return, goals, rng_state
            )
            _write_obs(p, i, pos, stamina, goal, obs)
        else:
            for k in range(OBS_DIM):
                obs[i, k] = final_obs[i, k]
    return num_nonfinite
