"""The team's usage: credits spent per member per week, and jobs by status.

Credits count as spent for jobs that finished done: those PixVerse billed.
Jobs that failed moderation are refunded by PixVerse, and failed ones are
not counted either, since PixVerse does not document billing them.
"""

from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import Count, Sum
from django.db.models.functions import TruncWeek
from django.utils import timezone

from generations.models import Generation

# Distinguishable, and dark enough for white text and for a white page (WCAG AA for graphics).
PALETTE = ["#4338ca", "#0e7490", "#b45309", "#be123c", "#15803d", "#7e22ce", "#475569", "#a16207"]


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


def team_usage(weeks: int = 8) -> TeamUsage:
    today = timezone.localdate()
    this_week = today - timedelta(days=today.weekday())
    first = this_week - timedelta(weeks=weeks - 1)
    spent_rows = (
        Generation.objects.filter(status=Generation.Status.DONE, finished_at__date__gte=first)
        .annotate(week=TruncWeek("finished_at"))
        .values("owner__username", "week")
        .annotate(credits=Sum("credits"))
    )
    spent = {}
    for row in spent_rows:
        week = row["week"].date() if hasattr(row["week"], "date") else row["week"]
        spent[(row["owner__username"], week)] = row["credits"]
    members = sorted({m for m, _ in spent})
    labels = dict(Generation.Status.choices)
    by_status = [(labels[row["status"]], row["n"]) for row in
                 Generation.objects.values("status").annotate(n=Count("id")).order_by("-n")]
    return TeamUsage(weeks=[first + timedelta(weeks=n) for n in range(weeks)], members=members,
                     spent=spent, by_status=by_status)
