"""The console tests' server: a fresh database with the console organisations, served on a free port; helpers
that sign in over plain HTTP (``SignedIn``) and a headless Chromium (Debian's, at ``/usr/bin/chromium``)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServerProcess, fresh_database, load_fixture_bundle

CHROMIUM = "/usr/bin/chromium"
CORP = "corpConsole"
OTHER_CORP = "corpConsoleOther"
PASSWORDS = {
    (CORP, "adm"): "console-adm-pass",
    (CORP, "wang"): "console-wang-pass",
    (CORP, "li"): "console-li-pass",
    (CORP, "zhou"): "console-zhou-pass",
    (CORP, "out"): "console-out-pass",
    (OTHER_CORP, "li"): "other-li-pass",
    (OTHER_CORP, "boss"): "other-boss-pass",
}
_CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


@pytest.fixture(scope="package")
def console_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A live Zida with the console's two organisations (its own database and files directory)."""
    directory = tmp_path_factory.mktemp("console")
    with fresh_database(directory) as url:
        load_fixture_bundle(url, "corp_console.yaml")
        load_fixture_bundle(url, "corp_console_other.yaml")
        files = directory / "files"
        files.mkdir()
        # DingTalk-schedule callbacks give up after two quick retries (a failed delivery to redeliver in seconds).
        server = ServerProcess(
            url, ZIDA_FILES_URL=f"file://{files}", ZIDA_CONSOLE="on", ZIDA_CALLBACK_RETRY_SECONDS="0.2,0.2"
        )
        try:
            yield f"http://{server.endpoint}"
        finally:
            server.stop()


def csrf_of(html: str) -> str:
    """The CSRF token a console page's forms carry."""
    found = _CSRF.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


@dataclass
class SignedIn:
    """A console user signed in over plain HTTP (``client`` keeps the cookies)."""

    client: httpx.Client
    csrf: str

    def get(self, path: str) -> httpx.Response:
        return self.client.get(path)

    def post(self, path: str, data: dict[str, object] | None = None, *, csrf: str | None = None) -> httpx.Response:
        """POST a form with the session's CSRF token (``csrf``: another one; "" none at all)."""
        token = self.csrf if csrf is None else csrf
        body = dict(data or {})
        if token:
            body["csrf"] = token
        return self.client.post(path, data=body)  # type: ignore[arg-type]

    def refresh_csrf(self, path: str) -> str:
        self.csrf = csrf_of(self.get(path).text)
        return self.csrf


def sign_in(base_url: str, username: str, corp: str = CORP, password: str | None = None) -> SignedIn:
    """A client signed in to the console as ``username`` of ``corp``."""
    client = httpx.Client(base_url=base_url, follow_redirects=False, timeout=10)
    page = client.get("/console/signin")
    answer = client.post(
        "/console/signin",
        data={
            "csrf": csrf_of(page.text),
            "corp": corp,
            "username": username,
            "password": password or PASSWORDS[(corp, username)],
        },
    )
    assert answer.status_code == 303, answer.text
    signed = SignedIn(client, "")
    signed.refresh_csrf("/console/inbox")
    return signed


@pytest.fixture(scope="package")
def browser(console_url: str) -> Iterator[object]:
    """Debian's Chromium, headless, driven by Playwright (``make test`` installs it); started after the server's
    database is ready (Playwright's synchronous API keeps an event loop running in this thread meanwhile)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: run `make test` (it installs Debian's chromium) or apt-get install chromium"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()
