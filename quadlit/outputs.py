"""Output paths of the commands: checked before any work starts, written atomically.

A command that writes a file checks it with ``check_output_file`` (or its folder with
``check_output_folder``) before it loads, trains or simulates anything, so a path it cannot or
must not write is one line up front, not an error after minutes of work or a file destroyed;
then it writes through ``atomic_write``, so a failure part-way leaves the previous file intact.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from quadlit.errors import ConfigError


def _check_place(path: Path, option: str, is_folder: bool) -> None:
    """A ConfigError naming ``option`` unless the folder ``path`` (``is_folder``), or the folder
    of file ``path``, exists and is writable or can be created (the nearest existing folder above
    it is writable)."""
    existing = path if is_folder else path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        where = "is a file" if existing == path else f"lies under {existing}, which is a file"
        raise ConfigError(f"{option}: {path} {where}; give a {'folder' if is_folder else 'file name in a folder'}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{option}: cannot write to {existing} (read-only or no permission)")


def check_output_folder(folder: str | Path, option: str) -> Path:
    """``folder`` (absolute) when it is a folder this process can write into, or can create; a
    ConfigError naming ``option`` otherwise."""
    folder = Path(folder).absolute()
    _check_place(folder, option, is_folder=True)
    return folder


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def check_output_file(path: str | Path, option: str, inputs: Iterable[str | Path] = (),
                      rewritable: Callable[[Path], bool] = lambda path: False) -> Path:
    """``path`` when a command may write it: not a folder, none of the command's ``inputs``, and
    either new or a file this command wrote before (``rewritable(path)``, e.g. the previous
    export of the same policy), in a folder that can be written (``check_output_folder``).
    Anything else, a checkpoint or a config above all, is refused with a ConfigError naming
    ``option``."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{option}: {path} is a folder; give a file name")
    for source in inputs:
        if _same_file(path, Path(source)):
            raise ConfigError(f"{option}: {path} is this command's input; give another file name")
    if path.exists() and not rewritable(path):
        raise ConfigError(f"{option}: {path} already exists and was not written by this command; "
                          f"give a new file name (or remove the file first)")
    _check_place(path.absolute(), option, is_folder=False)
    return path


@contextmanager
def atomic_write(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed over ``path`` when the block ends
    without an error (``os.replace`` is atomic), removed when it raises. The folder is created.
    The temporary name keeps the suffix (writers that pick the format from it, such as
    Matplotlib's and Pillow's, still do)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (``atomic_write``)."""
    with atomic_write(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def json_result(*keys: str) -> Callable[[Path], bool]:
    """The ``rewritable`` test of a command whose result is a JSON object with these top-level
    ``keys``: such a file, an earlier result, may be replaced; anything else (a checkpoint, a
    config, notes, another command's JSON) may not."""
    def is_result(path: Path) -> bool:
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            return False
        return isinstance(content, dict) and all(k in content for k in keys)

    return is_result


#: The first bytes of the image files the commands write (plots, episode GIFs, stills).
IMAGE_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a")


def holds_image(path: Path) -> bool:
    """Whether ``path`` is a PNG or GIF image: a plot or recording a new run may replace."""
    try:
        with open(path, "rb") as f:
            return f.read(8).startswith(IMAGE_SIGNATURES)
    except OSError:
        return False
