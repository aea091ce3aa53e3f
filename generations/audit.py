"""The audit log: who changed a key, a limit or a role, who deleted a job or ran an admin action, and when.

django-auditlog keeps the entries (its LogEntry), finds the actor (AuditActorMiddleware, below)
and records the changes of the models tracked here (track(), called from GenerationsConfig.ready).
What has no model change of its own — a key's test, an admin action on jobs, a key replaced
(even by one ending in the same four characters, which changes no field that is shown) — is
recorded with record(), from the views and the admin.

No key ever reaches an entry: every field named in SECRET_FIELDS is left out of every tracked
model, and record() is given only what the portal shows anyway (a key's last four characters).

To track another model (an invitation, say), add one line to register_models():

    track(Invitation)

Its fields named in SECRET_FIELDS (a token, a hash) are left out by themselves; pass
exclude_fields=[...] for any other field that must not be seen, m2m_fields={...} for the
many-to-many fields to follow.
"""

import ipaddress
from dataclasses import dataclass

from auditlog.middleware import AuditlogMiddleware
from auditlog.models import LogEntry
from auditlog.registry import auditlog
from auditlog.signals import pre_log
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.utils.functional import Promise, SimpleLazyObject
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop

from generations import accounts

# Fields that hold a key, a key's ciphertext or hash, a password or a token: never in the log.
SECRET_FIELDS = frozenset({"encrypted_key", "key_hash", "password", "token", "token_hash", "secret"})


@dataclass(frozen=True)
class Event:
    label: Promise
    action: int  # auditlog's own action (create, update, delete, access), for its filter


# The events that are no model change of their own; record() takes one of these names.
EVENTS = {
    "key_tested": Event(_("key tested"), LogEntry.Action.ACCESS),
    "key_replaced": Event(_("key replaced"), LogEntry.Action.UPDATE),
    "job_status_read": Event(_("status read asked for (admin)"), LogEntry.Action.ACCESS),
    "job_cancelled": Event(_("job cancelled (admin)"), LogEntry.Action.UPDATE),
    "job_retried": Event(_("job tried again (admin)"), LogEntry.Action.CREATE),
}

# auditlog's own words, shown in its entries and filters; it has no Russian of its own, so
# they are marked here for our catalog.
AUDITLOG_WORDS = [gettext_noop("create"), gettext_noop("update"), gettext_noop("delete"),
                  gettext_noop("access"), gettext_noop("actor"), gettext_noop("action"),
                  gettext_noop("timestamp"), gettext_noop("remote address"), gettext_noop("Correlation ID"),
                  gettext_noop("log entry"), gettext_noop("log entries")]


def track(model: type[models.Model], *, exclude_fields=(), **options) -> None:
    """Record the model's changes (auditlog.register), its secret fields always left out."""
    secret = [field.name for field in model._meta.get_fields() if field.name in SECRET_FIELDS]
    auditlog.register(model, exclude_fields=[*secret, *exclude_fields], **options)


def _only_job_deletions(sender, action: int, **kwargs) -> bool | None:
    """Jobs are in the log for their deletion only: their creation is the job itself, and
    their changes are the workers' (through update(), which no signal reports anyway)."""
    return None if action == LogEntry.Action.DELETE else False


def register_models() -> None:
    """Every model whose changes are in the audit log. The sandbox's models are not: its keys and
    credits are simulated, and its accounts hold the hashes of their keys."""
    from generations.models import ApiCredential, Generation, Invitation, KeyGrant, TeamKey

    # Noise left out too: the balance and health the workers write, and the change times.
    key_noise = ["updated", "credit_monthly", "credit_package", "balance_read_at", "balance_due_at",
                 "balance_error", "balance_changed_at", "broken_at", "broken_error"]
    track(ApiCredential, exclude_fields=key_noise)
    track(TeamKey, exclude_fields=key_noise)  # the admin saves team keys through their proxy
    track(KeyGrant)
    # Who invited whom, in which role; when it was accepted (the token's hash is left out by track).
    track(Invitation, include_fields=["email", "role", "expires_at", "accepted_at", "accepted_by"])
    # Roles: staff and superuser flags, groups and permissions; the rest of a member is not audited.
    track(get_user_model(), include_fields=["username", "is_active", "is_staff", "is_superuser"],
          m2m_fields={"groups", "user_permissions"})
    track(Group, include_fields=["name"], m2m_fields={"permissions"})
    track(Generation, include_fields=["code", "owner", "kind", "status", "prompt", "credits", "video_id",
                                      "is_private"])
    pre_log.connect(_only_job_deletions, sender=Generation, dispatch_uid="audit-only-job-deletions")


def record(actor, action: str, target: models.Model, **details) -> LogEntry:
    """An event on target that is no model change of its own (see EVENTS), by actor, now.

    details: what else to say (JSON values); never a key, only what the pages show.
    """
    event = EVENTS[action]
    return LogEntry.objects.log_create(
        target, force_log=True, action=event.action, actor=actor,
        actor_email=getattr(actor, "email", None) or None,
        additional_data={"event": action, **details},
    )


def event_label(entry: LogEntry) -> str:
    """What happened, in words: the portal's event, or auditlog's action."""
    event = EVENTS.get(_details(entry).get("event"))
    return str(event.label) if event else entry.get_action_display()


def _details(entry: LogEntry) -> dict:
    return entry.additional_data if isinstance(entry.additional_data, dict) else {}


# What record()'s details are called on the audit page.
DETAIL_LABELS = {
    "accepted": _("accepted by PixVerse"),
    "done": _("done"),
    "old": _("before"),
    "new": _("after"),
    "new_job": _("new job"),
}


def describe(entry: LogEntry) -> str:
    """An entry's changes and details in words: 'monthly limit: 500 → 800; done: yes'."""
    model = entry.content_type.model_class()
    order = [field.name for field in model._meta.get_fields()] if model else []
    parts = []
    changes = sorted(entry.changes_dict.items(),
                     key=lambda item: order.index(item[0]) if item[0] in order else len(order))
    for name, change in changes:
        if isinstance(change, dict):  # a many-to-many field: what was added or removed
            said = _("%(field)s: added %(objects)s") if change.get("operation") == "add" else _(
                "%(field)s: removed %(objects)s")
            parts.append(said % {"field": _field_label(model, name),
                                 "objects": ", ".join(change.get("objects", []))})
        else:
            old, new = (_shown(value) for value in change)
            parts.append(f"{_field_label(model, name)}: {old} → {new}")
    for name, value in _details(entry).items():
        if name != "event":
            parts.append(f"{DETAIL_LABELS.get(name, name)}: {_shown(value)}")
    return "; ".join(parts)


def _field_label(model, name: str) -> str:
    try:
        return str(model._meta.get_field(name).verbose_name)
    except (AttributeError, FieldDoesNotExist):  # a model or field gone since
        return name


def _shown(value) -> str:
    if value in (None, "None", ""):
        return "—"
    if isinstance(value, bool) or value in ("True", "False"):
        return str(_("yes") if value in (True, "True") else _("no"))
    return str(value)


class AuditActorMiddleware(AuditlogMiddleware):
    """auditlog's middleware (the signed-in member is each entry's actor), with the client's
    address read as the rest of the portal reads it (behind PORTAL_TRUSTED_PROXY_COUNT proxies):
    auditlog's own takes the leftmost X-Forwarded-For entry, which the client writes itself."""

    @staticmethod
    def _get_actor(request):
        # Read when an entry is written, not with every request: most requests write none, and
        # reading the member costs the session's queries where nothing else reads it (/healthz).
        return SimpleLazyObject(lambda: AuditlogMiddleware._get_actor(request))

    @staticmethod
    def _get_remote_addr(request) -> str | None:
        address = accounts.client_address(request)
        try:
            return str(ipaddress.ip_address(address or ""))
        except ValueError:  # a proxy's header that is no address: the entry is written without one
            return None

    @staticmethod
    def _get_remote_port(request) -> None:
        return None
