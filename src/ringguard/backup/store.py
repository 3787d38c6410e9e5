"""Object storage under a repository: a local directory, or any fsspec URL.

Names are relative paths built by the repository from validated ids only (hex digests);
:func:`check_name` refuses anything else, so no name can leave the repository root.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import time
import uuid
from typing import Any

__all__ = ["LocalStore", "ObjectStore", "FsspecStore", "check_name", "open_store"]

_NAME = re.compile(
    r"^(config|locks/prune|locks/backup-[0-9a-f]{32}|chunks/[0-9a-f]{2}/[0-9a-f]{64}|snapshots/[0-9a-f]{32}\.json)$"
)


def check_name(name: str) -> str:
    """``name`` if it is one of the repository's object names, else ``ValueError``."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"object name {name!r} is not a repository path")
    return name


class ObjectStore:
    """The operations the repository needs from a storage location."""

    url: str

    def get(self, name: str) -> bytes:
        raise NotImplementedError

    def put(self, name: str, data: bytes, *, sync: bool = True) -> None:
        """Write a complete object atomically (readers see all of it or nothing).

        With ``sync=False`` the object may not be durable until :meth:`flush`.
        """
        raise NotImplementedError

    def flush(self, names: list[str]) -> None:
        """Make objects written with ``sync=False`` durable."""

    def exists(self, name: str) -> bool:
        raise NotImplementedError

    def size(self, name: str) -> int:
        raise NotImplementedError

    def mtime(self, name: str) -> float:
        raise NotImplementedError

    def delete(self, name: str) -> None:
        raise NotImplementedError

    def list(self, prefix: str) -> list[str]:
        """Names under ``prefix`` ("chunks" or "snapshots"), recursively; temp files excluded."""
        raise NotImplementedError

    def create_exclusive(self, name: str, data: bytes) -> bool:
        """Create ``name`` holding ``data`` only if it does not exist; False if it does."""
        raise NotImplementedError


_SYNCFS: Any = None
#: :meth:`LocalStore.flush` fsyncs up to this many objects (and their directories) one by
#: one; more with one ``syncfs`` where the platform has it.
FSYNC_MAX_OBJECTS = 8


def _syncfs(path: str) -> bool:
    """``syncfs`` the filesystem holding ``path``; False where it is unavailable."""
    global _SYNCFS
    if _SYNCFS is None:
        _SYNCFS = False
        if sys.platform.startswith("linux"):
            try:
                import ctypes

                fn = ctypes.CDLL(None, use_errno=True).syncfs
                fn.argtypes = [ctypes.c_int]
                _SYNCFS = fn
            except (OSError, AttributeError):
                pass
    if _SYNCFS is False:
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        if _SYNCFS(fd) != 0:
            import ctypes

            err = ctypes.get_errno()
            raise OSError(err, f"syncfs failed: {os.strerror(err)}", path)
    finally:
        os.close(fd)
    return True


def _fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalStore(ObjectStore):
    """A directory: temp file + fsync + rename per object, ``flock`` for the lock."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self.url = self.root
        os.makedirs(self.root, exist_ok=True)

    def _path(self, name: str) -> str:
        return os.path.join(self.root, *check_name(name).split("/"))

    def get(self, name: str) -> bytes:
        with open(self._path(name), "rb") as f:
            return f.read()

    def put(self, name: str, data: bytes, *, sync: bool = True) -> None:
        path = self._path(name)
        d = os.path.dirname(path)
        os.makedirs(d, exist_ok=True)
        tmp = os.path.join(d, f".tmp-{uuid.uuid4().hex}")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                if sync:
                    f.flush()
                    os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        if sync:
            _fsync_path(d)

    def flush(self, names: list[str]) -> None:
        if not names:
            return
        # Linux: one syncfs(2) makes every file and rename on this filesystem durable, at
        # the cost of a single journal commit instead of an fsync per chunk. It also waits
        # for every other writer's dirty data on the filesystem, so a few objects (an
        # incremental backup's) are made durable one by one instead.
        if len(names) > FSYNC_MAX_OBJECTS and _syncfs(self.root):
            return
        dirs = set()
        for name in names:
            path = self._path(name)
            _fsync_path(path)
            dirs.add(os.path.dirname(path))
        dirs |= {os.path.dirname(d) for d in dirs}
        for d in sorted(dirs):
            _fsync_path(d)

    def exists(self, name: str) -> bool:
        return os.path.exists(self._path(name))

    def size(self, name: str) -> int:
        return os.path.getsize(self._path(name))

    def mtime(self, name: str) -> float:
        return os.path.getmtime(self._path(name))

    def delete(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(name))

    def list(self, prefix: str) -> list[str]:
        base = os.path.join(self.root, prefix)
        out = []
        for dirpath, _dirs, files in os.walk(base):
            rel = os.path.relpath(dirpath, self.root).replace(os.sep, "/")
            for f in files:
                if not f.startswith(".tmp-"):
                    out.append(f"{rel}/{f}")
        return sorted(out)

    def create_exclusive(self, name: str, data: bytes) -> bool:
        path = self._path(name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        return True


class FsspecStore(ObjectStore):
    """Any fsspec filesystem; each object is written with one complete ``pipe``.

    The lock objects are created with mode ``"xb"`` (see :mod:`ringguard.backup.lock` for
    which filesystems make that atomic).
    """

    def __init__(self, url: str) -> None:
        try:
            import fsspec
        except ImportError as exc:
            raise ImportError(
                f"{url}: repositories on URLs need fsspec: pip install 'ringguard[backup]'"
            ) from exc
        self.fs, root = fsspec.core.url_to_fs(url)
        self.root = root.rstrip("/")
        self.url = url
        self.fs.makedirs(self.root, exist_ok=True)

    def _path(self, name: str) -> str:
        return f"{self.root}/{check_name(name)}"

    def get(self, name: str) -> bytes:
        return bytes(self.fs.cat_file(self._path(name)))

    def put(self, name: str, data: bytes, *, sync: bool = True) -> None:
        path = self._path(name)
        self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        self.fs.pipe_file(path, data)

    def exists(self, name: str) -> bool:
        return bool(self.fs.exists(self._path(name)))

    def size(self, name: str) -> int:
        return int(self.fs.size(self._path(name)))

    def mtime(self, name: str) -> float:
        try:
            m: Any = self.fs.modified(self._path(name))
            return float(m.timestamp())
        except (NotImplementedError, AttributeError, OSError):
            return time.time()

    def delete(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self._path(name))

    def create_exclusive(self, name: str, data: bytes) -> bool:
        path = self._path(name)
        self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        try:
            with self.fs.open(path, "xb") as f:
                f.write(data)
        except FileExistsError:
            return False
        return True

    def list(self, prefix: str) -> list[str]:
        base = f"{self.root}/{prefix}"
        if not self.fs.exists(base):
            return []
        n = len(self.root) + 1
        return sorted(str(p)[n:] for p in self.fs.find(base) if "/.tmp-" not in str(p))


def open_store(url: str | os.PathLike[str]) -> ObjectStore:
    """A :class:`LocalStore` for a path or ``file://`` URL, else an :class:`FsspecStore`."""
    u = os.fspath(url)
    if u.startswith("file://"):
        return LocalStore(u[len("file://") :])
    if "://" in u:
        return FsspecStore(u)
    return LocalStore(u)
