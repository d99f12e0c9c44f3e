"""A table of bad inputs, each one line on stderr naming the problem, exit status 2, nothing
written (issue 14). tests/test_cli.py and tests/test_cli_edges.py hold the cases that need
files, checkpoints or output paths set up; these need only the command line."""

import os
from pathlib import Path

import pytest

from quadlit.cli import main
from tests.tiny import REPO, TINY

# (option, value, text the line must contain)
FIT_OPTIONS = [
    # model: ranges, types, choices, shapes
    ("--model.lr", "2", "model.lr"),
    ("--model.lr", "nan", "model.lr"),
    ("--model.lr", "inf", "model.lr"),
    ("--model.wm_lr", "0", "model.wm_lr"),
    ("--model.critic_lr", "0", "model.critic_lr"),
    ("--model.clip_ratio", "0", "model.clip_ratio"),
    ("--model.clip_ratio", "1.5", "model.clip_ratio"),
    ("--model.value_clip", "-1", "model.value_clip"),
    ("--model.entropy_coef", "-1", "model.entropy_coef"),
    ("--model.value_coef", "-1", "model.value_coef"),
    ("--model.max_grad_norm", "0", "model.max_grad_norm"),
    ("--model.ppo_epochs", "-1", "model.ppo_epochs"),
    ("--model.ppo_epochs", "1.5", "model.ppo_epochs"),
    ("--model.num_minibatches", "0", "model.num_minibatches"),
    ("--model.wm_updates", "-1", "model.wm_updates"),
    ("--model.wm_batch_size", "0", "model.wm_batch_size"),
    ("--model.desired_kl", "0", "model.desired_kl"),
    ("--model.desired_kl", "2", "model.desired_kl"),
    ("--model.max_nonfinite_iterations", "0", "model.max_nonfinite_iterations"),
    ("--model.init_log_std", "5", "model.init_log_std"),
    ("--model.final_log_std", "-20", "model.final_log_std"),
    ("--model.log_std_decay_steps", "0", "model.log_std_decay_steps"),
    ("--model.quiet_envs", "1", "model.quiet_envs"),
    ("--model.quiet_std_scale", "0", "model.quiet_std_scale"),
    ("--model.guard_tolerance", "1", "model.guard_tolerance"),
    ("--model.guard_tolerance", "0.1", "has no guard evaluation"),  # the reach task has no guard episodes
    ("--model.guard_every", "0", "model.guard_every"),
    ("--model.mirror_coef", "-1", "model.mirror_coef"),
    ("--model.mirror_coef", "0.5", "has no mirror symmetry"),  # the reach task has no mirror
    ("--model.mirror_envs", "0", "model.mirror_envs"),
    ("--model.noise_correlation", "1", "model.noise_correlation"),
    ("--model.policy", "transformer", "model.policy"),
    ("--model.critic", "giant", "model.critic"),
    ("--model.mlp_hidden", "[]", "model.mlp_hidden"),
    ("--model.mlp_hidden", "[0]", "model.mlp_hidden"),
    ("--model.critic_hidden", "[-1]", "model.critic_hidden"),
    ("--model.lstm_hidden", "0", "model.lstm_hidden"),
    ("--model.encoder_dim", "0", "model.encoder_dim"),
    ("--model.gat_heads", "0", "model.gat_heads"),
    ("--model.gat_head_dim", "-3", "model.gat_head_dim"),
    ("--model.wm_latent_dim", "0", "model.wm_latent_dim"),
    ("--model.seed", "abc", "model.seed"),
    ("--model.normalize_obs", "maybe", "model.normalize_obs"),
    ("--model.desired_kl", "abc", "model.desired_kl"),
    # data and task parameters
    ("--data.num_envs", "lots", "data.num_envs"),
    ("--data.num_envs", "1000000000", "data.num_envs"),
    ("--data.min_envs", "0", "min_envs"),
    ("--data.max_envs", "1", "max_envs"),
    ("--data.iterations_per_epoch", "0", "data.iterations_per_epoch"),
    ("--data.physics_threads", "0", "data.physics_threads"),
    ("--data.physics_threads", "many", "data.physics_threads"),
    ("--data.eval_episodes", "0", "data.eval_episodes"),
    ("--data.seed", "x", "data.seed"),
    ("--data.eval_curve", "maybe", "data.eval_curve"),
    ("--data.wm_eval_envs", "1", "data.wm_eval_envs"),
    ("--data.wm_eval_steps", "24", "data.wm_eval_steps"),
    ("--data.guard_episodes", "0", "data.guard_episodes"),
    ("--data.guard_seed", "12345", "data.guard_seed"),  # the evaluations' own seed
    ("--data.task", "", "data.task"),
    ("--data.balance.max_tilt", "4", "balance.max_tilt"),
    ("--data.balance.physics_dt", "0.01", "balance.physics_dt"),
    ("--data.balance.motor_mode", "force", "balance.motor_mode"),
    ("--data.balance.substeps", "0", "balance.substeps"),
    ("--data.balance.max_steps", "0", "balance.max_steps"),
    ("--data.balance.push_jitter", "2", "balance.push_jitter"),
    ("--data.balance.friction_min", "-1", "balance.friction_min"),
    ("--data.balance.added_mass_min", "-5", "balance.added_mass_min"),
    ("--data.balance.push_interval_max", "0.5", "balance.push_interval_max"),
    ("--data.balance.obs_noise", "5", "balance.obs_noise"),
    ("--data.balance.curriculum_start", "0", "balance.curriculum_start"),
    ("--data.balance.push_magnitude", "1e9", "balance.push_magnitude"),
    ("--data.balance.push_magnitude", "nan", "balance.push_magnitude"),
    ("--data.balance.push_magnitude", "inf", "balance.push_magnitude\": must be a finite number, got 'inf'"),
    ("--data.balance.no_field", "1", "no_field"),
    ("--data.reach.dt", "0", "reach.dt"),
    ("--data.reach.gravity", "-1", "reach.gravity"),
    # Trainer flags: Lightning's own checks, and those it leaves to a crash mid-run
    ("--trainer.max_epochs", "-2", "max_epochs"),
    ("--trainer.max_epochs", "abc", "trainer.max_epochs"),
    ("--trainer.max_steps", "-5", "max_steps"),
    ("--trainer.min_epochs", "-3", "trainer.min_epochs"),
    ("--trainer.devices", "0", "devices"),
    ("--trainer.num_nodes", "0", "num_nodes"),
    ("--trainer.accelerator", "banana", "accelerator"),
    ("--trainer.accelerator", "tpu", "torch_xla"),
    ("--trainer.precision", "7", "trainer.precision"),
    ("--trainer.precision", "64-true", "trainer.precision"),
    ("--trainer.precision", "bf16-true", "trainer.precision"),
    ("--trainer.strategy", "ddp_spawn", "trainer.strategy"),
    ("--trainer.strategy", "nonsense", "strategy"),
    ("--trainer.max_time", "abc", "duration"),
    ("--trainer.check_val_every_n_epoch", "0", "trainer.check_val_every_n_epoch"),
    ("--trainer.val_check_interval", "0", "trainer.val_check_interval"),
    ("--trainer.log_every_n_steps", "-1", "trainer.log_every_n_steps"),
    ("--trainer.limit_train_batches", "-1", "limit_train_batches"),
    ("--trainer.limit_val_batches", "2.5", "limit_val_batches"),
    ("--trainer.fast_dev_run", "-1", "fast_dev_run"),
    ("--trainer.gradient_clip_val", "1", "gradient_clip_val"),  # refused by Lightning once fit has begun
    ("--trainer.accumulate_grad_batches", "2", "accumulate_grad_batches"),
    ("--trainer.callbacks", "foo", "trainer.callbacks"),
    ("--trainer.logger", "nonsense", "trainer.logger"),
    # the command line itself
    ("--nonexistent_flag", "1", "nonexistent_flag"),
    ("--config", "/nonexistent/quadlit.yaml", "/nonexistent/quadlit.yaml"),
    ("--seed_everything", "abc", "seed_everything"),
    ("--seed_everything", "-5", "seed_everything must be true, false or an integer from 0 to 4294967295"),
    ("--seed_everything", "4294967296", "seed_everything"),
    ("--ckpt_path", "/", "--ckpt_path"),
]


@pytest.mark.parametrize("option,value,needle", FIT_OPTIONS, ids=[f"{o}={v}" for o, v, _ in FIT_OPTIONS])
def test_bad_fit_option(tmp_path, capsys, option, value, needle):
    root = tmp_path / "out"
    code = main(["fit", "--config", str(REPO / "configs/reach.yaml"), *TINY, "--trainer.max_epochs", "1",
                 "--trainer.default_root_dir", str(root), option, value])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("quadlit: error:") and needle in err, err
    assert "Traceback" not in err
    assert not any(tmp_path.iterdir()), "nothing may be written on bad input"


COMMANDS = [
    (["nope"], "invalid choice: 'nope' (choose from fit, validate, test, bench, export-mjcf, export, play, record, "
               "sim2sim, tune"),
    (["predict", "--ckpt_path", "x.ckpt"], "a policy acts in play, record, export and sim2sim"),
    (["fit", "positional"], "positional"),
    (["export"], "--ckpt_path"),
    (["export", "--ckpt_path", "/nonexistent.ckpt"], "/nonexistent.ckpt"),
    (["export", "--ckpt_path", "/nonexistent.ckpt", "--format", "xyz"], "--format"),
    (["play", "--ckpt_path", "/nonexistent.ckpt"], "/nonexistent.ckpt"),
    (["play", "--task", "swim"], "--task"),
    (["record", "--ckpt_path", "/nonexistent.ckpt", "--out", "x.gif"], "/nonexistent.ckpt"),
    (["export-mjcf", "--out", "/proc/quadlit-no-such-dir/a1.xml"], "/proc/quadlit-no-such-dir/a1.xml"),
    # the tools' own argparse errors (usage and exit, until the CLI's edge turned them into one line)
    (["export-mjcf", "--actuators", "jet"], "--actuators"),
    (["bench", "nothing"], "invalid choice: 'nothing'"),
    (["tune", "--trials", "-1"], "--trials"),
    (["sim2sim", "--policy", "zero", "--threads", "100000"], "--threads must be from 1 to"),
    (["bench", "physics", "--envs", "-5"], "argument --envs: must be an integer >= 1, got -5"),
    (["bench", "fingerprint", "--epochs", "0"], "argument --epochs: must be an integer >= 1"),
    (["bench", "fingerprint", "--compare", "missing.json"], "--compare missing.json: no such file"),
    # a benchmark's --config that is not a file: one line before any run starts
    (["bench", "train", "--config", "missing.yaml"], "missing.yaml"),
    (["bench", "versus-sb3", "--config", "missing.yaml"], "missing.yaml"),
    (["bench", "versus", "--baseline", "rsl_rl", "--config", "missing.yaml"], "missing.yaml"),
    (["bench", "versus", "--config", "configs/balance.yaml"], "--baseline"),
    (["bench", "versus", "--baseline", "rsl_rl", "--baseline-envs", "0"], "--baseline-envs"),
    (["bench", "soak", "--config", "missing.yaml"], "missing.yaml"),
    (["bench", "fingerprint", "--config", "missing.yaml"], "missing.yaml"),
    (["tune", "--trials", "1", "--config", "missing.yaml"], "missing.yaml"),
]


@pytest.mark.parametrize("argv,needle", COMMANDS, ids=[" ".join(a) for a, _ in COMMANDS])
def test_bad_command(tmp_path, capsys, monkeypatch, argv, needle):
    monkeypatch.chdir(tmp_path)
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith("quadlit: error:") and needle in err, err
    assert not any(Path(tmp_path).iterdir())



# (config file bytes, text the line must contain): files that YAML would misread or that are not text
CONFIG_FILES = [
    (b"data:\n  task: reach\n  num_envs: 64\nmodel:\n  lr: 0.001\ndata:\n  num_envs: 256\n",
     "data is given twice (lines 1 and 6)"),
    (b"data:\n  task: reach\n  num_envs: 8\n  num_envs: 16\n", "data.num_envs is given twice (lines 3 and 4)"),
    ("data:\n  task: reach  # r\xe9sum\xe9\n".encode("latin-1"), "not UTF-8 (byte 0xe9"),
    ("data:\n  task: reach\n".encode("utf-16"), "UTF-16"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff", "binary"),
]


@pytest.mark.parametrize("content,needle", CONFIG_FILES, ids=["section twice", "key twice", "latin-1", "utf-16",
                                                              "binary"])
def test_bad_config_file(tmp_path, capsys, content, needle):
    config = tmp_path / "config.yaml"
    config.write_bytes(content)
    root = tmp_path / "out"
    code = main(["fit", "--config", str(REPO / "configs/reach.yaml"), "--config", str(config), *TINY,
                 "--trainer.default_root_dir", str(root)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith("quadlit: error:") and str(config) in err and needle in err, err
    assert not root.exists()


def test_options_a_later_config_overrides_are_named(tmp_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text("model:\n  lr: 0.0003\n  gamma: 0.99\ndata:\n  num_envs: 8\n")
    args = ["fit", "--config", str(REPO / "configs/reach.yaml"), "--model.lr", "0.001", "--model.gamma", "0.99",
            "--data.num_envs=16", "--model.entropy_coef", "0.02", "--config", str(config), "--print_config"]
    with pytest.raises(SystemExit):
        main(args)
    out, err = capsys.readouterr()
    assert "lr: 0.0003" in out and "num_envs: 8" in out  # what the note says happened
    assert err.strip() == (f"quadlit: warning: --config {config}, given after them, overrides --model.lr 0.001 (the "
                           f"file has 0.0003), --data.num_envs 16 (the file has 8); options apply in order: give "
                           f"them after --config")


def test_networks_too_large_for_memory_are_refused_before_they_are_allocated(tmp_path, capsys):
    root = tmp_path / "out"
    code = main(["fit", "--config", str(REPO / "configs/reach.yaml"), *TINY, "--trainer.default_root_dir", str(root),
                 "--model.critic", "separate", "--model.critic_hidden", "[200000,200000]"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith("quadlit: error: model.critic_hidden: a network of 40,00") and "GiB" in err, err
    assert not tmp_path.joinpath("out").exists()


@pytest.mark.parametrize("argv,needle", [
    (["--compare", "notes.json"], "--compare notes.json: not a --json file of this benchmark"),
    (["--json", "notes.json"], "--json: notes.json already exists"),
])
def test_fingerprint_files_are_checked_before_the_run(tmp_path, capsys, monkeypatch, argv, needle):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.json").write_text('{"mine": true}\n')
    code = main(["bench", "fingerprint", "--task", "reach", *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("quadlit: error:") and needle in err, err
    assert [p.name for p in tmp_path.iterdir()] == ["notes.json"]
    assert (tmp_path / "notes.json").read_text() == '{"mine": true}\n'


# a command's output path that is an existing file of someone else's, or lies under one: refused
# before the command loads, trains or simulates anything (the checkpoints named need not exist)
OUTPUTS = [
    (["sim2sim", "--policy", "zero", "--log_dir", "afile"], "sim2sim: --log_dir: "),
    (["sim2sim", "--policy", "zero", "--plot", "afile"], "sim2sim: --plot: afile already exists"),
    (["bench", "falls", "--ckpt_path", "x.ckpt", "--out", "afile/falls.json"], "which is a file"),
    (["bench", "falls", "--ckpt_path", "x.ckpt", "--out", "afile"], "--out: afile already exists"),
    (["bench", "early", "--config", str(REPO / "configs/balance.yaml"), "--out", "afile"], "--out: afile already"),
    (["bench", "world-model", "--ckpt_path", "x.ckpt", "--out", "afile"], "--out: afile already exists"),
    (["bench", "train", "--config", str(REPO / "configs/balance.yaml"), "--json", "afile"], "--json: afile already"),
    (["bench", "train", "--config", str(REPO / "configs/balance.yaml"), "--out", "afile"], "--out: "),
    (["bench", "versus-sb3", "--config", str(REPO / "configs/balance.yaml"), "--json", "afile"], "--json: afile"),
    (["record", "--ckpt_path", "x.ckpt", "--out", "afile"], "--out: afile already exists"),
    (["record", "--ckpt_path", "x.ckpt", "--still", "afile"], "--still: afile already exists"),
]


@pytest.mark.parametrize("argv,needle", OUTPUTS, ids=[" ".join(a[:2] + a[-2:]) for a, _ in OUTPUTS])
def test_outputs_are_checked_before_the_work(tmp_path, capsys, monkeypatch, argv, needle):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("notes\n")
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("quadlit: error:") and needle in err, err
    assert [p.name for p in tmp_path.iterdir()] == ["afile"] and (tmp_path / "afile").read_text() == "notes\n"


def test_an_output_folder_that_cannot_be_written_is_refused_before_the_work(tmp_path, capsys, monkeypatch):
    import quadlit.outputs as outputs

    real_access = os.access  # root ignores permission bits: the check is shown a read-only folder instead
    monkeypatch.setattr(outputs.os, "access", lambda path, mode: False if Path(path) == tmp_path / "ro"
                        else real_access(path, mode))
    (tmp_path / "ro").mkdir()
    code = main(["bench", "falls", "--ckpt_path", str(tmp_path / "x.ckpt"), "--out", str(tmp_path / "ro/falls.json")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == f"quadlit: error: quadlit bench falls: --out: cannot write to {tmp_path / 'ro'} " \
                                "(read-only or no permission)", err


def test_parameters_of_the_task_not_trained_are_named_when_the_run_starts(tmp_path, capsys):
    args = ["fit", "--config", str(REPO / "configs/reach.yaml"), *TINY, "--trainer.max_epochs", "1",
            "--trainer.check_val_every_n_epoch", "100", "--data.iterations_per_epoch", "1",
            "--trainer.default_root_dir", str(tmp_path / "out"), "--data.balance.max_tilt", "1.0",
            "--data.balance.obs_noise", "0.1", "--data.reach.goal_bonus", "7.5"]
    assert main([*args, "--trainer.accelerator", "banana"]) == 2  # bad input: still the one line of the error
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert main(args) == 0
    said = "quadlit: warning: data.task is 'reach', so data.balance.max_tilt, data.balance.obs_noise are not used"
    assert said in capsys.readouterr().err.splitlines()
