"""Assertions every hostile-input case shares: exit code, one-line message, nothing changed."""

from __future__ import annotations

import hashlib
import re
import resource
import time
from contextlib import contextmanager
from pathlib import Path

# Tiny purifications: these tests check input handling; detection (unlearning, the probes)
# and full-length runs are tested in tests/defenses.
NO_PROBES = ["--set", "patch_probe=false", "--set", "probe_eps="]
TINY = ["--set", "relearn_epochs=1", "--set", "unlearn_epochs=1", *NO_PROBES]

# Hashing the sparse 2 GiB model would take seconds; past this size, size + mtime stand in.
_HASH_LIMIT = 16 * 1024**2
# The process may grow this much while one case runs (its peak RSS only ever rises).
MAX_RSS_GROWTH_MB = 256
# A guard against hangs, not a speed target (those live in benchmarks/): a refusal takes
# ~1 s alone, but 18 s was seen on the 2-core CI machine with both cores busy.
MAX_SECONDS = 120.0


def snapshot(folder: Path) -> dict[str, object]:
    """Every entry under ``folder``: file bytes (hash), symlink targets, folders."""
    state: dict[str, object] = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        if path.is_symlink():
            state[key] = ("link", str(path.readlink()))
        elif path.is_dir():
            state[key] = "dir"
        else:
            info = path.stat()
            if info.st_size > _HASH_LIMIT:
                state[key] = ("big", info.st_size, info.st_mtime_ns)
            else:
                state[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


@contextmanager
def bounded():
    """The body runs in bounded time and grows the peak memory by a bounded amount."""
    rss, start = _peak_rss_mb(), time.perf_counter()
    yield
    seconds = time.perf_counter() - start
    assert seconds < MAX_SECONDS, f"took {seconds:.1f}s"
    growth = _peak_rss_mb() - rss
    assert growth < MAX_RSS_GROWTH_MB, f"peak memory grew {growth:.0f} MB"


def assert_one_line_error(result, code: int, pattern: str) -> str:
    """Exit ``code``, exactly one ``error:`` line on stderr matching ``pattern``, no trace."""
    assert result.exit_code == code, (
        f"exit {result.exit_code} != {code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert re.search(pattern, errors[0]), f"{pattern!r} not in {errors[0]!r}"
    assert result.stdout.strip() == "" or code == 0, result.stdout
    return errors[0]


def run_refused(run_cli, args, folder: Path, code: int, pattern: str) -> str:
    """Run a command that must fail; check the message and that ``folder`` is unchanged."""
    before = snapshot(folder)
    with bounded():
        result = run_cli(args, expect_exit=None)
    message = assert_one_line_error(result, code, pattern)
    assert snapshot(folder) == before, "the command changed, left or removed files"
    return message
