"""The environment variables quadlit and Numba read, checked where the ``quadlit`` command starts.

They are checked before Numba is imported: Numba prints a traceback for a ``NUMBA_NUM_THREADS``
that is not a number and then goes on with its default (and fails on import for 0).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from quadlit.errors import ConfigError

#: The spellings of an on/off environment variable.
SWITCH_VALUES = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


def switch(name: str, default: bool = True, environ: Mapping[str, str] | None = None) -> bool:
    """The on/off environment variable ``name`` (1/0, true/false, yes/no, on/off, any case;
    unset or empty: ``default``); ConfigError for any other value."""
    value = (os.environ if environ is None else environ).get(name, "").strip().lower()
    if not value:
        return default
    if value not in SWITCH_VALUES:
        raise ConfigError(f"{name}={value!r}: must be 1 or 0 (or true/false, yes/no, on/off)")
    return SWITCH_VALUES[value]


def check_environment(environ: Mapping[str, str] | None = None) -> list[str]:
    """Warnings (one line each) about variables that work but cost something; a ConfigError for
    a value that cannot be used."""
    from quadlit.outputs import check_output_folder

    environ = os.environ if environ is None else environ
    threads = environ.get("NUMBA_NUM_THREADS", "").strip()
    if threads and not (threads.isdigit() and int(threads) >= 1):
        raise ConfigError(f"NUMBA_NUM_THREADS={threads!r}: must be an integer >= 1 (or unset: one per core)")
    switch("QUADLIT_PARALLEL_COMPILE", environ=environ)
    warnings = []
    cache = environ.get("NUMBA_CACHE_DIR", "").strip()
    if cache:
        try:
            check_output_folder(cache, "NUMBA_CACHE_DIR")
        except ConfigError as exc:
            warnings.append(f"{exc} (as it is, Numba cannot keep its compiled kernels and every run compiles "
                            f"them again, about 15 s)")
    return warnings
