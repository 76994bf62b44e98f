"""The unit of work: one transaction per request, and every place a transaction ends.

A request is one transaction on one session. Services flush and never commit; views never
commit. The request's own transaction commits at one point, ``commit``, which the app
calls once the view has built its whole answer, for requests that write (``Registry.
dispatch_request``): the answer never needs the database once the transaction is over,
and a commit that fails (the audit append included) becomes an error answer, never a
false success. Whatever a request leaves uncommitted is rolled back by ``end``.

Only these end a transaction early, each for a reason written here:

- ``end_identity_read``: on SQLite, who is calling is read in a transaction of its own,
  so that a write request takes the database's write lock when it first writes and holds
  it no longer. (PostgreSQL locks rows, not the database: there the request stays one
  transaction on one connection, saving a commit, a pool check-out and a BEGIN.)
- ``settle_first``: work found on the way that must stand whatever the request then does,
  committed before the request's own work begins. Closing reviews past their closing
  time is the one use: a late vote is refused, and the close it found is kept.
- ``keep``: a failed login is on the record although the request fails.
- ``aside``: bookkeeping on a connection of its own (a token's last use), which never
  makes a reader a writer and never fails the request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session

from registry.db import begin_write, current_session, db, is_postgres, set_write_intent, writing

log = logging.getLogger("registry.db")
T = TypeVar("T")


def commit() -> None:
    """The request's commit point."""
    db.session.commit()


def end(_error: BaseException | None = None) -> None:
    """End the request: roll back whatever it did not commit, releasing its locks even
    where the app context outlives the request (tests, the CLI).

    If the connection died under the request (the database went away), the rollback fails
    too: the pool has already discarded the connection, so that is logged and the answer,
    a 503 problem as likely as not, still goes out.
    """
    try:
        db.session.remove()
    except SQLAlchemyError:
        log.warning("the request's transaction could not be rolled back", exc_info=True)
        db.session.registry.clear()
    finally:
        set_write_intent(False)


def end_identity_read() -> None:
    """On SQLite, end the transaction that read who is calling."""
    if db.session.registry.has() and not is_postgres():
        db.session.commit()


def settle_first(work: Callable[[Session, list[T]], object], items: list[T]) -> None:
    """Run ``work(session, items)`` in a write transaction of its own and commit it, before
    the request's own work begins; with no items, do nothing (a reader stays a reader)."""
    if not items:
        return
    begin_write()
    work(current_session(), items)
    db.session.commit()


def keep() -> None:
    """Commit what the request recorded before it fails (the caller raises next)."""
    db.session.commit()


def aside(statement: Any, what: str) -> bool:
    """Execute ``statement`` on a connection of its own, committed at once; on failure log
    ``what`` was not recorded and go on. Whether it was recorded."""
    try:
        with writing(), db.engine.begin() as conn:
            conn.execute(statement)
    except DBAPIError as exc:
        log.warning(f"{what} not recorded", extra={"reason": str(exc.orig)[:200]})
        return False
    return True
