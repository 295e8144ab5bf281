"""``zida`` — admin commands: migrate, load, dump, serve, example."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sqlite3
import sys
from pathlib import Path
from typing import Any

import asyncpg
import click
import yaml

from zida.bundle.dumper import dump_bundle
from zida.bundle.loader import PROGRESS_STEP, BundleError, load_bundle, parse_bundle, read_bundle
from zida.cache import invalidate_everywhere
from zida.core.access.tokens import check_server_key
from zida.core.apps.queries import reindex_forms
from zida.core.errors import Misconfigured, ZidaError
from zida.crypto import SecretBox
from zida.db import open_database
from zida.db.database import is_postgres
from zida.db.migrate import check_schema, upgrade
from zida.ids import is_decimal
from zida.settings import Settings, file_umask, load_settings, require_secret_key, sqlite_path
from zida.stores import StoreUnavailable, open_store

__all__ = ["main"]

database_option = click.option(
    "--database",
    "database",
    envvar="ZIDA_DATABASE_URL",
    default=None,
    help="sqlite:///path or postgresql://… (default: $ZIDA_DATABASE_URL, else sqlite:///var/zida.db)",
)


INTERRUPTED_EXIT_CODE = 130  # 128 + SIGINT, as a shell reports a command stopped by Ctrl-C

_URL = re.compile(r"[a-z][a-z0-9+.\-]*://[^\s`'\"]+", re.IGNORECASE)


def _without_passwords(message: str) -> str:
    """``message`` with every URL in it shown without its password (a database URL's, in a "run `zida migrate
    --database URL`" hint, was printed whole)."""
    from zida.backup import shown_url

    return _URL.sub(lambda m: shown_url(m.group(0)), message)


def _interrupted(signum: int, frame: Any) -> None:
    """Ctrl-C stops the command where it is (not at the event loop's next turn: a load or an import runs its
    statements without yielding, so asyncio's own handler let it run to its COMMIT, then wrote everything)."""
    raise KeyboardInterrupt


class _Commands(click.Group):
    """Zida's commands, whose foreseeable failures are one ``Error:`` line, never a traceback: a setting that cannot
    be used (an unsupported database URL, a bad number), a bundle that cannot be read, a database that cannot be
    reached or opened. A message never shows a database password. Ctrl-C ends a command with exit code 130."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return self._invoke(ctx)
        except click.ClickException as exc:
            shown = _without_passwords(exc.message)
            if shown == exc.message:
                raise
            raise click.ClickException(shown) from None
        except KeyboardInterrupt:
            # The transaction in progress was not committed (nothing of it is written); one whose COMMIT had
            # begun is written whole.
            click.echo("\nError: interrupted: a load, an import or a restore is written whole or not at all", err=True)
            ctx.exit(INTERRUPTED_EXIT_CODE)

    def _invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BundleError as exc:
            raise click.ClickException(exc.message) from None
        except (Misconfigured, ZidaError) as exc:
            raise click.ClickException(exc.message) from None
        except ValueError as exc:  # the settings' and the database URL's checks
            raise click.ClickException(str(exc)) from None
        except (OSError, sqlite3.Error, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            if isinstance(exc, sqlite3.OperationalError) and str(exc) == "interrupted":  # Ctrl-C inside a statement
                raise KeyboardInterrupt from None
            raise click.ClickException(f"cannot use the database: {exc}") from None


@click.group(cls=_Commands)
@click.pass_context
def main(ctx: click.Context) -> None:
    """Zida (自搭): a self-hosted low-code backend speaking the Yida and WeDa OpenAPIs."""
    if ctx.invoked_subcommand != "serve":  # uvicorn handles Ctrl-C itself: a graceful stop
        signal.signal(signal.SIGINT, _interrupted)
    # Every file a command creates (the database and its -wal/-shm files, var/, the key) is the owner's alone.
    try:
        os.umask(file_umask())
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@database_option
def migrate(database: str | None) -> None:
    """Create or upgrade the database schema, then build the search indexes the forms need (progress shown)."""
    settings = load_settings(database)
    upgrade(settings.database_url)
    built = asyncio.run(_reindex(settings))
    if built:
        click.echo(f"search indexes built: {len(built)}")
    click.echo(f"database is up to date: {settings.database_url}")


def _open(settings: Settings) -> Any:
    """The database for an admin command: no statement budget (building an index or loading a bundle may take
    long; nobody else waits on this process's event loop). A SQLite file that is not there is not made here."""
    url = settings.database_url
    if not is_postgres(url) and sqlite_path(url) != ":memory:" and not Path(sqlite_path(url)).exists():
        raise click.ClickException(f"there is no database at {sqlite_path(url)}: run `zida migrate --database {url}`")
    return open_database(
        settings.database_url,
        settings.db_pool_size,
        sqlite_synchronous=settings.sqlite_synchronous,
        sqlite_readers=settings.sqlite_readers,
    )


async def _reindex(settings: Settings) -> list[str]:
    db = await _open(settings)
    try:
        return await reindex_forms(db, lambda line: click.echo(line, err=True))
    finally:
        await db.close()


class ProgressBar:
    """A load's progress on standard error: one bar per section, redrawn in place on a terminal; elsewhere (a log,
    CI) a line per tenth. Sections of fewer than ``PROGRESS_STEP`` objects are not shown."""

    WIDTH = 30

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.shown: dict[str, int] = {}

    def __call__(self, section: str, done: int, total: int) -> None:
        if total < PROGRESS_STEP:
            return
        tenth = done * 10 // total
        if not self.tty and self.shown.get(section) == tenth:
            return
        self.shown[section] = tenth
        filled = done * self.WIDTH // total
        line = f"{section:<12} [{'#' * filled}{'.' * (self.WIDTH - filled)}] {done:,}/{total:,}"
        end = "\n" if done == total or not self.tty else ""
        click.echo(("\r" if self.tty else "") + line, err=True, nl=False)
        click.echo(end, err=True, nl=False)


async def _load(settings: Settings, path: str) -> str:
    bundle = parse_bundle(read_bundle(path), source=path)
    box = SecretBox(require_secret_key(settings))
    db = await _open(settings)
    try:
        await check_schema(db)
        report = await load_bundle(db, box, bundle, source=path, progress=ProgressBar())
    finally:
        await db.close()
    # Running servers drop what they cached (at once with a shared store; else within ZIDA_CACHE_SECONDS).
    store = open_store(settings)
    try:
        await invalidate_everywhere(store)
    except StoreUnavailable as exc:
        click.echo(f"warning: {exc}; running servers see the change within ZIDA_CACHE_SECONDS", err=True)
    finally:
        await store.close()
    return report.summary()


async def _preflight(settings: Settings, secret_key: str) -> None:
    """What ``serve`` checks before it binds the port: the schema is current and the key is the database's."""
    db = await _open(settings)
    try:
        await check_schema(db)
        await check_server_key(db, SecretBox(secret_key))
    finally:
        await db.close()


@main.command()
@database_option
@click.argument("bundle", type=click.Path(dir_okay=False))
def load(database: str | None, bundle: str) -> None:
    """Load a bundle (YAML or JSON) in one transaction; loading it again changes nothing."""
    settings = load_settings(database)
    try:
        summary = asyncio.run(_load(settings, bundle))
    except BundleError as exc:
        raise click.ClickException(exc.message) from None
    except Misconfigured as exc:
        raise click.ClickException(exc.message) from None
    except ZidaError as exc:
        raise click.ClickException(f"{bundle}: {exc.message}") from None
    except ValueError as exc:  # no server key for a shared database
        raise click.ClickException(str(exc)) from None
    click.echo(f"loaded {bundle}\n{summary}")


class _BundleDumper(yaml.SafeDumper):
    """YAML that reads back as written: a text holding NEL, LS or PS (which YAML folds as line breaks in plain or
    single-quoted style) is written double-quoted, where they are escaped (``\\N``, ``\\L``, ``\\P``)."""


def _represent_text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = '"' if any(c in text for c in "\x85\u2028\u2029") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_BundleDumper.add_representer(str, _represent_text)


async def _dump(settings: Settings, corp_id: str) -> dict[str, Any]:
    db = await _open(settings)
    try:
        await check_schema(db)
        return await dump_bundle(db, corp_id)
    finally:
        await db.close()


@main.command()
@database_option
@click.option("--corp", "corp_id", required=True, help="corpId of the organisation to dump")
@click.option("--format", "fmt", type=click.Choice(["yaml", "json"]), default="yaml")
def dump(database: str | None, corp_id: str, fmt: str) -> None:
    """Write a corp as a bundle on standard output (secrets are never written)."""
    settings = load_settings(database)
    try:
        data = asyncio.run(_dump(settings, corp_id))
    except ZidaError as exc:
        raise click.ClickException(exc.message) from None
    if fmt == "json":
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        click.echo(yaml.dump(data, Dumper=_BundleDumper, allow_unicode=True, sort_keys=False), nl=False)


@main.command()
@database_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error", "critical"], case_sensitive=False),
    default=None,
    help="default: $ZIDA_LOG_LEVEL, else info",
)
@click.option(
    "--example",
    "example_bundle",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="print this bundle's credentials and an SDK snippet once the checks pass (what `make run` shows)",
)
def serve(
    database: str | None, host: str, port: int, workers: int, log_level: str | None, example_bundle: str | None
) -> None:
    """Serve every dialect on HOST:PORT."""
    import socket

    import uvicorn

    from zida.observability.logs import logging_config
    from zida.observability.metrics import multiprocess_directory

    settings = load_settings(database)
    try:
        key = require_secret_key(settings)
        asyncio.run(_preflight(settings, key))
    except (ValueError, Misconfigured) as exc:
        raise click.ClickException(str(exc)) from None
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        # As the server's own socket will: a crashed predecessor's connections in TIME_WAIT don't hold the port
        # (a process still listening on it does).
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    if example_bundle is not None:
        _print_example(example_bundle, f"{host}:{port}")
    os.environ["ZIDA_DATABASE_URL"] = settings.database_url
    os.environ.setdefault("ZIDA_SECRET_KEY", key)
    level = (log_level or settings.log_level).lower()
    # Several workers: the metrics' multi-process directory is set before they start (zida.observability.metrics).
    with multiprocess_directory(settings, workers):
        uvicorn.run(
            "zida.server:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=level,
            log_config=logging_config(settings, level),  # JSON or text lines, no secret (ZIDA_LOG_FORMAT)
            access_log=False,  # its lines carry query strings (oapi's access_token): zida.access logs requests
            proxy_headers=False,
            server_header=False,
            # Stream mode's frames are small JSON: compressing each one cost more CPU than sending it (clients
            # offer permessage-deflate and go on without it).
            ws_per_message_deflate=False,
            # A client's frames are acks and answers: a 16 MiB one (uvicorn's default) held the loop a second to parse.
            ws_max_size=WS_MAX_BYTES,
            # On SIGTERM the requests in flight get this long to finish, then are cancelled (their transactions roll
            # back): without a bound, a backlog of slow searches kept a worker for minutes, past systemd's 90 s.
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        )


WS_MAX_BYTES = 1 << 20  # the largest WebSocket frame a Stream-mode client may send (1 MiB; larger: closed with 1009)
GRACEFUL_SHUTDOWN_SECONDS = 30


SNIPPET = """\
# pip install alibabacloud-dingtalk
from alibabacloud_dingtalk.oauth2_1_0.client import Client as OAuthClient
from alibabacloud_dingtalk.oauth2_1_0 import models as oauth_models
from alibabacloud_dingtalk.yida_1_0.client import Client as YidaClient
from alibabacloud_dingtalk.yida_1_0 import models as yida_models
from alibabacloud_tea_openapi import models as open_api_models
from alibabacloud_tea_util import models as util_models
import json

config = open_api_models.Config(protocol="http")
oauth = OAuthClient(config); oauth._endpoint = "{endpoint}"
yida = YidaClient(config); yida._endpoint = "{endpoint}"

token = oauth.get_access_token(oauth_models.GetAccessTokenRequest(
    app_key="{app_key}", app_secret="{app_secret}")).body.access_token
headers = yida_models.SaveFormDataHeaders(x_acs_dingtalk_access_token=token)
saved = yida.save_form_data_with_options(yida_models.SaveFormDataRequest(
    app_type="{app_type}", system_token="{system_token}", user_id="{user_id}",
    form_uuid="{form_uuid}", form_data_json=json.dumps({form_data})), headers, util_models.RuntimeOptions())
print("saved", saved.body.result)
found = yida.search_form_datas_with_options(yida_models.SearchFormDatasRequest(
    app_type="{app_type}", system_token="{system_token}", user_id="{user_id}",
    form_uuid="{form_uuid}", current_page=1, page_size=10),
    yida_models.SearchFormDatasHeaders(x_acs_dingtalk_access_token=token), util_models.RuntimeOptions())
print(found.body.total_count, "records;", found.body.data[0].form_data)
"""


@main.command()
@database_option
def doctor(database: str | None) -> None:
    """Check settings, server key, database, schema, Redis and disk space (read-only); exit 1 if anything fails."""
    from zida.doctor import diagnose

    try:
        settings = load_settings(database)
    except (ValueError, Misconfigured) as exc:
        click.echo(f"fail  settings: {exc}")
        raise SystemExit(1) from None
    findings = asyncio.run(diagnose(settings))
    for finding in findings:
        click.echo(f"{finding.status:<5} {finding.check}: {finding.detail}")
    if any(f.status == "fail" for f in findings):
        raise SystemExit(1)


@main.command()
@database_option
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="replace PATH if it exists")
def backup(database: str | None, path: str, force: bool) -> None:
    """Write a consistent copy of the database to PATH while servers keep running (SQLite: the online backup
    API; PostgreSQL: pg_dump --format=custom). The server key is not in it: keep it separately."""
    from zida.backup import BackupError, backup_database

    settings = load_settings(database)
    try:
        report = backup_database(settings.database_url, path, force=force)
    except BackupError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"backed up to {report.path} ({report.size:,} bytes, {report.how})")
    click.echo("keep the server key (ZIDA_SECRET_KEY, or secret.key beside an SQLite database) with it", err=True)


@main.command()
@database_option
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="replace a database that already holds tables")
def restore(database: str | None, path: str, force: bool) -> None:
    """Restore the backup PATH into the database (an empty one unless --force), then check its schema."""
    from zida.backup import BackupError, restore_database

    settings = load_settings(database)
    try:
        report = restore_database(path, settings.database_url, force=force)
    except BackupError as exc:
        raise click.ClickException(exc.message) from None

    async def check() -> tuple[str, bool]:
        from zida.core.access.tokens import server_key_recorded

        db = await _open(settings)
        try:
            await check_schema(db)
            same_key = await server_key_recorded(db, SecretBox(settings.secret_key)) if settings.secret_key else None
        except Misconfigured as exc:  # an older release's backup: migrate it
            return f"restored {path} into {report.path}; {exc.message}", True
        finally:
            await db.close()
        await _tell_servers(settings)  # a server already running on it drops everything it cached
        done = f"restored {path} into {report.path} ({report.how}); the schema is current"
        if same_key is False:  # found now, not when a server refuses to start
            return (
                f"{done}, but the server key here is not the one this database was set up with: without it its"
                " systemTokens and taskApiCodes cannot be read and its tokens are invalid. Use the original key"
                " (ZIDA_SECRET_KEY, or the secret.key file of the backed-up database, beside the restored one)",
                False,
            )
        return done, True

    message, key_ok = asyncio.run(check())
    if not key_ok:
        raise click.ClickException(message)
    click.echo(message)


@main.group()
def credentials() -> None:
    """App credentials of a corp: list, create, change, rotate, revoke (as the admin API does; audited)."""


async def _with_corp(settings: Settings, corp_id: str, action: Any) -> Any:
    """Run ``action(db, corp)`` on the corp ``corp_id`` (an unknown corp is refused)."""
    from zida.core.org.models import CorpRef
    from zida.core.org.repository import find_corp

    db = await _open(settings)
    try:
        await check_schema(db)
        corp = await find_corp(db, corp_id)
        if corp is None:
            raise click.ClickException(f"corp {corp_id} does not exist")
        return await action(db, CorpRef(corp.pk, corp.corp_id))
    finally:
        await db.close()


def _credential_line(credential: Any) -> str:
    limit = "default" if credential.rate_limit is None else str(credential.rate_limit)
    return f"{credential.client_id}  scopes: {' '.join(credential.scopes)}  rate limit: {limit}"


def _credentials_run(database: str | None, corp_id: str, action: Any, *, publish: bool = False) -> Any:
    """Run a credential action; ``publish``: it changed a credential, which running servers must hear of."""
    from zida.core.access.tokens import CREDENTIALS_CACHE_SCOPE

    settings = load_settings(database)
    try:
        result = asyncio.run(_with_corp(settings, corp_id, action))
    except ZidaError as exc:
        raise click.ClickException(exc.message) from None
    if publish:
        asyncio.run(_tell_servers(settings, CREDENTIALS_CACHE_SCOPE))
    return result


async def _tell_servers(settings: Settings, *scopes: str) -> None:
    """After a change committed: running servers drop what they cached of ``scopes`` (sharing Redis: within
    ZIDA_CACHE_SYNC_SECONDS; else within their cache lifetime)."""
    store = open_store(settings)
    try:
        await invalidate_everywhere(store, *scopes)
    except StoreUnavailable as exc:
        click.echo(f"warning: {exc}; running servers see the change within ZIDA_CACHE_SECONDS", err=True)
    finally:
        await store.close()


_ACTOR = "cli"
_corp_option = click.option("--corp", "corp_id", required=True, help="corpId of the organisation")


@credentials.command("list")
@database_option
@_corp_option
def credentials_list(database: str | None, corp_id: str) -> None:
    """The corp's credentials (never their secrets)."""
    from zida.core.access.credentials import list_credentials

    for credential in _credentials_run(database, corp_id, lambda db, corp: list_credentials(db, corp.pk)):
        click.echo(_credential_line(credential))


@credentials.command("create")
@database_option
@_corp_option
@click.option("--scope", "scopes", multiple=True, required=True, help="a scope or permission point (repeatable)")
@click.option("--app-key", default=None, help="the client id (default: generated)")
@click.option("--rate-limit", type=int, default=None, help="calls per second and API (0: none; default: server's)")
def credentials_create(
    database: str | None, corp_id: str, scopes: tuple[str, ...], app_key: str | None, rate_limit: int | None
) -> None:
    """Create a credential; its secret is printed this once."""
    from zida.core.access.credentials import create_credential
    from zida.dialects import granted_scopes

    try:
        granted = granted_scopes(list(scopes))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    issued = _credentials_run(
        database,
        corp_id,
        lambda db, corp: create_credential(db, corp, granted, actor=_ACTOR, client_id=app_key, rate_limit=rate_limit),
        publish=True,
    )
    click.echo(_credential_line(issued.credential))
    click.echo(f"appSecret: {issued.secret}  (shown once: store it now)")


@credentials.command("update")
@database_option
@_corp_option
@click.argument("app_key")
@click.option("--scope", "scopes", multiple=True, help="the scopes it grants from now on (repeatable)")
@click.option("--rate-limit", default=None, help="calls per second and API: a number (0: none) or 'default'")
def credentials_update(
    database: str | None, corp_id: str, app_key: str, scopes: tuple[str, ...], rate_limit: str | None
) -> None:
    """Change what a credential's tokens grant, or its rate limit (what is not given stays)."""
    from zida.core.access.credentials import KEEP, update_credential
    from zida.dialects import granted_scopes

    try:
        granted = granted_scopes(list(scopes)) if scopes else None
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    limit: Any = KEEP
    if rate_limit is not None:
        if rate_limit != "default" and not is_decimal(rate_limit):
            raise click.ClickException("--rate-limit must be a whole number or 'default'")
        limit = None if rate_limit == "default" else int(rate_limit)
    updated = _credentials_run(
        database,
        corp_id,
        lambda db, corp: update_credential(db, corp, app_key, scopes=granted, rate_limit=limit, actor=_ACTOR),
        publish=True,
    )
    click.echo(_credential_line(updated))


@credentials.command("rotate")
@database_option
@_corp_option
@click.argument("app_key")
def credentials_rotate(database: str | None, corp_id: str, app_key: str) -> None:
    """Give a credential a new secret (printed this once): its tokens and its old secret stop working."""
    from zida.core.access.credentials import rotate_credential

    issued = _credentials_run(
        database, corp_id, lambda db, corp: rotate_credential(db, corp, app_key, actor=_ACTOR), publish=True
    )
    click.echo(_credential_line(issued.credential))
    click.echo(f"appSecret: {issued.secret}  (shown once: store it now)")


@credentials.command("revoke")
@database_option
@_corp_option
@click.argument("app_key")
def credentials_revoke(database: str | None, corp_id: str, app_key: str) -> None:
    """Delete a credential and its tokens."""
    from zida.core.access.credentials import revoke_credential

    _credentials_run(
        database, corp_id, lambda db, corp: revoke_credential(db, corp, app_key, actor=_ACTOR), publish=True
    )
    click.echo(f"revoked {app_key}")


@main.group()
def users() -> None:
    """The users of a corp: import them from a CSV file (README "Importing users")."""


@users.command("import")
@database_option
@_corp_option
@click.argument("csv_file", metavar="FILE.csv", type=click.Path(dir_okay=False))
def users_import(database: str | None, corp_id: str, csv_file: str) -> None:
    """Create or update the users of FILE.csv in one transaction (a progress bar on standard error); the file is
    checked first and any error, naming its line, changes nothing."""
    from pathlib import Path

    from zida.core.apps.queries import APPS_CACHE_SCOPE
    from zida.core.org.repository import ORG_CACHE_SCOPE
    from zida.org_import import UsersCsvError, import_users, read_users_csv

    settings = load_settings(database)
    try:
        data = Path(csv_file).read_bytes()
    except OSError as exc:
        raise click.ClickException(f"{csv_file}: cannot read the file: {exc.strerror}") from None
    try:
        rows, ignored = read_users_csv(data, csv_file)
        if ignored:
            click.echo(f"ignored columns (Zida does not keep them): {', '.join(ignored)}", err=True)
        report = _credentials_run(
            database,
            corp_id,
            lambda db, corp: import_users(db, corp, rows, source=csv_file, progress=ProgressBar()),
        )
    except UsersCsvError as exc:
        raise click.ClickException(exc.message) from None
    asyncio.run(_tell_servers(settings, ORG_CACHE_SCOPE, APPS_CACHE_SCOPE))
    click.echo(f"imported {csv_file}\n{report.summary()}")


@main.group()
def files() -> None:
    """Uploaded files: remove garbage (gc), move the bytes to another storage (migrate). README "Files"."""


@files.command("gc")
@database_option
@click.option("--dry-run", is_flag=True, help="report what would be removed, remove nothing")
def files_gc(database: str | None, dry_run: bool) -> None:
    """Report and remove expired unattached uploads, files of deleted records (policy remove) and orphaned bytes."""
    from zida.core.files.lifecycle import collect_garbage
    from zida.core.files.storage import open_storage, storage_for_backend

    settings = load_settings(database)

    async def run() -> list[str]:
        db = await _open(settings)
        try:
            await check_schema(db)
            configured = open_storage(settings)
            storages = {configured.backend: configured}
            if configured.backend != "local":
                storages["local"] = storage_for_backend(settings, "local")
            report = await collect_garbage(db, settings, storages, dry_run=dry_run)
            return report.lines()
        finally:
            await db.close()

    for line in asyncio.run(run()):
        click.echo(line)
    click.echo("dry run: nothing removed" if dry_run else "removed")


@files.command("migrate")
@database_option
@click.option("--to", "target_url", required=True, help="s3://bucket/prefix (keys and endpoint: ZIDA_FILES_S3_*)")
@click.option("--delete-source", is_flag=True, help="remove each file's local copy once it is moved")
def files_migrate(database: str | None, target_url: str, delete_source: bool) -> None:
    """Move every file's bytes to TARGET (a progress bar on standard error); then set ZIDA_FILES_URL to it."""
    from zida.core.files.lifecycle import files_to_move, migrate_files
    from zida.core.files.storage import storage_for_backend, storage_for_url

    settings = load_settings(database)
    if not target_url.startswith("s3://"):
        raise click.ClickException("--to must be an s3://bucket/prefix URL")
    target = storage_for_url(target_url, settings)

    async def run() -> int:
        db = await _open(settings)
        try:
            await check_schema(db)
            total = await files_to_move(db, target.backend)
            with click.progressbar(length=total, label="files", file=sys.stderr) as bar:
                return await migrate_files(
                    db,
                    lambda backend: storage_for_backend(settings, backend),
                    target,
                    delete_source=delete_source,
                    progress=lambda done, _total: bar.update(1),
                )
        finally:
            await db.close()

    moved = asyncio.run(run())
    click.echo(f"moved {moved} files to {target_url}; now set ZIDA_FILES_URL={target_url}")


@main.command()
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False))
@click.option("--endpoint", default="127.0.0.1:8080", show_default=True)
def example(bundle: str, endpoint: str) -> None:
    """Print a bundle's credentials and a copy-paste official-SDK example against ENDPOINT."""
    _print_example(bundle, endpoint)


def _print_console_users(b: Any, endpoint: str) -> None:
    """The web console's address and the bundle's users who can sign in to it (those with a password)."""
    # the admin pages are for a user who administers every app (zida.core.org.queries.is_corp_admin)
    admins = set.intersection(*(set(a.admins) for a in b.apps)) if b.apps else set()
    users = [u for u in b.users if u.password]
    if not users:
        return
    click.echo(f"Web console: http://{endpoint}/console/  — sign in as")
    for u in users:
        role = " (admin of every app: also the admin pages)" if u.userId in admins else ""
        click.echo(f"  {u.username or u.userId} / {u.password}{role}")
    click.echo("")


def _print_example(bundle: str, endpoint: str) -> None:
    raw = read_bundle(bundle)
    b = parse_bundle(raw, source=bundle)
    cred = next((c for c in b.credentials if c.appSecret), None)
    app = next((a for a in b.apps if a.systemToken and a.admins), None)
    form = next((f for f in app.forms if f.type == "receipt"), None) if app else None
    if cred is None or app is None or form is None:
        raise click.ClickException("the bundle needs a credential with appSecret and an app with a receipt form")
    text_field = next((f.fieldId for f in form.fields if f.component == "TextField"), None)
    form_data: dict[str, Any] = {text_field: "Hello from the official SDK"} if text_field else {}
    for f in form.fields:
        if f.required and f.fieldId not in form_data:
            form_data[f.fieldId] = 1 if f.component == "NumberField" else "x"
    click.echo(f"Zida is serving on http://{endpoint}\n")
    click.echo(f"  corpId       {b.corp.corpId}")
    click.echo(f"  appKey       {cred.appKey}")
    click.echo(f"  appSecret    {cred.appSecret}")
    click.echo(f"  appType      {app.appType}")
    click.echo(f"  systemToken  {app.systemToken}")
    click.echo(f"  userId       {app.admins[0]} (app admin)")
    click.echo(f"  formUuid     {form.formUuid}\n")
    _print_console_users(b, endpoint)
    click.echo("Paste into python (pip install alibabacloud-dingtalk):\n")
    click.echo(
        SNIPPET.format(
            endpoint=endpoint,
            app_key=cred.appKey,
            app_secret=cred.appSecret,
            app_type=app.appType,
            system_token=app.systemToken,
            user_id=app.admins[0],
            form_uuid=form.formUuid,
            form_data=json.dumps(form_data, ensure_ascii=False),
        )
    )
    click.echo(
        f"curl: curl -s -X POST http://{endpoint}/v1.0/oauth2/accessToken -H 'content-type: application/json'"
        f' -d \'{{"appKey":"{cred.appKey}","appSecret":"{cred.appSecret}"}}\''
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
