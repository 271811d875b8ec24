"""Private files: the data directory, the signing key, the demo credentials, the SQLite files.

They hold secrets (the key that signs every token, a client secret, every stored email), so
they are readable by the service's user only, 0600 for files and 0700 for directories, whatever
the umask: files are created with an explicit mode (a umask can only take bits away) and
anything found more open is tightened. Files created once and then shared by several processes
(the signing key) are written to a temporary name and linked into place, so two processes
starting at once agree on one content and nobody ever reads a half-written file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import tempfile
from pathlib import Path

__all__ = ["create_once", "private_dir", "private_file", "tighten", "write_private"]

FILE_MODE = 0o600
DIR_MODE = 0o700
log = logging.getLogger("mailpulse")


def tighten(path: Path) -> None:
    """Take group and other bits away from ``path`` if it exists and has any (ours only)."""
    try:
        current = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if current & 0o077:
        try:
            path.chmod(current & ~0o077)
        except PermissionError:
            log.warning("cannot make %s private (mode %o): not its owner", path, current)


def private_dir(path: Path) -> Path:
    """``path`` as a directory only its owner can enter (created 0700, or tightened)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=DIR_MODE)
    except FileExistsError:
        tighten(path)
    return path


def private_file(path: Path) -> Path:
    """Make sure ``path`` exists as a 0600 file (an empty one if it did not), or tighten it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    os.close(fd)
    tighten(path)
    return path


def _temporary(path: Path, content: str) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mode 0600
    with os.fdopen(fd, "w") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    return Path(name)


def create_once(path: Path, content: str) -> str:
    """The content of ``path``: ``content`` if this call created it, else what another process
    wrote first. The file appears whole or not at all (link of a finished temporary file)."""
    if path.exists():
        tighten(path)
        return path.read_text()
    private_dir(path.parent)
    temporary = _temporary(path, content)
    try:
        os.link(temporary, path)
    except FileExistsError:
        return path.read_text()
    finally:
        temporary.unlink()
    return content


def write_private(path: Path, content: str) -> None:
    """Replace ``path`` with ``content`` atomically, as a 0600 file in a private directory."""
    private_dir(path.parent)
    temporary = _temporary(path, content)
    try:
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
