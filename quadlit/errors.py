"""User-facing errors: bad input that the CLI reports in one line, without a traceback."""


class ConfigError(ValueError):
    """A configuration value, file or checkpoint that cannot be used; the message names it."""


class TrainingDiverged(RuntimeError):
    """The loss stayed non-finite for too many iterations; the message names the last good checkpoint."""


class RunInterrupted(Exception):
    """The user stopped a run (Ctrl-C); the message names the checkpoint to continue from."""
