"""The team's roles, on Django's groups and permissions, checked here and nowhere else.

- owner and admin: staff; members, keys, limits, invitations, everything in the admin;
- member: makes videos and spends credits, sees the team's work;
- guest: sees the team's shared work; cannot make videos or spend.

A role is a group; what it may do is the group's permissions (kept by ensure_groups
after every migrate, so a new permission reaches every role). Superusers may do all.
"""

from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import TextChoices
from django.utils.translation import pgettext_lazy


class Role(TextChoices):
    OWNER = "owner", pgettext_lazy("role", "Owner")
    ADMIN = "admin", pgettext_lazy("role", "Admin")
    MEMBER = "member", pgettext_lazy("role", "Member")
    GUEST = "guest", pgettext_lazy("role", "Guest")


GENERATE = "generations.generate"  # make videos, spend credits, store a key
STAFF_ROLES = (Role.OWNER, Role.ADMIN)
# The generations, auth and django-q permissions staff roles get (all of them).
_STAFF_APPS = ("generations", "auth", "django_q", "sandbox", "axes")


def ensure_groups(using="default", **kwargs) -> None:
    """Create the four roles' groups and give each its permissions (post_migrate).

    Only once every migration is applied: after `migrate generations` alone, the
    tables permissions need may not be in their final shape yet.
    """
    from django.apps import apps
    from django.contrib.auth.management import create_permissions
    from django.db import connections
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connections[using])
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        return
    for config in apps.get_app_configs():
        create_permissions(config, verbosity=0, using=using)
    generate = Permission.objects.get(codename="generate", content_type__app_label="generations")
    staff_permissions = Permission.objects.filter(content_type__app_label__in=_STAFF_APPS)
    for role in Role:
        group, _created = Group.objects.get_or_create(name=role.value)
        if role in STAFF_ROLES:
            group.permissions.set(staff_permissions)
        elif role == Role.MEMBER:
            group.permissions.set([generate])
        else:
            group.permissions.clear()


def role_of(user) -> Role | None:
    if not user.is_authenticated:
        return None
    names = {group.name for group in user.groups.all()}
    for role in Role:  # the highest role a member has
        if role.value in names:
            return role
    return Role.OWNER if user.is_superuser else None


def may_generate(user) -> bool:
    return user.is_authenticated and user.is_active and user.has_perm(GENERATE)


def may_generate_shown(request) -> bool:
    """Whether pages offer this member Remix, Try again and the forms.

    A whole page asks the database (two queries for the member's permissions) and notes
    the answer in the session; a card swapped in by htmx (a poll) reads the note, so the
    busiest answer costs no query for it. The views that spend always ask afresh
    (require_generate): a note a role change made stale only shows a button that says no.
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return False
    session = getattr(request, "session", None)
    if getattr(request, "htmx", False) and session is not None and "may_generate" in session:
        return session["may_generate"]
    allowed = may_generate(user)
    if session is not None and session.get("may_generate") != allowed:
        session["may_generate"] = allowed
    return allowed


def require_generate(user) -> None:
    """403 for a guest (or anyone without the role) at any view that spends or stores a key."""
    if not may_generate(user):
        raise PermissionDenied


@transaction.atomic
def set_role(user, role: Role) -> None:
    """Give a member this one role: its group (instead of the others), staff for owner and admin."""
    user.groups.remove(*Group.objects.filter(name__in=Role.values))
    user.groups.add(Group.objects.get_or_create(name=role.value)[0])
    user.is_staff = role in STAFF_ROLES or user.is_superuser
    user.save(update_fields=["is_staff"])
    # has_perm caches what a user may do; the next check must see the new role.
    for cache in ("_perm_cache", "_user_perm_cache", "_group_perm_cache"):
        user.__dict__.pop(cache, None)


def give_new_user_a_role(user) -> None:
    """A new account is a member; the first superuser (createsuperuser) is the owner."""
    if user.groups.filter(name__in=Role.values).exists():
        return
    if user.is_superuser and not Group.objects.filter(name=Role.OWNER, user__isnull=False).exists():
        set_role(user, Role.OWNER)
    elif user.is_superuser:
        set_role(user, Role.ADMIN)
    else:
        # Only the group: a staff flag set where the account was made (the admin) stays.
        user.groups.add(Group.objects.get_or_create(name=Role.MEMBER)[0])
