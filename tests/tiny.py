"""The smallest useful training run, shared by the end-to-end tests of the command line."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# 8 reach environments, 2 iterations of 8 steps per epoch, 2 epochs, tiny networks (later
# arguments override earlier ones, e.g. "--trainer.max_epochs", "1")
TINY = [
    "--data.num_envs", "8", "--data.rollout_steps", "8", "--data.iterations_per_epoch", "2",
    "--data.eval_episodes", "4", "--data.reach.max_steps", "40", "--data.physics_threads", "1",
    "--model.lstm_hidden", "16", "--model.wm_batch_size", "32", "--model.num_minibatches", "2",
    "--trainer.max_epochs", "2", "--trainer.check_val_every_n_epoch", "1",
    "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
]
