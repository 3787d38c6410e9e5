"""The repository lock: one exclusive prune lock and shared backup markers, as objects.

It works wherever the repository does (a local directory, ``memory://``, object stores),
because it is made of ordinary objects under ``locks/``:

``locks/prune``
    The exclusive lock. Created with exclusive-create semantics (local: ``O_CREAT |
    O_EXCL``; fsspec: mode ``"xb"``), holding a JSON document with the owner's random
    token and a lease expiry. A lock whose lease ran out (a crashed prune) is broken by the
    next taker.
``locks/backup-<token>``
    One marker per running backup, with its own lease, refreshed while it works and
    deleted when it commits or fails.

The protocol (a reader-writer lock without a server):

* a backup writes its marker, *then* looks for a live prune lock; if there is one it
  withdraws its marker and waits, so it never runs under a prune;
* a prune creates its lock, *then* waits until no live backup marker is left, and only
  then forgets snapshots and sweeps chunks.

Each side writes before it reads what the other wrote, so on a store whose reads see
completed writes (local disks, ``memory://``, S3 and GCS today) at least one of them
sees the other: a backup and a sweep never overlap, and a backup never loses the chunks
it reuses or has uploaded to a prune.

Limits, stated plainly:

* Leases assume that no holder stops for longer than ``lease_s`` (default 10 minutes,
  refreshed every tenth of it). A backup whose marker expired checks that it still
  holds it before it commits, and fails (nothing committed) if not.
* Exclusive create is atomic on local paths (``O_EXCL``) and on filesystems whose
  ``"xb"`` mode is (s3fs and gcsfs use conditional writes). fsspec's ``memory://``
  implements ``"xb"`` as check-then-create; the lock reads its token back after creating
  it, which narrows the race between two prunes but does not close it there. Two prunes
  at once only ever lose work, never data: a prune deletes nothing a kept snapshot names.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

from .errors import BackupLocked
from .store import ObjectStore

__all__ = ["LEASE_S", "LockDoc", "RepositoryLock"]

LEASE_S = 600.0
PRUNE_LOCK = "locks/prune"
_MARKER = re.compile(r"^locks/backup-([0-9a-f]{32})$")
_MAX_LOCK_BYTES = 4096
_POLL_S = 0.02


def marker_name(token: str) -> str:
    return f"locks/backup-{token}"


class LockDoc:
    """A parsed lock object; anything malformed counts as held until ``mtime + lease``."""

    def __init__(self, owner: str | None, expires: float, kind: str) -> None:
        self.owner = owner
        self.expires = expires
        self.kind = kind

    def live(self, now: float) -> bool:
        return now < self.expires

    @staticmethod
    def encode(kind: str, owner: str, lease_s: float) -> bytes:
        now = time.time()
        doc = {"kind": kind, "owner": owner, "host": socket.gethostname()[:255],
               "pid": os.getpid(), "created": now, "expires": now + lease_s}
        return json.dumps(doc, sort_keys=True).encode()

    @classmethod
    def load(cls, data: bytes, mtime: float, lease_s: float) -> LockDoc:
        """Validate an untrusted lock document (types, size)."""
        try:
            if len(data) > _MAX_LOCK_BYTES:
                raise ValueError("too large")
            doc = json.loads(data)
            owner, expires, kind = doc["owner"], doc["expires"], doc["kind"]
            if not (isinstance(owner, str) and re.fullmatch(r"[0-9a-f]{32}", owner)
                    and type(expires) in (int, float) and 0 <= expires < 1e11
                    and kind in ("prune", "backup")):
                raise ValueError("bad fields")
            return cls(owner, float(expires), kind)
        except (ValueError, KeyError, TypeError, RecursionError):
            return cls(None, mtime + lease_s, "malformed")


class RepositoryLock:
    """Take the prune lock or a backup marker in every copy of a repository.

    Parameters
    ----------
    stores
        The copies; locks are taken in this order in each, released in reverse.
    timeout_s
        How long to wait for the other side before :class:`BackupLocked`.
    lease_s
        Lease of the lock objects this process writes.
    """

    def __init__(self, stores: list[ObjectStore], timeout_s: float,
                 lease_s: float = LEASE_S) -> None:
        self.stores = stores
        self.timeout_s = timeout_s
        self.lease_s = lease_s
        self.token = uuid.uuid4().hex
        self.kind: str | None = None
        self._held: list[ObjectStore] = []
        self._refreshed = 0.0

    # ---- reading -------------------------------------------------------------------

    def _read(self, s: ObjectStore, name: str) -> LockDoc | None:
        try:
            data = s.get(name)
            mtime = s.mtime(name)
        except FileNotFoundError:
            return None
        return LockDoc.load(data, mtime, self.lease_s)

    def live_backups(self, s: ObjectStore) -> list[str]:
        """Tokens of the live backup markers in ``s`` other than ours."""
        now = time.time()
        out = []
        for name in s.list("locks"):
            m = _MARKER.match(name)
            if m is None or m.group(1) == self.token:
                continue
            doc = self._read(s, name)
            if doc is not None and doc.live(now):
                out.append(m.group(1))
        return out

    def prune_holder(self, s: ObjectStore) -> LockDoc | None:
        """The live prune lock of ``s`` held by someone else, if any."""
        doc = self._read(s, PRUNE_LOCK)
        if doc is None or not doc.live(time.time()) or doc.owner == self.token:
            return None
        return doc

    # ---- taking ----------------------------------------------------------------------

    def _deadline_passed(self, deadline: float, what: str, s: ObjectStore) -> None:
        if time.monotonic() >= deadline:
            self.release()
            raise BackupLocked(f"{s.url}: {what} (waited {self.timeout_s} s)")

    def acquire_shared(self, on_wait: Callable[[], None] | None = None) -> None:
        """Register a backup marker in every copy, waiting while a prune holds the lock."""
        self.kind = "backup"
        deadline = time.monotonic() + self.timeout_s
        name = marker_name(self.token)
        while True:
            blocked: ObjectStore | None = None
            for s in self.stores:
                s.put(name, LockDoc.encode("backup", self.token, self.lease_s), sync=False)
                self._held.append(s)
                if self.prune_holder(s) is not None:
                    blocked = s
                    break
            if blocked is None:
                break
            # Withdraw from every copy (not only this one), so a prune holding the lock
            # there and waiting for markers elsewhere can go on.
            self.release()
            if on_wait is not None:
                on_wait()
            self._deadline_passed(deadline, "repository is locked by a prune", blocked)
            time.sleep(_POLL_S)
        self._refreshed = time.monotonic()

    def acquire_exclusive(self, on_wait: Callable[[], None] | None = None) -> None:
        """Create the prune lock in every copy, then wait until no backup is running."""
        self.kind = "prune"
        deadline = time.monotonic() + self.timeout_s
        doc = LockDoc.encode("prune", self.token, self.lease_s)
        for s in self.stores:
            while True:
                if s.create_exclusive(PRUNE_LOCK, doc):
                    mine = self._read(s, PRUNE_LOCK)
                    if mine is not None and mine.owner == self.token:
                        self._held.append(s)
                        break
                else:
                    cur = self._read(s, PRUNE_LOCK)
                    if cur is not None and not cur.live(time.time()):
                        s.delete(PRUNE_LOCK)  # a crashed prune's lease ran out
                        continue
                if on_wait is not None:
                    on_wait()
                self._deadline_passed(deadline, "repository is locked by another prune", s)
                time.sleep(_POLL_S)
        for s in self.stores:
            while self.live_backups(s):
                if on_wait is not None:
                    on_wait()
                self._deadline_passed(
                    deadline, f"a backup is running ({len(self.live_backups(s))} marker(s) "
                    "under locks/)", s)
                time.sleep(_POLL_S)
        self._refreshed = time.monotonic()

    # ---- holding ---------------------------------------------------------------------

    def refresh(self, force: bool = False) -> None:
        """Extend the lease (cheap to call often: writes at most every ``lease_s / 10``)."""
        if not self._held or (
            not force and time.monotonic() - self._refreshed < self.lease_s / 10
        ):
            return
        self.check()
        name = PRUNE_LOCK if self.kind == "prune" else marker_name(self.token)
        for s in self._held:
            s.put(name, LockDoc.encode(self.kind or "backup", self.token, self.lease_s),
                  sync=False)
        self._refreshed = time.monotonic()

    def check(self) -> None:
        """Raise :class:`BackupLocked` if the lock was lost (lease expired and broken)."""
        name = PRUNE_LOCK if self.kind == "prune" else marker_name(self.token)
        for s in self._held:
            doc = self._read(s, name)
            if doc is None or doc.owner != self.token or not doc.live(time.time()):
                raise BackupLocked(
                    f"{s.url}: this {self.kind} lost its lock {name} (its lease of "
                    f"{self.lease_s} s ran out, so another process may have gone on); "
                    "nothing was committed")

    def release(self) -> None:
        name = PRUNE_LOCK if self.kind == "prune" else marker_name(self.token)
        for s in reversed(self._held):
            doc = self._read(s, name)
            if doc is not None and doc.owner == self.token:
                s.delete(name)
        self._held = []

    def __enter__(self) -> RepositoryLock:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()
