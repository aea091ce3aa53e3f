import json
from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.translation import gettext as _

from generations import cards

register = template.Library()


@register.filter
def elapsed(start: datetime | None, end: datetime | None = None) -> str:
    """How long from start to end (or now), to the second: '12 s', '3 min 5 s', '2 h 4 min'."""
    if start is None:
        return ""
    seconds = max(0, int(((end or timezone.now()) - start).total_seconds()))
    if seconds < 60:
        return _("%(s)d s") % {"s": seconds}
    if seconds < 3600:
        return _("%(m)d min %(s)d s") % {"m": seconds // 60, "s": seconds % 60}
    return _("%(h)d h %(m)d min") % {"h": seconds // 3600, "m": seconds % 3600 // 60}


@register.simple_tag
def elapsed_formats() -> str:
    """elapsed's three wordings, as JSON, for the script that ticks running times (portal.js)."""
    return json.dumps([_("%(s)d s"), _("%(m)d min %(s)d s"), _("%(h)d h %(m)d min")], ensure_ascii=False)


@register.simple_tag(takes_context=True)
def card_poll_headers(context, generation) -> str:
    """hx-headers of a running job's card: its polls ask "changed since this card?"."""
    return cards.poll_headers(context["request"], generation)


@register.filter
def job_path(generation, name: str) -> str:
    """The path of one of a job's pages: {{ generation|job_path:"card" }} (see cards.job_path)."""
    return cards.job_path(generation, name)
