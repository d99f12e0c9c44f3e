"""The other trainers ``quadlit bench versus`` runs on quadlit's environment: Stable-Baselines3 PPO
and rsl_rl PPO (its MLP and its recurrent model), one training run each, evaluated on the
push-robustness curve as quadlit is.

Each ``run_*`` trains in this process until an ``EvaluationSchedule`` says the budget is spent,
evaluating when it is due, and returns the run's record in ``bench train``'s layout (plus
``start_seconds``, when it could first act).
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any, Callable

import numpy as np

from quadlit.bench import EvaluationSchedule

#: What the printed tables and plots call each baseline.
LABELS = {"sb3": "Stable-Baselines3 PPO", "rsl_rl": "rsl_rl PPO (MLP)", "rsl_rl_lstm": "rsl_rl PPO (LSTM)"}
#: Environments each baseline trains on by default: SB3's 8 of issue 11, Isaac Lab's A1 runs on 256 here.
DEFAULT_ENVS = {"sb3": 8, "rsl_rl": 256, "rsl_rl_lstm": 256}


def task_params(config: str, which: str):
    """The balance parameters of ``config`` ("config") or the defaults ("default")."""
    import yaml

    from quadlit.tasks.balance import BalanceParams

    if which == "default":
        return BalanceParams()
    data = yaml.safe_load(Path(config).read_text()).get("data", {})
    return BalanceParams(**(data.get("balance") or {}))


class SB3Policy:
    """A Stable-Baselines3 model behind the ``act`` API of quadlit's policies (for evaluation)."""

    def __init__(self, model) -> None:
        self.model = model

    def initial_state(self, batch: int, device=None):
        import torch

        z = torch.zeros(batch, 1)
        return z, z.clone()

    def act(self, obs, state, episode_start, deterministic: bool = True, generator=None):
        import torch

        action, _ = self.model.predict(obs.cpu().numpy(), deterministic=deterministic)
        action = torch.as_tensor(np.asarray(action, np.float32))
        zeros = torch.zeros(obs.shape[0])
        return action, action.clone(), zeros, zeros, state


class RslRlPolicy:
    """An rsl_rl actor behind the ``act`` API of quadlit's policies, for evaluation.

    It acts with its own copy of the actor, made when this is built (before training: the copy
    of a trained actor would take its last graph along) and given the trained actor's weights and
    normalisation statistics by ``load_from``; evaluating never touches the actor in training nor
    its recurrent state. It reads the raw observation as the "policy"
    group (the actor normalises it itself); deterministic: the Gaussian's mean (sampling, with
    ``deterministic=False``, ignores ``generator``). A recurrent actor's state is zeroed where
    ``episode_start`` is 1; the state passed in and out is unused (the copy keeps it).
    """

    def __init__(self, actor) -> None:
        self.actor = copy.deepcopy(actor).eval()

    def load_from(self, actor) -> "RslRlPolicy":
        """Take ``actor``'s current weights and observation statistics; returns self."""
        self.actor.load_state_dict(actor.state_dict())
        return self

    def initial_state(self, batch: int, device=None):
        self.actor.reset()  # a recurrent actor starts from zeros at the next step
        return None

    def act(self, obs, state, episode_start, deterministic: bool = True, generator=None):
        import torch
        from tensordict import TensorDict

        self.actor.reset(dones=episode_start)
        action = self.actor(TensorDict({"policy": obs.float()}, batch_size=[obs.shape[0]]),
                            stochastic_output=not deterministic)
        zeros = torch.zeros(obs.shape[0])
        return action, action.clone(), zeros, zeros, state


def rsl_rl_train_cfg(recurrent: bool) -> dict:
    """rsl_rl's ``OnPolicyRunner`` configuration with Isaac Lab's PPO settings for the Unitree A1 on
    flat terrain (24 steps per environment, lr 1e-3 adapted to a KL of 0.01, 5 epochs x 4
    minibatches, clip 0.2, entropy 0.01, initial std 1.0, ELU MLPs 128-128-128), with observation
    normalisation, the critic reading the ``critic`` group (the privileged inputs too).
    ``recurrent``: rsl_rl's recurrent model in actor and critic, an LSTM (its default 256 units,
    one layer) before the same MLPs."""
    model: dict[str, Any] = {"class_name": "RNNModel", "rnn_type": "lstm", "rnn_hidden_dim": 256,
                             "rnn_num_layers": 1} if recurrent else {"class_name": "MLPModel"}
    model.update(hidden_dims=[128, 128, 128], activation="elu", obs_normalization=True)
    return {
        "num_steps_per_env": 24,
        "save_interval": 50,
        "obs_groups": {"actor": ["policy"], "critic": ["critic"]},
        "actor": {**model, "distribution_cfg": {"class_name": "GaussianDistribution", "init_std": 1.0,
                                                "std_type": "scalar"}},
        "critic": dict(model),
        "algorithm": {"class_name": "PPO", "learning_rate": 1e-3, "schedule": "adaptive", "desired_kl": 0.01,
                      "num_learning_epochs": 5, "num_mini_batches": 4, "clip_param": 0.2, "entropy_coef": 0.01,
                      "value_loss_coef": 1.0, "use_clipped_value_loss": True, "gamma": 0.99, "lam": 0.95,
                      "max_grad_norm": 1.0},
    }


def _record(args, schedule: EvaluationSchedule, final: dict, zero: dict) -> dict:
    return {"config": args.baseline, "seed": args.seed, "train_seconds": final["seconds"],
            "start_seconds": schedule.start_seconds, "env_steps": final["env_steps"], "evaluations": schedule.rows,
            "final_curve": final["curve"], "zero_curve": zero, "trace": []}


def _evaluator(args, policy: Callable[[], Any], env_steps: Callable[[], int]) -> tuple[Callable[[], dict], Callable]:
    """``evaluate()`` -> {"env_steps", "curve"} of the baseline's policy now (printed), and the
    zero-action curve, on ``--config``'s push-robustness episodes."""
    from quadlit.models.baselines import ZeroPolicy
    from quadlit.training.evaluation import push_curve
    from quadlit.training.normalizer import RunningNorm

    params = task_params(args.config, "config")
    identity = RunningNorm(37, enabled=False)  # the baselines normalise (or not) themselves

    def curve(p) -> dict[float, float]:
        return push_curve(p, identity, "balance", params, args.eval_episodes, args.eval_seed, "cpu")

    def evaluate() -> dict:
        return {"env_steps": int(env_steps()), "curve": curve(policy())}

    return evaluate, lambda: curve(ZeroPolicy(12))


def print_row(label: str) -> Callable[[dict], None]:
    """An ``EvaluationSchedule`` report that prints each evaluation as one line."""
    def report(row: dict) -> None:
        curve = row["curve"]
        print(f"  {label} {row['seconds']:7.1f} s  {row['env_steps'] / 1e6:6.3f} M steps  survival % at "
              f"{'/'.join(f'{k:g}' for k in curve)} m/s: " + "  ".join(f"{100 * v:4.0f}" for v in curve.values()),
              flush=True)
    return report


def run_sb3(args, schedule: EvaluationSchedule) -> dict:
    """Stable-Baselines3 PPO, ``MlpPolicy`` (64x64, its default), ``--baseline-envs`` environments
    of ``quadlit/Balance-v0`` in a ``DummyVecEnv``, n_steps 256, batch 256, 10 epochs, lr 3e-4,
    everything else SB3's defaults."""
    try:
        from stable_baselines3 import PPO
        from stable_baselines3.common.callbacks import BaseCallback
        from stable_baselines3.common.env_util import make_vec_env
        from stable_baselines3.common.vec_env import DummyVecEnv
    except ImportError:
        raise SystemExit("quadlit bench versus --baseline sb3 needs Stable-Baselines3: pip install 'quadlit[bench]'")
    import quadlit.gym  # noqa: F401  (registers quadlit/Balance-v0)

    params = dataclasses.asdict(task_params(args.config, args.baseline_params))
    env = make_vec_env("quadlit/Balance-v0", n_envs=args.baseline_envs, seed=args.seed, vec_env_cls=DummyVecEnv,
                       env_kwargs={"params": params})
    model = PPO("MlpPolicy", env, n_steps=256, batch_size=256, n_epochs=10, learning_rate=3e-4, seed=args.seed,
                device="cpu", verbose=0)
    evaluate, zero_curve = _evaluator(args, lambda: SB3Policy(model), lambda: model.num_timesteps)

    class Budget(BaseCallback):
        def _on_step(self) -> bool:
            return schedule.after_chunk(evaluate)

    model.learn(total_timesteps=10**9, callback=Budget())
    final = schedule.evaluate_now(evaluate)
    env.close()
    return _record(args, schedule, final, zero_curve())


def run_rsl_rl(args, schedule: EvaluationSchedule) -> dict:
    """rsl_rl PPO (``rsl_rl_train_cfg``; the recurrent model for ``--baseline rsl_rl_lstm``) on
    ``--baseline-envs`` environments of the balance task (``quadlit.rsl_rl``), one
    ``OnPolicyRunner.learn`` iteration per chunk of training."""
    try:
        from rsl_rl.runners import OnPolicyRunner

        from quadlit.rsl_rl import QuadlitRslRlVecEnv
    except ImportError:
        raise SystemExit(f"quadlit bench versus --baseline {args.baseline} needs rsl_rl: pip install 'quadlit[rsl_rl]'")
    import torch

    torch.manual_seed(args.seed)  # the networks' initial weights and the actions' noise
    env = QuadlitRslRlVecEnv("balance", args.baseline_envs, params=task_params(args.config, args.baseline_params),
                             seed=args.seed)
    runner = OnPolicyRunner(env, rsl_rl_train_cfg(args.baseline == "rsl_rl_lstm"), log_dir=None, device="cpu")
    policy = RslRlPolicy(runner.alg.get_policy())
    evaluate, zero_curve = _evaluator(args, lambda: policy.load_from(runner.alg.get_policy()), lambda: env.env_steps)
    runner.learn(1)
    while schedule.after_chunk(evaluate):
        runner.learn(1)
    final = schedule.evaluate_now(evaluate)
    env.close()
    return _record(args, schedule, final, zero_curve())


RUNS = {"sb3": run_sb3, "rsl_rl": run_rsl_rl, "rsl_rl_lstm": run_rsl_rl}
