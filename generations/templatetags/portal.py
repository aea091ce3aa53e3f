import json
from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.timesince import timesince
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from generations import cards
from generations.catalog import CAMERA_LABELS, STYLE_LABELS
from generations.models import Generation

register = template.Library()


@register.filter
def elapsed(start: datetime | None, end: datetime | None = None) -> str:
    """How long from start to end (or now), to the second: '12 s', '3 min 5 s', '2 h 4 min'."""
    if start is None:
        return ""
    return seconds_text(int(((end or timezone.now()) - start).total_seconds()))


@register.filter
def seconds_text(seconds: int | None) -> str:
    """A number of seconds in elapsed's words: '12 s', '3 min 5 s', '2 h 4 min'."""
    if seconds is None:
        return ""
    seconds = max(0, seconds)
    if seconds < 60:
        return _("%(s)d s") % {"s": seconds}
    if seconds < 3600:
        return _("%(m)d min %(s)d s") % {"m": seconds // 60, "s": seconds % 60}
    return _("%(h)d h %(m)d min") % {"h": seconds // 3600, "m": seconds % 3600 // 60}


@register.filter
def credits_text(generation) -> str:
    """What a job cost: its credits, or that PixVerse gave them back or never took them."""
    if generation.status == generation.Status.MODERATED:
        return ngettext("%(credits)s credit, refunded", "%(credits)s credits, refunded",
                        generation.credits) % {"credits": generation.credits}
    if generation.never_billed:
        return _("no credits spent")
    return ngettext("%(credits)s credit", "%(credits)s credits", generation.credits) % {
        "credits": generation.credits}


@register.filter
def paid_with_text(paid_with: str) -> str:
    """A job's stored key label in the reader's words: a member's own key is stored as '••••ABCD'."""
    if paid_with.startswith("••••"):
        return _("the member's own key %(masked)s") % {"masked": paid_with}
    return paid_with


@register.filter
def ago(moment: datetime | None) -> str:
    """'just now' within the first minute, else '5 minutes ago' (timesince alone says '0 minutes')."""
    if moment is None:
        return ""
    if (timezone.now() - moment).total_seconds() < 60:
        return _("just now")
    return _("%(t)s ago") % {"t": timesince(moment)}


@register.filter
def when(moment: datetime | None) -> str:
    """A date and time in the reader's time zone, with the zone's name: 'Dec. 2, 2026, 3:40 p.m. CET'."""
    if moment is None:
        return ""
    local = timezone.localtime(moment)
    return f"{date_format(local, 'DATETIME_FORMAT')} {local.tzname()}"


@register.filter
def html_datetime(moment: datetime | None) -> str:
    """A <time datetime> value: ISO 8601 to the second (HTML allows no microseconds)."""
    return moment.replace(microsecond=0).isoformat() if moment else ""


@register.simple_tag
def elapsed_formats() -> str:
    """elapsed's three wordings, as JSON, for the script that ticks running times (portal.js)."""
    return json.dumps([_("%(s)d s"), _("%(m)d min %(s)d s"), _("%(h)d h %(m)d min")], ensure_ascii=False)


@register.simple_tag
def progress_formats() -> str:
    """A progress bar's two wordings, as JSON, for the script that moves it (portal.js):
    the time left (in elapsed's words), and past the expected time."""
    return json.dumps([_("about %(t)s left"), _("taking longer than usual")], ensure_ascii=False)


@register.simple_tag(takes_context=True)
def card_poll_headers(context, generation) -> str:
    """hx-headers of a running job's card: its polls ask "changed since this card?"."""
    return cards.poll_headers(context["request"], generation)


@register.filter
def job_path(generation, name: str) -> str:
    """The path of one of a job's pages: {{ generation|job_path:"card" }} (see cards.job_path)."""
    return cards.job_path(generation, name)


@register.filter
def remix_path(generation) -> str:
    """The dashboard's form filled from this job: {{ generation|remix_path }} (see cards.remix_path)."""
    return cards.remix_path(generation)


@register.simple_tag(takes_context=True)
def job_settings(context, generation) -> SafeString:
    """A card's line of what the job was made with: owner (a team mate's), model, quality, ...

    One tag rather than a dozen variables and two blocktranslates in the card:
    it was a quarter of a card's rendering (~100 of 390 us).
    """
    parts = []
    if generation.owner_id != context["request"].user.pk:
        parts.append(format_html('<span class="owner">{}</span>', generation.owner.get_username()))
    if generation.kind not in (Generation.Kind.TEXT, Generation.Kind.IMAGE):
        parts.append(generation.kind_label)
    # Sound and lip sync take the model and quality of their video: none for an upload.
    parts += [part for part in (generation.model, generation.quality) if part]
    parts.append(_("%(n)s s") % {"n": generation.duration})
    if generation.aspect_ratio:
        parts.append(generation.aspect_ratio)
    if generation.motion_mode == "fast":
        parts.append(_("fast motion"))
    if generation.style:
        parts.append(STYLE_LABELS.get(generation.style, generation.style))
    if generation.camera_movement:
        parts.append(CAMERA_LABELS.get(generation.camera_movement, generation.camera_movement))
    if generation.template_name:
        parts.append(generation.template_name)
    if generation.generate_audio or generation.sound_effect_content:
        parts.append(_("with sound"))
    if generation.multi_clip:
        parts.append(_("several shots"))
    if generation.seed is not None:
        parts.append(f"{_('seed')} {generation.seed}")
    parts.append(credits_text(generation))
    # Each part escaped (the owner's span is already safe): format_html_join would
    # cost twice as much for the same output.
    return mark_safe(" · ".join(map(conditional_escape, parts)))  # noqa: S308
