"""A MAD-X process (through cpymad) whose messages are read back and turned into errors.

MAD-X reports most problems as text (``+=+=+= fatal: ...`` then it exits; ``++++++ warning:
...`` and it goes on, skipping the statement). The importer must fail with a message that
names the file and says what MAD-X said, and must never hang: the process writes into a
temporary file that is read after each command, and a watchdog kills it after ``timeout``.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
import warnings
from pathlib import Path

from .base import LatticeError, PhysicsWarning

# Warnings that mean a statement was not understood (MAD-X skips it and goes on): for an
# importer that must describe the file faithfully these are errors.
_PARSE_WARNINGS = re.compile(r"skipped|unknown|illegal|invalid|parse error|not found", re.I)
_MESSAGE = re.compile(r"^\s*(\+=\+=\+= fatal|\+\+\+\+\+\+ (?:warning|error|info))\s*:?\s*(.*)$",
                      re.I)


class MadxSession:
    """A cpymad MAD-X process with captured output and a watchdog.

    Args:
        timeout: seconds after which the process is killed (each session, not each command).
    """

    def __init__(self, timeout: float = 120.0):
        try:
            from cpymad.madx import Madx
        except ImportError as err:  # pragma: no cover - cpymad is a dependency
            raise LatticeError(f"MAD-X import needs cpymad, which is not importable: {err}") from None
        self._log = tempfile.TemporaryFile(mode="w+b")
        self._read_upto = 0
        self.timed_out = False
        self.madx = Madx(stdout=self._log, stderr=self._log)
        proc = getattr(self.madx, "_process", None)
        self._timer = None
        if proc is not None:
            self._timer = threading.Timer(timeout, self._kill, args=(proc,))
            self._timer.daemon = True
            self._timer.start()
        self.timeout = timeout

    def _kill(self, proc) -> None:
        self.timed_out = True
        proc.kill()

    def new_output(self) -> str:
        """MAD-X output written since the last call."""
        self._log.flush()
        self._log.seek(self._read_upto)
        data = self._log.read()
        self._read_upto += len(data)
        self._log.seek(0, os.SEEK_END)
        return data.decode(errors="replace")

    def run(self, what: str, action) -> None:
        """Run ``action()`` (a cpymad call); raise LatticeError naming ``what`` on MAD-X errors."""
        try:
            action()
            crashed = None
        except Exception as err:  # cpymad raises RuntimeError (or RPC errors) when MAD-X exits
            crashed = err
        out = self.new_output()
        if self.timed_out:
            raise LatticeError(f"{what}: MAD-X did not finish within {self.timeout:g} s (killed)")
        errors, notes = _messages(out)
        if crashed is not None or errors:
            said = "; ".join(errors) or f"MAD-X stopped ({crashed})"
            raise LatticeError(f"{what}: MAD-X could not read it: {said}")
        for note in notes:
            warnings.warn(f"{what}: MAD-X: {note}", PhysicsWarning, stacklevel=3)

    def call(self, path: str | os.PathLike) -> None:
        """MAD-X ``call, file=path``; a missing or unreadable file raises LatticeError."""
        p = Path(path)
        if not p.is_file():
            raise LatticeError(f"MAD-X file '{p}' does not exist or is not a file")
        self.run(f"MAD-X file '{p}'", lambda: self.madx.call(str(p)))

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        try:
            self.madx.quit()
        except Exception:  # the process may already be gone (fatal error, watchdog)
            pass
        self._log.close()

    def __enter__(self) -> "MadxSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _messages(out: str) -> tuple[list[str], list[str]]:
    """Split MAD-X output into errors (fatal, parse problems) and other warnings.

    Each message carries the input statement MAD-X echoed just before it, when there is one.
    """
    errors, notes, previous = [], [], ""
    for line in out.splitlines():
        m = _MESSAGE.match(line)
        if m is None:
            if line.strip() and not line.lstrip().startswith("+"):
                previous = line.strip()
            continue
        kind, text = m.group(1).lower(), m.group(2).strip()
        context = f" (at: {previous[:120]})" if previous else ""
        if "fatal" in kind or "error" in kind:
            errors.append(f"{text}{context}")
        elif "warning" in kind and _PARSE_WARNINGS.search(text):
            errors.append(f"{text}{context}")
        elif "warning" in kind:
            notes.append(text)
    return errors, notes
