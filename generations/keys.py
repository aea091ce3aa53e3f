"""Which PixVerse keys a member may spend from, and how much of a team key's limit is left.

One seam for both the form (what to offer, what to say) and the submission
(the limit checked again under a lock, so that two jobs sent at the same moment
cannot both take the last credits).
"""

from dataclasses import dataclass

from django.db import transaction
from django.utils.translation import gettext as _

from generations.models import ApiCredential, KeyGrant

OWN = "own"


@dataclass(frozen=True)
class KeyChoice:
    """One key the member may choose in the form: their own, or a team key given to them."""

    value: str  # "own" or "team:<pk>"
    credential: ApiCredential
    grant: KeyGrant | None = None

    @property
    def label(self) -> str:
        if self.credential.broken_at:
            return _("%(key)s (refused by PixVerse)") % {"key": self.credential.label}
        return self.credential.label

    @property
    def is_team(self) -> bool:
        return self.grant is not None

    def left_this_month(self) -> int | None:
        return self.grant.left_this_month() if self.grant else None


def choices_for(user) -> list[KeyChoice]:
    """The member's own key first (if any), then the team keys given to them, by name."""
    found = []
    own = ApiCredential.objects.filter(user=user).first()
    if own is not None:
        found.append(KeyChoice(OWN, own))
    grants = KeyGrant.objects.filter(member=user).select_related("key").order_by("key__name", "key__pk")
    found += [KeyChoice(f"team:{grant.key_id}", grant.key, grant) for grant in grants]
    return found


def remembered_choice(user, choices: list[KeyChoice]) -> str:
    """The key of the member's latest job, while they may still use it; else the first one."""
    from generations.models import Generation

    latest = Generation.objects.filter(owner=user).order_by("-created").values_list(
        "team_key_id", flat=True).first()
    wanted = f"team:{latest}" if latest else OWN
    values = [choice.value for choice in choices]
    return wanted if wanted in values else (values[0] if values else "")


def choice_for_job(user, generation) -> KeyChoice | None:
    """The key a job of this member's goes on again (Try again): the team key it used,
    while they may still use it; their own key otherwise."""
    if generation.team_key_id is None:
        return None
    grant = KeyGrant.objects.filter(member=user, key_id=generation.team_key_id).select_related("key").first()
    if grant is None:
        raise LimitReached(_("You may no longer use the key this video was made with. Start it again "
                             "from Remix with another key."))
    return KeyChoice(f"team:{grant.key_id}", grant.key, grant)


class LimitReached(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def over_limit_message(choice: KeyChoice, cost: int, left: int) -> str:
    return _("This video costs %(cost)s credits; %(left)s of your %(limit)s credits are left this month "
             "on %(key)s.") % {"cost": cost, "left": left, "limit": choice.grant.limit,
                                "key": choice.credential.name}


def check_limit(choice: KeyChoice | None, cost: int | None) -> None:
    """Raise LimitReached when this video would take the member over their monthly limit."""
    if choice is None or choice.grant is None or cost is None:
        return
    left = choice.grant.left_this_month()
    if left is not None and cost > left:
        raise LimitReached(over_limit_message(choice, cost, left))


def reserve(choice: KeyChoice | None, cost: int, create):
    """Store a job (create()) only if the limit allows it, checked under the grant's lock.

    On PostgreSQL the grant's row is locked (SELECT ... FOR UPDATE) until the job is
    stored; on SQLite every write transaction is IMMEDIATE, which serializes them.
    """
    with transaction.atomic():
        if choice is not None and choice.grant is not None:
            grant = KeyGrant.objects.select_for_update().select_related("key").get(pk=choice.grant.pk)
            check_limit(KeyChoice(choice.value, grant.key, grant), cost)
        return create()
