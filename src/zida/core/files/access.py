"""Who may read a file, and the signed temporary URLs that let anyone holding one read it until it expires.

A file is readable:

* by its uploader (the app credential that uploaded it) — always, and until it is attached the uploader only;
* once a record or an approval references it (``attached``): by the app credentials of its corp that may read files
  or records (an integration reads any record of its corp), and by a user who may read a record referencing it
  (``zida.core.access.policy``: app admins, the originator, the approval's participants); a signed-in user's own
  token (a WeDa session) reads his uploads and the files of the records he may read, never the corp's at large;
* by whoever holds a valid temporary URL: ``?expires=<epoch ms>&sig=<HMAC-SHA256 of the file id and expiry, keyed
  by the server key>`` — bound to the file, unguessable, refused once expired or altered;
* never by another corp (its files do not exist for it: ``NotFound``).
"""

from __future__ import annotations

import hashlib
import hmac

from zida.core.access import policy
from zida.core.access.members import app_actor
from zida.core.errors import NotFound, PermissionDenied, Unauthenticated
from zida.core.files import repository
from zida.core.files.models import StoredFile
from zida.core.principals import AppActor, Principal, Scope
from zida.db import Connection, Row

__all__ = [
    "MAX_TEMPORARY_MS",
    "check_actor_may_read",
    "check_principal_may_read",
    "check_user_may_read",
    "file_not_found",
    "sign",
    "uploader_of",
    "verify_signature",
]

MAX_TEMPORARY_MS = 24 * 3600 * 1000


def uploader_of(principal: Principal) -> str:
    """How a file row names the principal that uploaded it: a signed-in user by his user id (two users of one
    console or WeDa environment are two uploaders), an app credential by its client id."""
    if principal.kind == "session" and principal.user_id is not None:
        return f"user:{principal.user_id}"
    return f"credential:{principal.client_id}"


def file_not_found(file_id: str) -> NotFound:
    """The error for a file that does not exist for the caller."""
    return NotFound(f"file {file_id[:64]} does not exist or was deleted", reason="file.not_found")


def _digest(secret: str, file_id: str, expires: int) -> str:
    key = hashlib.sha256(("zida-file-url\x00" + secret).encode()).digest()
    return hmac.new(key, f"{file_id}\x00{expires}".encode(), hashlib.sha256).hexdigest()


def sign(secret: str, file_id: str, expires: int) -> str:
    """The signature of a temporary URL to ``file_id`` valid until ``expires`` (epoch ms)."""
    return _digest(secret, file_id, expires)


def verify_signature(secret: str, file_id: str, expires: str, signature: str, now: int) -> None:
    """Raise unless the signature is the server's for this file and expiry, and the expiry has not passed."""
    if (
        not expires.isascii()
        or not expires.isdigit()
        or len(expires) > 15
        or not hmac.compare_digest(_digest(secret, file_id, int(expires)).encode(), signature.encode())
    ):
        raise Unauthenticated("the temporary URL's signature is not valid", reason="file.bad_signature")
    if int(expires) <= now:
        raise Unauthenticated("the temporary URL has expired", reason="file.url_expired")


def check_principal_may_read(principal: Principal, file: StoredFile | None, file_id: str) -> StoredFile:
    """The file, if an app credential's token may read it (module docstring)."""
    if file is None or file.corp_pk != principal.corp_pk or file.state != "stored":
        raise file_not_found(file_id)
    if file.uploader == uploader_of(principal):
        return file
    if file.attached_at is None:
        raise PermissionDenied(
            f"file {file_id} is not attached to any record yet: only its uploader may read it",
            reason="file.not_attached",
        )
    if not (principal.allows(Scope.FILES_READ) or principal.allows(Scope.RECORDS_READ)):
        raise PermissionDenied(
            f"the app credential {principal.client_id} may read neither files nor records", reason="auth.scope_missing"
        )
    return file


async def _reads_record(conn: Connection, actor: AppActor, row: Row) -> bool:
    """Whether ``actor`` may read the record of ``row`` (one of ``repository.records_referencing``'s)."""
    return await policy.can_read(
        conn,
        actor,
        app_pk=int(row["app_pk"]),
        record_id=row["instance_id"],
        originator=row["originator_user_id"],
        is_process=row["process_instance_id"] is not None,
    )


async def check_user_may_read(
    conn: Connection, principal: Principal, file: StoredFile | None, file_id: str
) -> StoredFile:
    """The file, if the signed-in user behind ``principal`` (a session) may read it: his own upload, or a file a
    record he may read references, in any app of the corp (module docstring)."""
    if file is None or file.corp_pk != principal.corp_pk or file.state != "stored":
        raise file_not_found(file_id)
    if file.uploader == uploader_of(principal):
        return file
    user_id = principal.user_id or ""
    for row in await repository.records_referencing(conn, principal.corp_pk, file.file_id, app_pk=None, limit=20):
        try:
            actor = await app_actor(conn, principal.corp_pk, int(row["app_pk"]), user_id)
        except NotFound:
            continue
        if await _reads_record(conn, actor, row):
            return file
    raise PermissionDenied(
        f"user {user_id} may not read file {file_id}: it is not his upload, and no record that references it is"
        " his to read",
        reason="file.not_readable",
    )


async def check_actor_may_read(
    conn: Connection, actor: AppActor, principal: Principal, file: StoredFile | None, file_id: str
) -> StoredFile:
    """The file, if a user acting in an app (through ``principal``'s credential) may read it (module docstring)."""
    if file is None or file.corp_pk != actor.corp_pk or file.state != "stored":
        raise file_not_found(file_id)
    if file.uploader == uploader_of(principal) and file.attached_at is None:
        return file
    for row in await repository.records_referencing(conn, actor.corp_pk, file.file_id, app_pk=actor.app_pk, limit=20):
        if await _reads_record(conn, actor, row):
            return file
    raise PermissionDenied(
        f"user {actor.user_id} may not read file {file_id}: no record of the app that references it is theirs to read",
        reason="file.not_readable",
    )
