"""One writer per run directory: an OS file lock held by the process that trains or evaluates into it.

Two ``quadlit fit --ckpt_path last`` started together would otherwise both continue the same run
directory, mixing their checkpoints and event files. The lock is ``flock`` on a file in the run
directory: the kernel releases it when the process ends in any way (a crash, SIGKILL), so a lock
file left by a killed process is simply taken over. The file holds the writer's process id, for
the message that refuses a second writer.
"""

from __future__ import annotations

import os
from pathlib import Path

from quadlit.errors import ConfigError

try:
    import fcntl
except ImportError:  # Windows: no flock; runs are not locked there
    fcntl = None

#: The lock file in a run directory.
LOCK_NAME = ".quadlit.lock"


class RunDirectoryLock:
    """An exclusive lock on run directory ``directory`` (created if missing), taken by
    ``acquire`` and given back by ``release`` (or by the process ending).

    ``acquire`` raises a one-line ConfigError naming the process that holds it.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        if fcntl is None or self._fd is not None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise ConfigError(f"{self.directory} is being written by another quadlit process (pid {holder}); "
                                  f"wait for it to end, or use another trainer.default_root_dir") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:  # not a file its previous holder removed while this process waited to open it
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        os.close(self._fd)  # closing the last descriptor releases the flock
        self._fd = None

    def __enter__(self) -> RunDirectoryLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
