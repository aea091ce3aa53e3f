"""The team's usage: credits spent and held, jobs and failures, per member and month.

Credits count as spent for jobs that finished done: those PixVerse billed.
Jobs that failed moderation are refunded by PixVerse, and failed ones are
not counted either, since PixVerse does not document billing them. Jobs still
queued or running hold their credits (a limit counts them) until they end;
those are shown apart, as held.

A job belongs to the calendar month (UTC) it was created in, as for the
monthly limits of team keys (models.month_start): the figures of a month
match what its limits counted. All figures are sums and counts made by the
database; only the CSV export reads job by job.
"""

import csv
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, TruncWeek
from django.utils import timezone
from django.utils.translation import gettext as _

from generations.models import Generation
from generations.templatetags.portal import paid_with_text

S = Generation.Status
# Distinguishable, and dark enough for white text and for a white page (WCAG AA for graphics).
PALETTE = ["#4338ca", "#0e7490", "#b45309", "#be123c", "#15803d", "#7e22ce", "#475569", "#a16207"]
FAILURES = (S.FAILED, S.TIMED_OUT, S.MODERATED)

# What each figure is, for aggregate() over any set of jobs. Moderated jobs are
# failures and refunded; running ones hold their credits, counted apart from spent.
FIGURES = {
    "jobs": Count("id"),
    "failures": Count("id", filter=Q(status__in=FAILURES)),
    "refunded": Count("id", filter=Q(status=S.MODERATED)),
    "spent": Coalesce(Sum("credits", filter=Q(status=S.DONE)), 0),
    "held": Coalesce(Sum("credits", filter=Q(status__in=Generation.ACTIVE)), 0),
}


@dataclass(frozen=True)
class Month:
    """A calendar month in UTC, written as in the URL and <input type=month>: 2026-03."""

    year: int
    month: int

    PATTERN = re.compile(r"(\d{4})-(\d{2})")
    FIRST, LAST = (1970, 1), (9999, 11)  # each with a month after it that datetime can hold

    @classmethod
    def parse(cls, text: str) -> "Month | None":
        match = cls.PATTERN.fullmatch(text.strip())
        if not match:
            return None
        month = cls(int(match[1]), int(match[2]))
        return month if 1 <= month.month <= 12 and month.within_range() else None

    @classmethod
    def of(cls, moment: datetime | None = None) -> "Month":
        moment = (moment or timezone.now()).astimezone(UTC)
        return cls(moment.year, moment.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """The first moment after the month: the start of the next one."""
        return self.next().start

    def next(self) -> "Month":
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> "Month":
        return Month(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    def within_range(self) -> bool:
        return self.FIRST <= (self.year, self.month) <= self.LAST

    def jobs(self, jobs: QuerySet) -> QuerySet:
        return jobs.filter(created__gte=self.start, created__lt=self.end)


@dataclass(frozen=True)
class Figures:
    jobs: int = 0
    failures: int = 0
    refunded: int = 0
    spent: int = 0
    held: int = 0


@dataclass
class Records:
    """The figures of a set of jobs: in total, and per member or per key (``by``)."""

    total: Figures
    rows: list[tuple[str, Figures]]


def records(jobs: QuerySet, by: str = "owner__username") -> Records:
    """Two queries, however many jobs: one grouped by ``by``, one for the total."""
    grouped = jobs.order_by().values(by).annotate(**FIGURES).order_by(by)
    rows = [(row.pop(by), Figures(**row)) for row in grouped]
    return Records(total=Figures(**jobs.order_by().aggregate(**FIGURES)), rows=rows)


def member_usage(user, month: Month | None = None) -> Records:
    """A member's own jobs of a month (this one by default), per key they were paid with."""
    month = month or Month.of()
    return records(month.jobs(Generation.objects.filter(owner=user)), by="paid_with")


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    color: str
    label: str


@dataclass
class TeamUsage:
    weeks: list[date]
    members: list[str]
    spent: dict[tuple[str, date], int]
    by_status: list[tuple[str, int]]

    def member_total(self, member: str) -> int:
        return sum(v for (m, _), v in self.spent.items() if m == member)

    def week_total(self, week: date) -> int:
        return sum(v for (_, w), v in self.spent.items() if w == week)

    @property
    def total(self) -> int:
        return sum(self.spent.values())

    @property
    def busiest_week(self) -> int:
        """The chart's scale: the most credits spent in one week."""
        return max((self.week_total(w) for w in self.weeks), default=0)

    def rows(self) -> list[tuple[str, list[int], int]]:
        """Per member: the credits of each week and the total, for the table."""
        return [(m, [self.spent.get((m, w), 0) for w in self.weeks], self.member_total(m))
                for m in self.members]

    def colors(self) -> list[tuple[str, str]]:
        return [(m, PALETTE[i % len(PALETTE)]) for i, m in enumerate(self.members)]

    def ticks(self, width: float = 640) -> list[tuple[float, date]]:
        """Where each week's label goes: under the middle of its bar."""
        slot = width / max(len(self.weeks), 1)
        return [(i * slot + slot / 2, week) for i, week in enumerate(self.weeks)]

    def bars(self, width: float = 640, height: float = 240, gap: float = 12) -> list[Bar]:
        """Stacked bars, one per week, one segment per member, in chart coordinates."""
        tallest = self.busiest_week or 1
        slot = width / max(len(self.weeks), 1)
        colors = dict(self.colors())
        bars = []
        for i, week in enumerate(self.weeks):
            bottom = height
            for member in self.members:
                credits = self.spent.get((member, week), 0)
                if not credits:
                    continue
                h = credits / tallest * height
                bottom -= h
                bars.append(Bar(x=i * slot + gap / 2, y=bottom, width=slot - gap, height=h,
                                color=colors[member], label=f"{member}: {credits}"))
        return bars


def team_usage(jobs: QuerySet | None = None, month: Month | None = None) -> TeamUsage:
    """Credits spent per member in each week (from Monday, UTC) that has days of the month."""
    month = month or Month.of()
    jobs = month.jobs(Generation.objects.all() if jobs is None else jobs).order_by()
    first = month.first_day - timedelta(days=month.first_day.weekday())
    last_day = (month.end - timedelta(days=1)).date()
    weeks = [first + timedelta(weeks=n) for n in range((last_day - first).days // 7 + 1)]
    spent_rows = (
        jobs.filter(status=S.DONE)
        .annotate(week=TruncWeek("created", tzinfo=UTC))
        .values("owner__username", "week")
        .annotate(credits=Sum("credits"))
    )
    spent = {}
    for row in spent_rows:
        week = row["week"].date() if hasattr(row["week"], "date") else row["week"]
        spent[(row["owner__username"], week)] = row["credits"]
    members = sorted({m for m, _ in spent})
    labels = dict(S.choices)
    by_status = [(labels[row["status"]], row["n"]) for row in
                 jobs.values("status").annotate(n=Count("id")).order_by("-n", "status")]
    return TeamUsage(weeks=weeks, members=members, spent=spent, by_status=by_status)


# --- The CSV export ------------------------------------------------------------------------------------

# A spreadsheet reads a cell starting with one of these as a formula (CSV injection, OWASP).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value) -> str | int:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def write_csv(out, jobs: QuerySet) -> None:
    """One row per job, oldest first, with the credits it counts for (spent: done jobs only).

    The key column is the key's label as the job stored it (a name and the last
    four characters); no key itself is ever read here.
    """
    writer = csv.writer(out)
    writer.writerow([_("Date (UTC)"), _("Member"), _("Key"), _("Kind"), _("Model"), _("Quality"),
                     _("Duration (s)"), _("Status"), _("Credits counted"), _("Video id")])
    kinds, statuses = dict(Generation.Kind.choices), dict(S.choices)
    rows = jobs.order_by("created", "id").values_list(
        "created", "owner__username", "paid_with", "kind", "model", "quality", "duration", "status",
        "credits", "video_id")
    for created, member, paid_with, kind, model, quality, duration, status, credits, video_id in (
            rows.iterator(chunk_size=2000)):
        writer.writerow([_cell(v) for v in (
            created.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"), member, paid_with_text(paid_with),
            str(kinds.get(kind, kind)), model, quality, duration, str(statuses.get(status, status)),
            credits if status == S.DONE else 0, video_id)])
