"""Owner-only directories, whatever the umask (the state store, reject files)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["make_private_directories"]


def make_private_directories(directory: Path) -> None:
    """Create `directory` and its missing parents, each 0700 whatever the umask. Directories
    that already exist are left as they are: they may be the user's own (`--reject-dir /tmp`)."""
    missing: list[Path] = []
    current = directory
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for path in reversed(missing):
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:  # made meanwhile by another writer or process
            continue
        path.chmod(0o700)  # mkdir's mode is cut by the umask; never widened by it
