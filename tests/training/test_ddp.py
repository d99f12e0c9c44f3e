"""Two DDP processes on the CPU: each owns its environments, parameters stay bitwise identical
after every iteration, metrics are reduced across ranks, rank zero alone writes checkpoints and
videos, and a resumed DDP run gives every rank back its own environments."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import torch

from quadlit.render.display import display_available
from tests.tiny import REPO

# Runs the CLI with a callback that records, on every rank after every iteration, a digest of
# all parameters, the rank's own rollout reward and the logged (reduced) value. Lightning's DDP
# launcher starts rank 1 by running this same script again.
SCRIPT = textwrap.dedent("""
    import hashlib, json, os, sys
    import lightning as L
    import quadlit.cli as cli
    from quadlit.training.checkpoint import AtomicCheckpointIO
    from quadlit.training.video import EvalVideo

    OUT = sys.argv[1]

    def note(name, record):
        with open(os.path.join(OUT, name), "a") as f:
            f.write(json.dumps(record) + "\\n")

    def digest(tensors):
        return hashlib.sha256(b"".join(t.detach().cpu().contiguous().numpy().tobytes() for t in tensors)).hexdigest()

    class Record(L.Callback):
        def on_train_start(self, trainer, pl_module):
            note(f"start{trainer.global_rank}.jsonl", {"obs": digest([__import__("torch").from_numpy(
                trainer.datamodule.collector.obs)]), "step": trainer.global_step})

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            note(f"rank{trainer.global_rank}.jsonl", {
                "step": trainer.global_step,
                "params": digest(pl_module.parameters()),
                "obs_norm": digest(pl_module.obs_norm.buffers()),
                "lr": trainer.optimizers[0].param_groups[0]["lr"],
                "reward_local": float(batch.reward.mean()),
                "reward_logged": float(trainer.callback_metrics["train/reward_per_step"]),
                "num_envs": batch.reward.shape[1],
            })

    save = AtomicCheckpointIO.save_checkpoint
    def noted_save(self, checkpoint, path, storage_options=None):
        note("saves.jsonl", {"rank": int(os.environ.get("LOCAL_RANK", 0)), "path": str(path)})
        return save(self, checkpoint, path, storage_options)
    AtomicCheckpointIO.save_checkpoint = noted_save

    record = EvalVideo.record
    def noted_record(self, trainer, pl_module, name):
        path = record(self, trainer, pl_module, name)
        if path is not None:
            note("videos.jsonl", {"rank": trainer.global_rank})
        return path
    EvalVideo.record = noted_record

    defaults = cli.default_callbacks
    cli.default_callbacks = lambda: [EvalVideo(every_n_epochs=1, max_steps=20, width=64, height=48)
                                     if isinstance(c, EvalVideo) else c for c in defaults()]
    cli.quiet_known_warnings()
    cli.run_cli(sys.argv[2:], extra_callbacks=[Record()])
""")

ARGS = [
    "fit", "--config", str(REPO / "configs/reach.yaml"),
    "--data.num_envs", "16", "--data.rollout_steps", "8", "--data.iterations_per_epoch", "2",
    "--data.eval_episodes", "4", "--data.reach.max_steps", "40",
    "--model.lstm_hidden", "16", "--model.wm_batch_size", "32", "--model.num_minibatches", "2",
    "--trainer.check_val_every_n_epoch", "1", "--trainer.enable_progress_bar", "false",
    "--trainer.enable_model_summary", "false",
    "--trainer.strategy=ddp", "--trainer.devices=2", "--trainer.accelerator=cpu",
]


def _run(tmp_path: Path, out: Path, *extra: str) -> str:
    script = tmp_path / "ddp_fit.py"
    script.write_text(SCRIPT)
    out.mkdir(exist_ok=True)
    # a session of its own, so a hang kills rank 1 (started by rank 0) along with rank 0
    proc = subprocess.Popen([sys.executable, str(script), str(out), *ARGS, "--trainer.default_root_dir",
                             str(tmp_path / "run"), *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        raise AssertionError("DDP run hung (a collective reached by one rank only?):\n" + output[-3000:])
    assert proc.returncode == 0, output[-6000:]
    return output


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_ddp_on_two_cpu_processes(tmp_path):
    out = tmp_path / "first"
    _run(tmp_path, out, "--trainer.max_epochs", "2")
    r0, r1 = _records(out / "rank0.jsonl"), _records(out / "rank1.jsonl")
    assert len(r0) == len(r1) == 4  # 2 epochs x 2 iterations on each rank
    for a, b in zip(r0, r1):
        # the same parameters, normaliser and step size on both ranks after every iteration ...
        assert a["step"] == b["step"] and a["params"] == b["params"]
        assert a["obs_norm"] == b["obs_norm"] and a["lr"] == b["lr"]
        # ... from different experience: each rank steps its own environments
        assert a["reward_local"] != b["reward_local"]
        # the logged metric is the mean over ranks, the same on both
        assert a["reward_logged"] == b["reward_logged"]
        assert np.isclose(a["reward_logged"], 0.5 * (a["reward_local"] + b["reward_local"]), rtol=1e-5, atol=1e-7)
    assert len({r["params"] for r in r0}) == 4  # and they trained

    saves = _records(out / "saves.jsonl")
    assert saves and {s["rank"] for s in saves} == {0}  # rank zero alone writes checkpoints
    videos = _records(out / "videos.jsonl") if (out / "videos.jsonl").exists() else []
    if display_available()[0]:
        assert videos and {v["rank"] for v in videos} == {0}  # and renders
    else:
        assert videos == []

    last = tmp_path / "run" / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"
    ckpt = torch.load(last, weights_only=True)
    ranks = ckpt["RolloutDataModule"]["rank_collectors"]
    assert len(ranks) == 2 and not torch.equal(ranks[0]["obs"], ranks[1]["obs"])
    assert len(ckpt["quadlit_generators"]["action"]) == 2

    # resumed on two ranks, each continues from its own saved environments
    out = tmp_path / "resumed"
    output = _run(tmp_path, out, "--trainer.max_epochs", "3", "--ckpt_path", "last")
    assert output.count("quadlit: resuming from") == 1  # said once, by rank zero
    for rank in (0, 1):
        start = _records(out / f"start{rank}.jsonl")[0]
        assert start["step"] == ckpt["global_step"]
        assert start["obs"] == _digest(ranks[rank]["obs"])
    r0, r1 = _records(out / "rank0.jsonl"), _records(out / "rank1.jsonl")
    assert len(r0) == len(r1) == 2 and all(a["params"] == b["params"] for a, b in zip(r0, r1))


def _digest(t: torch.Tensor) -> str:
    return hashlib.sha256(t.contiguous().numpy().tobytes()).hexdigest()
