"""Paging through the team history without counting the whole table.

Django's Paginator counts every matching row on every page view, which grows
with the history; here a page fetches one row more than it shows to know
whether there is a next one, and the total is counted only up to a cap.
"""

from dataclasses import dataclass

from django.db.models import QuerySet

COUNT_CAP = 1000
# The deepest page that is read. An OFFSET past a 64-bit integer is an error on
# SQLite and PostgreSQL, and a deep one reads every row before it: filters are the
# way that far back.
MAX_PAGE = 10_000


class PageOutOfRange(ValueError):
    """A page number past MAX_PAGE."""


@dataclass
class Page:
    items: list
    number: int
    has_next: bool
    total: int  # up to COUNT_CAP + 1
    count_is_capped: bool
    previous: int = 0  # the page "Newer" leads to (past the end: the last one with rows)

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_other_pages(self) -> bool:
        return self.has_next or self.has_previous

    @property
    def next_page_number(self) -> int:
        return self.number + 1

    @property
    def previous_page_number(self) -> int:
        return self.previous or self.number - 1


def page_of(queryset: QuerySet, number: str | int | None, size: int) -> Page:
    """The page of that number; the first for anything not a number, PageOutOfRange past MAX_PAGE."""
    try:
        number = max(1, int(number or 1))
    except ValueError:  # also a number of more than 4300 digits
        number = 1
    if number > MAX_PAGE:
        raise PageOutOfRange(number)
    start = (number - 1) * size
    rows = list(queryset[start:start + size + 1])
    total = queryset[:COUNT_CAP + 1].count()
    previous = number - 1
    if not rows and total <= COUNT_CAP:
        # A page past the end (an old link, a history that shrank): back to the last page
        # with rows in one step, not through every empty one.
        previous = min(previous, max(1, -(-total // size)))
    return Page(items=rows[:size], number=number, has_next=len(rows) > size and number < MAX_PAGE,
                total=min(total, COUNT_CAP), count_is_capped=total > COUNT_CAP, previous=previous)
