"""The job card's poll: what it shows of a job, read cheaply, and the ETag over it.

Every open dashboard asks for each running job's card every few seconds, so
this is the portal's hottest path. A card is a pure function of the fields in
CARD_FIELDS, of who asks (their own job or a team mate's) and of the language;
those make the card's ETag. (A card rendered for htmx carries no CSRF field:
htmx sends the page's token.) The page gives each card its ETag (If-None-Match
in hx-headers), so a poll of a job that has not changed is answered 304 after
one indexed read, and the card stays.
The running time and the progress bar move in the browser (portal.js), from the
job's creation time and its expected_seconds, which is fixed at submission: a
value computed at each rendering (from the videos learned so far) would make
the card differ from one render to the next while its ETag stayed the same.

The read is plain SQL built once: building the ORM query cost more than running
it. Its values go through the same converters as the ORM's, so the ETag made
from a stored row equals the one made from a model instance in a page.
"""

import functools
import hashlib
import json
import weakref
from datetime import datetime

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.fields.files import FieldFile
from django.http import HttpRequest
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils import translation

from generations.models import Generation

CARD_FIELDS = ("id", "code", "status", "kind", "is_private", "owner_id", "created", "finished_at",
               "video_file", "video_url", "prompt", "model", "quality", "duration", "aspect_ratio",
               "motion_mode", "style", "camera_movement", "generate_audio", "multi_clip", "thinking_type",
               "template_name", "sound_effect_content",
               "seed", "credits", "error_reason", "error_message", "error_code",
               "source_image", "poster", "video_width", "video_height", "expected_seconds")


@functools.cache
def _query() -> tuple[str, list[str], list]:
    """The SQL, its columns' field names, and the columns as ORM expressions."""
    quote = connection.ops.quote_name
    # In the model's own field order, which Model.from_db expects.
    fields = [f for f in Generation._meta.concrete_fields if f.attname in CARD_FIELDS]
    table = Generation._meta.db_table
    columns = ", ".join(quote(field.column) for field in fields)
    # The same rule as Generation.objects.visible_to: the team's shared jobs and one's own.
    # Names come from the model and values are parameters: nothing from a request is spliced in.
    code, private, owner = (quote(Generation._meta.get_field(name).column)
                            for name in ("code", "is_private", "owner"))
    sql = (f"SELECT {columns} FROM {quote(table)} "  # noqa: S608
           f"WHERE {code} = %s AND (NOT {private} OR {owner} = %s)")
    return sql, [f.attname for f in fields], [f.get_col(table) for f in fields]


# Per connection object (each thread has its own): the ORM's converters for each column.
_converters_by_connection: "weakref.WeakKeyDictionary[BaseDatabaseWrapper, list]" = (
    weakref.WeakKeyDictionary())


def _converters(columns: list) -> list:
    """The converters the ORM itself applies to these columns, from stored to Python values."""
    wrapper = connections[DEFAULT_DB_ALIAS]
    found = _converters_by_connection.get(wrapper)
    if found is None:
        found = [wrapper.ops.get_db_converters(column) + column.get_db_converters(wrapper)
                 for column in columns]
        _converters_by_connection[wrapper] = found
    return found


def visible_card(user, code) -> Generation | None:
    """The job with this code, as much of it as its card shows, if this member may see it."""
    sql, names, columns = _query()
    with connection.cursor() as cursor:
        cursor.execute(sql, [Generation._meta.get_field("code").get_db_prep_value(code, connection),
                             user.pk])
        row = cursor.fetchone()
    if row is None:
        return None
    values = []
    for value, column, converters in zip(row, columns, _converters(columns), strict=True):
        for convert in converters:
            value = convert(value, column, connection)
        values.append(value)
    # A model instance with only these fields loaded, as the ORM's .only() would build it.
    return Generation.from_db(connection.alias, names, values)


def _canonical(value) -> str:
    """One spelling of a value, however it was made: read back, or set in memory."""
    if isinstance(value, FieldFile):
        return value.name or ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str):
        return str(value)  # a status set in memory is a TextChoices member; str() is its value
    return repr(value)


def etag(request: HttpRequest, generation: Generation) -> str:
    """The ETag of this job's card as this request's member sees it (quoted, as sent)."""
    # A team mate's name, which their card shows, is left out: reading it with the job
    # (a join) cost every poll ~100 us on PostgreSQL, for the rare rename of a member,
    # whose open cards keep the old name until the job changes.
    seed = "\x1f".join([
        *(_canonical(getattr(generation, name)) for name in CARD_FIELDS),
        str(request.user.pk), translation.get_language() or "",
    ])
    return f'"{hashlib.blake2b(seed.encode(), digest_size=12).hexdigest()}"'


_SAMPLE_CODE = "00000000-0000-0000-0000-000000000000"


@functools.cache
def _path_around_code(name: str, script_prefix: str, urlconf: str | None) -> tuple[str, str]:
    head, _, tail = reverse(name, args=[_SAMPLE_CODE], urlconf=urlconf).partition(_SAMPLE_CODE)
    return head, tail


def job_path(generation: Generation, name: str) -> str:
    """reverse(name, args=[generation.code]), for the job URLs a card links to.

    One real reverse() per URL name (and script prefix), then the code is put
    in its place: four reverse() calls were a quarter of a card's rendering.
    """
    head, tail = _path_around_code(name, get_script_prefix(), get_urlconf())
    return f"{head}{generation.code}{tail}"


@functools.cache
def _dashboard_path(script_prefix: str, urlconf: str | None) -> str:
    return reverse("dashboard", urlconf=urlconf)


def remix_path(generation: Generation) -> str:
    """The dashboard with its form filled from this job (one reverse() per script prefix)."""
    dashboard = _dashboard_path(get_script_prefix(), get_urlconf())
    return f"{dashboard}?mode={generation.kind}&from={generation.code}"


def poll_headers(request: HttpRequest, generation: Generation) -> str:
    """hx-headers for a card in a page: its poll asks "changed since this card?"."""
    known = getattr(request, "card_etag", None)  # set by the card view for this very object
    tag = known[1] if known and known[0] is generation else etag(request, generation)
    return json.dumps({"If-None-Match": tag})
