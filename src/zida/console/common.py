"""What several console pages share: times, page numbers, people's names."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from zida.console.web import Ctx
from zida.core.errors import InvalidArgument
from zida.core.org.repository import find_users

__all__ = ["PAGE_SIZE", "Pager", "moment", "names_of", "page_number"]

PAGE_SIZE = 20
_MAX_PAGE = 10_000


def moment(ctx: Ctx, ms: int | None) -> str:
    """An epoch-ms instant as ``YYYY-MM-DD HH:MM`` in the server's timezone ("" for none; a moment no calendar date
    holds there as its milliseconds)."""
    if ms is None:
        return ""
    try:
        return datetime.fromtimestamp(ms / 1000, ZoneInfo(ctx.zida.settings.timezone)).strftime("%Y-%m-%d %H:%M")
    except (OverflowError, ValueError, OSError):
        return str(ms)


def page_number(ctx: Ctx) -> int:
    """The ``page`` query parameter (1 when absent)."""
    raw = ctx.request.query_params.get("page", "1")
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= _MAX_PAGE:
        raise InvalidArgument(f"page must be a number from 1 to {_MAX_PAGE}", reason="argument.invalid_page")
    return int(raw)


@dataclass(frozen=True, slots=True)
class Pager:
    """Where a paged list is: its page, how many pages, and the links to the pages around it."""

    number: int
    total: int
    size: int
    base: str  # the URL without the page parameter, ending with ? or &
    at_least: bool = False  # counting stopped at ``total``: there may be more, and more pages

    @property
    def pages(self) -> int:
        """How many pages the list has (at least one; at least this many when ``at_least``)."""
        return max(1, -(-self.total // self.size))

    @property
    def label(self) -> tuple[str, str]:
        """The page count and the item count as shown (with a + when counting stopped short)."""
        if not self.at_least:
            return str(self.pages), str(self.total)
        return f"{max(self.pages, self.number)}+", f"{max(self.total, (self.number - 1) * self.size + 1)}+"

    @property
    def previous(self) -> str | None:
        """The previous page's URL."""
        return f"{self.base}page={self.number - 1}" if self.number > 1 else None

    @property
    def next(self) -> str | None:
        """The next page's URL."""
        return f"{self.base}page={self.number + 1}" if self.number < self.pages or self.at_least else None


async def names_of(ctx: Ctx, user_ids: Iterable[str]) -> dict[str, str]:
    """The names of users of the signed-in user's corp, in the request's language (unknown ids: themselves)."""
    wanted = {u for u in user_ids if u}
    found = await find_users(ctx.zida.db, ctx.corp.pk, wanted) if wanted else {}
    names = {}
    for user_id in wanted:
        user = found.get(user_id)
        names[user_id] = (
            user_id if user is None else (user.name_en if ctx.lang == "en_US" and user.name_en else user.name)
        )
    return names
