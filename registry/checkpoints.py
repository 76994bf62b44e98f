"""Checkpoints on a cadence, not per write (as c2sp.org/tlog-witness expects of a log).

A request's events are appended and chained in its own transaction, as ever, and its
answer goes out at once with their places in the log; the signed checkpoint that covers
them follows within ``CHECKPOINT_INTERVAL_S`` (default 1 s), or as soon as
``CHECKPOINT_MAX_EVENTS`` have waited, whichever comes first. Each process that serves
requests runs one thread for it, started by its first request (so a process forked by
gunicorn starts its own). The thread sleeps until its process appends, waits out the
interval, then takes the chain lock only if the log is still ahead of the latest
checkpoint (another process may have covered it). It also looks every
``IDLE_CHECK_S`` for events nobody covered (a process killed in between), covers what
is left when its process exits, and hands each new checkpoint to a second thread that
submits it to the configured witnesses, so that a slow witness never delays a checkpoint.

An interval of 0 signs a checkpoint in every write's own transaction, as commands always
do (nothing of a command outlives it to sign later).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time

from flask import Flask, current_app

from registry.db import current_session, db, writing
from registry.services import audit, witnessing

log = logging.getLogger("registry.audit")

_EXT = "registry.checkpointer"
_START = threading.Lock()


class Checkpointer:
    IDLE_CHECK_S = 30.0

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.interval = float(app.config["CHECKPOINT_INTERVAL_S"])
        self.max_events = int(app.config["CHECKPOINT_MAX_EVENTS"])
        self._pid: int | None = None
        self._wake = threading.Condition()
        self._witness = threading.Event()
        self._waiting = 0  # events this process appended that no checkpoint covers yet
        self._since = 0.0  # when the first of them was appended (monotonic)
        self._closed = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def running(self) -> bool:
        return self._pid == os.getpid()

    def start(self) -> None:
        """Start this process's threads, once (after a fork, again)."""
        if self.running or self._closed.is_set() or self.interval <= 0:
            return
        with _START:
            if self._pid == os.getpid():  # another thread started them meanwhile
                return
            self._wake = threading.Condition()
            self._witness = threading.Event()
            self._waiting, self._pid = 0, os.getpid()
            self._threads = [
                threading.Thread(target=self._run, name="registry-checkpoints", daemon=True)
            ]
            if self.app.extensions.get("registry.witnesses"):
                self._threads.append(
                    threading.Thread(target=self._submit, name="registry-witness", daemon=True)
                )
            for thread in self._threads:
                thread.start()
            atexit.register(self._at_exit)

    def appended(self, count: int) -> None:
        """This process committed ``count`` events: cover them within the interval."""
        self.start()
        with self._wake:
            first = not self._waiting
            if first:
                self._since = time.monotonic()
            self._waiting += count
            if first or self._waiting >= self.max_events:
                self._wake.notify()  # the interval starts, or enough are waiting

    def close(self) -> None:
        """Stop this process's threads (waiting for a round under way) and cover what is
        waiting: for an app disposed of before its process ends."""
        started = self.running and not self._closed.is_set()
        self._closed.set()
        with self._wake:
            self._wake.notify()
        self._witness.set()
        for thread in self._threads:
            thread.join(timeout=30)
        if started:
            atexit.unregister(self._at_exit)
            self._at_exit()

    def _run(self) -> None:
        self._round()  # whatever an earlier process left uncovered
        while not self._closed.is_set():
            with self._wake:
                if not self._waiting:
                    self._wake.wait(self.IDLE_CHECK_S)
                if self._closed.is_set():
                    return
                due = self._since + self.interval
                while (
                    self._waiting
                    and self._waiting < self.max_events
                    and not self._closed.is_set()
                    and (left := due - time.monotonic()) > 0
                ):
                    self._wake.wait(left)
                if self._closed.is_set():
                    return  # close() covers what is waiting
                self._waiting = 0
            if not self._round():
                with self._wake:  # try again after an interval
                    self._waiting, self._since = self._waiting + 1, time.monotonic()

    def _round(self) -> bool:
        """Cover the log if it is ahead of its latest checkpoint; False if that failed."""
        try:
            size = self.flush()
        except Exception:
            log.exception("a checkpoint could not be issued; trying again shortly")
            return False
        if size is not None:
            self._witness.set()
        return True

    def flush(self) -> int | None:
        """Sign a checkpoint of the whole log now, unless one covers it already: the size
        signed, or None. The lock is taken only when the log is ahead."""
        with self.app.app_context():
            try:
                if not audit.behind(current_session()):
                    return None
                db.session.rollback()  # the read ends; the next transaction writes
                with writing():
                    size = audit.cover(current_session())
                    db.session.commit()
                return size
            finally:
                db.session.remove()

    def _at_exit(self) -> None:
        try:
            self.flush()
        except Exception:
            log.exception("the last events could not be checkpointed before the process ended")

    def _submit(self) -> None:
        post = witnessing.http_post(self.app.config["WITNESS_TIMEOUT_S"])
        while not self._closed.is_set():
            self._witness.wait()
            self._witness.clear()
            if self._closed.is_set():
                return
            try:
                with self.app.app_context():
                    try:
                        cosigners = self.app.extensions["registry.witnesses"]
                        witnessing.submit(current_session(), cosigners, post)
                    finally:
                        db.session.remove()
            except Exception:
                log.exception("the checkpoint could not be submitted to the witnesses")


def init_checkpoints(app: Flask) -> None:
    app.extensions[_EXT] = Checkpointer(app)


def start() -> None:
    """Called by every request: start this process's threads if they are not running."""
    checkpointer: Checkpointer = current_app.extensions[_EXT]
    if not checkpointer.running:
        checkpointer.start()


def _appended(count: int) -> None:
    checkpointer: Checkpointer = current_app.extensions[_EXT]
    checkpointer.appended(count)


audit.ON_APPENDED.append(_appended)
