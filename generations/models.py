"""The portal's data."""

import hashlib
import math
import secrets
import uuid
from datetime import UTC, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models, transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables

from generations import catalog, crypto
from generations.roles import Role

if TYPE_CHECKING:
    from generations.pixverse import Balance, PixVerseClient, VideoRequest
    from generations.video_facts import VideoFacts


class RateLimitSlot(models.Model):
    """The next free request slot of one API key, shared by every process.

    See generations/ratelimit.py. The key itself is never stored, only its hash.
    """

    key_hash = models.CharField(max_length=64, primary_key=True)
    # Seconds since the epoch; a float keeps sub-second slots exact enough.
    next_at = models.FloatField(default=0.0)

    def __str__(self) -> str:
        return f"{self.key_hash[:12]}… next at {self.next_at:.3f}"


class ApiCredential(models.Model):
    """A PixVerse key, encrypted at rest; only its last four characters show.

    A member's own key has its member; a team key (staff add it, members they
    allow spend from it, see KeyGrant) has none, and a name instead.
    The key is decrypted only to build a PixVerseClient (client()); nothing
    else reads it, so it cannot reach a page, a log line or a task argument.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="pixverse_credential",
        verbose_name=_("member"), null=True, blank=True,
    )
    name = models.CharField(_("name"), max_length=100, blank=True,
                            help_text=_("A team key's name, as members see it in the form."))
    concurrency = models.PositiveSmallIntegerField(
        _("videos at once"), null=True, blank=True,
        help_text=_("The PixVerse plan's limit of videos generating at once, if known."))
    default_monthly_limit = models.PositiveIntegerField(
        _("default monthly limit"), null=True, blank=True,
        help_text=_("Credits per month for members given this key without a limit of their own; "
                    "empty: no limit."))
    grant_new_members = models.BooleanField(
        _("give to new members"), default=False,
        help_text=_("Every new member may use this key, with the default monthly limit."))
    # PixVerse refused the key (invalid key): when, and what it said. A new key clears it.
    broken_at = models.DateTimeField(_("refused by PixVerse"), null=True, blank=True, editable=False)
    broken_error = models.CharField(_("refusal"), max_length=200, blank=True, editable=False)
    encrypted_key = models.TextField(editable=False)
    last4 = models.CharField(_("key ends with"), max_length=4, editable=False)
    verified_at = models.DateTimeField(_("verified"), null=True, blank=True)
    created = models.DateTimeField(_("added"), auto_now_add=True)
    updated = models.DateTimeField(_("changed"), auto_now=True)
    # The key's one-way name (generations/ratelimit.py): what its jobs, its
    # request schedule and its balance are filed under. Members who store the
    # same key share all three.
    key_hash = models.CharField(max_length=64, db_index=True, editable=False, default="")
    # The balance, read in the background (generations/jobs.py) so that no page
    # waits on PixVerse for it; shown with its age.
    credit_monthly = models.IntegerField(null=True, blank=True, editable=False)
    credit_package = models.IntegerField(null=True, blank=True, editable=False)
    balance_read_at = models.DateTimeField(_("balance read"), null=True, blank=True, editable=False)
    # Set when someone wants a fresh balance; the scheduler reads it and clears this.
    balance_due_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Why the last balance read failed (a PixVerseError kind), empty after a good read.
    balance_error = models.CharField(max_length=32, blank=True, editable=False)
    # When a job spent or got back credits: a balance read before it is stale.
    # It is read again when someone looks, not after every job.
    balance_changed_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("PixVerse key")
        verbose_name_plural = _("PixVerse keys")

    def __str__(self) -> str:
        return f"{self.name} …{self.last4}" if self.is_team else f"…{self.last4}"

    def __repr__(self) -> str:
        return f"<ApiCredential user={self.user_id} …{self.last4}>"

    @property
    def masked(self) -> str:
        return f"••••{self.last4}"

    @property
    def is_team(self) -> bool:
        return self.user_id is None

    @property
    def label(self) -> str:
        """How the form names the key: 'Studio key ••••1234' or 'Your own key ••••ABCD'."""
        if self.is_team:
            return f"{self.name} {self.masked}"
        return _("Your own key %(masked)s") % {"masked": self.masked}

    @property
    def job_label(self) -> str:
        """What a job stores as the key that paid: words of no language ('Studio key ••••1234',
        or '••••ABCD' for a member's own key, which paid_with_text puts into words when shown)."""
        return f"{self.name} {self.masked}" if self.is_team else self.masked

    @classmethod
    def mark_broken(cls, key_hash: str, error: str) -> int:
        """PixVerse refused this key: every copy of it says so, from the first refusal on."""
        return cls.objects.filter(key_hash=key_hash, broken_at__isnull=True).update(
            broken_at=timezone.now(), broken_error=error[:200])

    @classmethod
    def mark_working(cls, key_hash: str) -> int:
        return cls.objects.filter(key_hash=key_hash, broken_at__isnull=False).update(
            broken_at=None, broken_error="")

    @sensitive_variables("raw_key")
    def set_key(self, raw_key: str) -> None:
        from generations.ratelimit import key_fingerprint

        raw_key = raw_key.strip()
        self.encrypted_key = crypto.encrypt(raw_key)
        self.last4 = raw_key[-4:]
        self.broken_at, self.broken_error = None, ""
        if key_fingerprint(raw_key) != self.key_hash:
            self.key_hash = key_fingerprint(raw_key)
            self.credit_monthly = self.credit_package = self.balance_read_at = None
            self.balance_error = ""
            self.balance_due_at = timezone.now()

    def client(self, **kwargs) -> "PixVerseClient":
        from generations.pixverse import PixVerseClient

        return PixVerseClient(crypto.decrypt(self.encrypted_key), **kwargs)

    # --- The balance, kept per key --------------------------------------------------

    @property
    def balance(self) -> "Balance | None":
        from generations.pixverse import Balance

        if self.balance_read_at is None:
            return None
        return Balance(account_id=0, credit_monthly=self.credit_monthly or 0,
                       credit_package=self.credit_package or 0)

    def balance_age(self) -> timedelta | None:
        return None if self.balance_read_at is None else timezone.now() - self.balance_read_at

    @property
    def balance_outdated(self) -> bool:
        """Jobs have spent or got back credits since the balance was read."""
        return self.balance_changed_at is not None and (
            self.balance_read_at is None or self.balance_changed_at > self.balance_read_at)

    @classmethod
    def balance_changed(cls, key_hash: str) -> None:
        cls.objects.filter(key_hash=key_hash).update(balance_changed_at=timezone.now())

    @classmethod
    def want_balance(cls, key_hash: str) -> int:
        """Ask the scheduler for a fresh balance of this key (one read, however often asked)."""
        return cls.objects.filter(key_hash=key_hash, balance_due_at__isnull=True).update(
            balance_due_at=timezone.now())

    @classmethod
    def claim_balance_read(cls, key_hash: str) -> bool:
        return cls.objects.filter(key_hash=key_hash, balance_due_at__lte=timezone.now()).update(
            balance_due_at=None) > 0

    @classmethod
    def record_balance(cls, key_hash: str, balance: "Balance | None", error: str = "") -> None:
        """File a balance read under every member's copy of this key."""
        fields = {"balance_error": error}
        if balance is not None:
            fields.update(credit_monthly=balance.credit_monthly, credit_package=balance.credit_package,
                          balance_read_at=timezone.now(), balance_due_at=None)
        cls.objects.filter(key_hash=key_hash).update(**fields)

    def reencrypt(self) -> bool:
        """Encrypt with the newest key; True when the stored value changed."""
        token = crypto.reencrypt(self.encrypted_key)
        if token == self.encrypted_key:
            return False
        ApiCredential.objects.filter(pk=self.pk).update(encrypted_key=token)
        self.encrypted_key = token
        return True


class TeamKeyManager(models.Manager):
    def get_queryset(self):
        return super().get_queryset().filter(user__isnull=True)


class TeamKey(ApiCredential):
    """The team's keys (ApiCredential rows without a member), for the admin."""

    objects = TeamKeyManager()

    class Meta:
        proxy = True
        verbose_name = _("team key")
        verbose_name_plural = _("team keys")


def month_start(now=None):
    """The first moment of this calendar month (UTC): monthly limits start again then."""
    now = (now or timezone.now()).astimezone(UTC)
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


class KeyGrant(models.Model):
    """A member may spend from a team key, up to a monthly limit of credits."""

    member = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="key_grants",
                               verbose_name=_("member"))
    key = models.ForeignKey(ApiCredential, on_delete=models.CASCADE, related_name="grants",
                            limit_choices_to={"user__isnull": True}, verbose_name=_("team key"))
    monthly_limit = models.PositiveIntegerField(
        _("monthly limit"), null=True, blank=True,
        help_text=_("Credits per calendar month (UTC); empty: the key's default, or no limit."))
    created = models.DateTimeField(_("given"), auto_now_add=True)

    class Meta:
        verbose_name = _("team key for a member")
        verbose_name_plural = _("team keys for members")
        constraints = [models.UniqueConstraint(fields=["member", "key"], name="one_grant_per_member_and_key")]

    def __str__(self) -> str:
        return f"{self.member} → {self.key}"

    @property
    def limit(self) -> int | None:
        return self.monthly_limit if self.monthly_limit is not None else self.key.default_monthly_limit

    def spent_this_month(self) -> int:
        """Credits this member's jobs on this key hold this month: spent, or reserved while running."""
        jobs = Generation.objects.filter(owner_id=self.member_id, team_key_id=self.key_id,
                                         created__gte=month_start())
        return jobs.holding_credits().aggregate(total=models.Sum("credits"))["total"] or 0

    def left_this_month(self) -> int | None:
        return None if self.limit is None else max(0, self.limit - self.spent_this_month())


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def _give_new_members_their_team_keys(sender, instance, created: bool, **kwargs) -> None:
    """A new account gets its role (generations/roles.py) and the team keys meant for everyone."""
    if created and not kwargs.get("raw"):
        from generations import roles

        roles.give_new_user_a_role(instance)
        KeyGrant.objects.bulk_create(
            [KeyGrant(member=instance, key=key) for key in TeamKey.objects.filter(grant_new_members=True)],
            ignore_conflicts=True)


class GenerationQuerySet(models.QuerySet):
    def visible_to(self, user) -> "GenerationQuerySet":
        """What a member may see: the team's shared jobs and their own private ones."""
        return self.filter(models.Q(is_private=False) | models.Q(owner=user))

    def holding_credits(self) -> "GenerationQuerySet":
        """Jobs whose credits count against a limit: reserved from creation on, given back
        when PixVerse refunds them (moderation) or never took the job."""
        never_taken = (models.Q(status__in=[Generation.Status.FAILED, Generation.Status.TIMED_OUT,
                                            Generation.Status.CANCELLED])
                       & models.Q(video_id__isnull=True, maybe_submitted=False))
        return self.exclude(status=Generation.Status.MODERATED).exclude(never_taken)


def _source_path(generation: "Generation", filename: str) -> str:
    return f"sources/{generation.code}/{filename}"


def _video_path(generation: "Generation", filename: str) -> str:
    return f"videos/{generation.code}/{filename}"


def _poster_path(generation: "Generation", filename: str) -> str:
    return f"posters/{generation.code}/{filename}"


class Generation(models.Model):
    """One video a member asked for, from submission to stored copy.

    Status changes only through the methods below. Each is one conditional
    UPDATE (healthchecks' sendalerts pattern): it applies only if the row is
    still in a status the change may start from, and says whether it did, so
    two workers can never both move one job, on SQLite and PostgreSQL alike.
    """

    class Kind(models.TextChoices):
        TEXT = "text", _("Text to video")
        IMAGE = "image", _("Image to video")
        TRANSITION = "transition", _("Transition")
        EXTEND = "extend", _("Extended video")
        SOUND_EFFECT = "sound_effect", _("Sound effect")
        LIP_SYNC = "lip_sync", _("Lip sync")
        FUSION = "fusion", _("Fusion")

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SUBMITTING = "submitting", _("Submitting")
        RUNNING = "running", _("Generating")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")
        MODERATED = "moderated", _("Blocked by moderation")
        TIMED_OUT = "timed_out", _("Timed out")
        CANCELLED = "cancelled", _("Cancelled")

    class Reason(models.TextChoices):
        """Why a job failed or waits. Stored as a code and put into words when
        shown, so each member reads it in their own language."""

        NO_KEY = "no_key", _("Add your PixVerse API key, then try again.")
        INVALID_KEY = "invalid_key", _("PixVerse did not accept your API key. Check it on the API key page.")
        NO_CREDITS = "no_credits", _("Your PixVerse account has no credits left.")
        MODERATED = "moderated", _("PixVerse's content moderation refused this prompt or image.")
        MODERATION_BLOCKED = "moderation_blocked", _(
            "PixVerse's content moderation blocked this video; its credits are refunded."
        )
        REFUSED = "refused", _("PixVerse refused the request: %(detail)s")
        UNREACHABLE = "unreachable", _("PixVerse could not be reached; please try again later.")
        SERVER_ERROR = "server_error", _("PixVerse had an error (%(code)s); please try again later.")
        GENERATION_FAILED = "generation_failed", _("PixVerse could not generate this video.")
        DELETED = "deleted", _("The video was deleted at PixVerse.")
        TIMED_OUT = "timed_out", _("PixVerse did not finish this video in time.")
        WAITING = "waiting", _("Waiting: your PixVerse plan's limit of videos at once is reached.")
        RETRYING = "retrying", _("PixVerse did not answer; trying again.")
        MAYBE_MADE = "maybe_made", _(
            "PixVerse did not answer in time, but it may have made this video. "
            "Try again asks for the same video and is not billed twice."
        )
        NOT_FOUND = "not_found", _("PixVerse does not know this video (any more).")
        COPY_TOO_LARGE = "copy_too_large", _(
            "The video is larger than the portal may store; it plays from PixVerse while its link lasts."
        )

    ACTIVE = (Status.QUEUED, Status.SUBMITTING, Status.RUNNING)
    TERMINAL = (Status.DONE, Status.FAILED, Status.MODERATED, Status.TIMED_OUT, Status.CANCELLED)

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                              related_name="generations", verbose_name=_("owner"))
    kind = models.CharField(_("kind"), max_length=16, choices=Kind)
    prompt = models.TextField(_("prompt"), max_length=2048)
    negative_prompt = models.TextField(_("negative prompt"), max_length=2048, blank=True)
    model = models.CharField(_("model"), max_length=16)
    quality = models.CharField(_("quality"), max_length=8)
    duration = models.PositiveSmallIntegerField(_("duration (s)"))
    aspect_ratio = models.CharField(_("aspect ratio"), max_length=8, blank=True)
    motion_mode = models.CharField(_("motion mode"), max_length=8, blank=True)
    seed = models.BigIntegerField(_("seed"), null=True, blank=True)
    style = models.CharField(_("style"), max_length=16, blank=True, choices=catalog.STYLE_LABELS.items())
    camera_movement = models.CharField(_("camera movement"), max_length=16, blank=True,
                                       choices=catalog.CAMERA_LABELS.items())
    generate_audio = models.BooleanField(_("native sound"), default=False)
    multi_clip = models.BooleanField(_("multi-clip"), default=False)
    thinking_type = models.CharField(_("thinking"), max_length=8, blank=True)
    # An effect template of the paying account (its name as PixVerse listed it, for the cards).
    template_id = models.BigIntegerField(_("effect template"), null=True, blank=True)
    template_name = models.CharField(_("effect template name"), max_length=100, blank=True)
    # A sound PixVerse adds to the video (older models), described in words.
    sound_effect_content = models.TextField(_("sound effect"), max_length=2048, blank=True)
    source_image = models.FileField(_("source image"), upload_to=_source_path, blank=True)
    # Extend, sound effect and lip sync of a video of ours: the job that made it, and its
    # PixVerse id (kept should the job be deleted); an uploaded video is an input instead.
    source_generation = models.ForeignKey(
        "self", verbose_name=_("made from"), on_delete=models.SET_NULL, null=True, blank=True,
        related_name="derived")
    source_video_id = models.BigIntegerField(_("PixVerse id of the source video"), null=True, blank=True)
    keep_original_sound = models.BooleanField(_("original sound kept"), default=False)
    tts_speaker = models.CharField(_("voice"), max_length=64, blank=True)
    # Inputs (SourceInput) still to upload before the generate call: 0 when none are left.
    uploads_pending = models.PositiveSmallIntegerField(default=0, editable=False)
    credits = models.PositiveIntegerField(_("credits"))
    # The prompts case-folded, for search: SQLite's LIKE folds only ASCII, and
    # a team that writes in Russian must find "Маяк" by typing "маяк".
    prompt_folded = models.TextField(editable=False, blank=True)
    is_private = models.BooleanField(
        _("private"), default=False, help_text=_("Private jobs are hidden from the rest of the team.")
    )

    # PixVerse's side. The trace id is chosen when the row is created, before
    # any call: resending the submission with it is never billed twice.
    trace_id = models.UUIDField(_("trace id"), default=uuid.uuid4, editable=False)
    img_id = models.BigIntegerField(_("PixVerse image id"), null=True, blank=True)
    video_id = models.BigIntegerField(_("PixVerse video id"), null=True, blank=True)
    video_url = models.URLField(_("PixVerse video URL"), max_length=2000, blank=True)
    video_file = models.FileField(_("stored video"), upload_to=_video_path, blank=True)
    # Read from our copy (generations/video_facts.py) when it is stored. The poster
    # and the picture's size let a card hold its place and show a frame before
    # any of the video is fetched. All empty for a file PyAV could not read.
    poster = models.FileField(_("poster frame"), upload_to=_poster_path, blank=True)
    video_seconds = models.FloatField(_("video length (s)"), null=True, blank=True)
    video_width = models.PositiveIntegerField(_("width (px)"), null=True, blank=True)
    video_height = models.PositiveIntegerField(_("height (px)"), null=True, blank=True)
    has_audio = models.BooleanField(_("sound"), null=True, blank=True)
    # When the facts were read, or found unreadable: the repair pass
    # (jobs.housekeeping) reads them for stored videos that have none yet.
    facts_read_at = models.DateTimeField(null=True, blank=True, editable=False)

    status = models.CharField(_("status"), max_length=12, choices=Status, default=Status.QUEUED)
    error_reason = models.CharField(_("reason"), max_length=20, choices=Reason, blank=True)
    error_code = models.IntegerField(_("error code"), null=True, blank=True)
    # PixVerse's own words (its ErrMsg), where it gave any.
    error_message = models.TextField(_("error detail"), blank=True)

    created = models.DateTimeField(_("created"), default=timezone.now)
    submitted_at = models.DateTimeField(_("submitted"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    # Answered failures of the generate call (a 5xx inside PixVerse's envelope);
    # waiting for the plan's limit and unanswered calls are not counted.
    submit_attempts = models.PositiveSmallIntegerField(default=0)
    # Steps in a row that got no usable answer (timeouts, gateway pages, a
    # video not found yet, a failed copy): what the backoff grows with.
    misses = models.PositiveSmallIntegerField(default=0)
    poll_count = models.PositiveIntegerField(_("status reads"), default=0)
    # When a status read was last asked for out of turn (PixVerse's webhook, staff's
    # "read now"): a read in flight at that moment is followed by another at once.
    read_asked_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The last status read that found the video still running: with finished_at,
    # it brackets when the video was really ready (jobs.learned_duration).
    last_read_at = models.DateTimeField(null=True, blank=True, editable=False)
    # A generate call may have reached PixVerse without its answer reaching us:
    # the job may exist and be billed there. Never resubmitted under a new trace id.
    maybe_submitted = models.BooleanField(default=False)
    # Seconds after its creation by which the video is expected to be shown
    # (jobs.expected_seconds), for the running card's progress bar. Fixed at
    # submission, so the card stays the same between polls (its ETag) while
    # the browser moves the bar.
    expected_seconds = models.PositiveIntegerField(null=True, blank=True, editable=False)
    copy_attempts = models.PositiveSmallIntegerField(default=0)

    # The key that pays (its one-way name, ApiCredential.key_hash): jobs are
    # scheduled per key, at 1 request/s shared by everyone who uses it.
    key_hash = models.CharField(max_length=64, blank=True, editable=False)
    # The team key that pays, when it is one (its monthly limits count this job), and
    # the key's name as it was, which stays when the key is replaced or removed.
    team_key = models.ForeignKey(ApiCredential, on_delete=models.SET_NULL, null=True, blank=True,
                                 related_name="team_jobs", editable=False, verbose_name=_("team key"))
    paid_with = models.CharField(_("paid with"), max_length=120, blank=True, editable=False)
    # When the job's next step is due: its submission, its next status read, or
    # the copy of its video. None: nothing left to do.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # A scheduler's short lease on the step in flight, renewed while it runs;
    # when it lapses (the worker died) another scheduler takes the step over.
    claimed_until = models.DateTimeField(null=True, blank=True)
    claimed_by = models.UUIDField(null=True, blank=True, editable=False)

    objects = GenerationQuerySet.as_manager()

    class Meta:
        ordering = ["-created"]
        indexes = [
            models.Index(fields=["owner", "-created"]),
            # The team history: newest first over everyone's jobs.
            models.Index(fields=["-created"], name="generation_newest"),
            # The scheduler's questions "what is due?" and "what is due on this
            # key?" read only the few rows with work left, however long the
            # history grows.
            models.Index(
                fields=["next_attempt_at"], name="generation_due",
                condition=models.Q(next_attempt_at__isnull=False),
            ),
            models.Index(
                fields=["key_hash", "next_attempt_at"], name="generation_key_due",
                condition=models.Q(next_attempt_at__isnull=False),
            ),
        ]
        verbose_name = _("generation")
        verbose_name_plural = _("generations")
        # The admin's actions spend a member's credits or change their job:
        # viewing jobs is not enough for them (owners and admins have these).
        permissions = [
            ("generate", _("Can make videos and spend credits")),
            ("retry_generation", _("Can try a job again (billed to its owner)")),
            ("manage_generation", _("Can cancel a job or have its status read now")),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.prompt[:40]}"

    def save(self, *args, **kwargs) -> None:
        self.prompt_folded = f"{self.prompt}\n{self.negative_prompt}".casefold()
        if self._state.adding:
            # A new job goes on the key of its owner unless one was chosen, and is due at once.
            if self.team_key_id and not self.key_hash:
                self.key_hash, self.paid_with = self.team_key.key_hash, self.team_key.job_label
            if not self.key_hash:
                own = ApiCredential.objects.filter(user_id=self.owner_id).first()
                if own is not None:
                    self.key_hash, self.paid_with = own.key_hash, own.job_label
            if self.next_attempt_at is None and self.status == self.Status.QUEUED:
                self.next_attempt_at = self.created
        if kwargs.get("update_fields") is not None and "prompt" in kwargs["update_fields"]:
            kwargs["update_fields"] = {*kwargs["update_fields"], "prompt_folded"}
        super().save(*args, **kwargs)

    # The labels straight from the choices' enums: get_FOO_display() rebuilds a
    # dict of the field's choices on every call, hashing each lazily translated
    # label -- a tenth of a job card's rendering time (275 -> 248 us).
    @property
    def kind_label(self) -> str:
        return self.Kind(self.kind).label if self.kind in self.Kind.values else self.kind

    @property
    def status_label(self) -> str:
        return self.Status(self.status).label if self.status in self.Status.values else self.status

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def reason_text(self) -> str:
        """Why the job failed or waits, in plain words of the current language."""
        if not self.error_reason:
            return self.error_message
        if self.error_reason == self.Reason.INVALID_KEY and self.team_key_id:
            # Not the member's to fix: staff see the broken key in the admin.
            return _("PixVerse refuses the team key this video was to be paid with (%(key)s). "
                     "Staff can replace it; meanwhile choose another key.") % {"key": self.paid_with}
        label = str(self.Reason(self.error_reason).label)
        return label % {"detail": self.error_message, "code": self.error_code or "?"}

    @property
    def can_retry(self) -> bool:
        return self.status in self.TERMINAL and self.status != self.Status.DONE

    def video_request(self) -> "VideoRequest":
        from generations.pixverse import VideoRequest

        return VideoRequest(
            prompt=self.prompt, duration=self.duration, quality=self.quality, model=self.model,
            aspect_ratio=self.aspect_ratio or None, motion_mode=self.motion_mode or None,
            negative_prompt=self.negative_prompt or None, seed=self.seed, style=self.style or None,
            camera_movement=self.camera_movement or None,
            # Switches are sent only when on: a model without them refuses even "false".
            generate_audio_switch=self.generate_audio or None,
            generate_multi_clip_switch=self.multi_clip or None,
            thinking_type=self.thinking_type or None,
            template_id=self.template_id,
            sound_effect_switch=True if self.sound_effect_content else None,
            sound_effect_content=self.sound_effect_content or None,
        )

    # --- Status changes -----------------------------------------------------------
    #
    # Every step of the background work (generations/jobs.py) is claimed with
    # claim_step, done, and released by the change it made, which clears the
    # claim. Each change is guarded by the row's status and, when a scheduler
    # holds a claim, by its token, so a scheduler whose lease lapsed and was
    # taken over cannot overwrite the newer one's work.

    def _change(self, allowed_from, *, token=None, **fields) -> bool:
        """Apply fields if the row's status is still one of allowed_from; True if it was."""
        rows = Generation.objects.filter(pk=self.pk, status__in=allowed_from)
        if token is not None:
            rows = rows.filter(claimed_by=token)
        changed = rows.update(**fields)
        if changed:
            self.refresh_from_db()
        return changed == 1

    @staticmethod
    def _unclaimed(now) -> models.Q:
        return models.Q(claimed_until__isnull=True) | models.Q(claimed_until__lt=now)

    def claim_step(self, token, lease: timedelta, *, due_only: bool = True) -> bool:
        """Take this job's due step (any kind) for one scheduler until the lease ends.

        A queued job becomes "submitting" here; one that already was, and whose
        claim lapsed, was being sent when its worker died: PixVerse may have it.
        due_only=False takes a step before its time (a direct call: admin, tests).
        """
        now = timezone.now()
        claimable = Generation.objects.filter(self._unclaimed(now), pk=self.pk)
        if due_only:
            claimable = claimable.filter(next_attempt_at__lte=now)
        fields = {"claimed_until": now + lease, "claimed_by": token}
        if self.status in (self.Status.QUEUED, self.Status.SUBMITTING):
            lapsed = models.Q(status=self.Status.SUBMITTING, claimed_by__isnull=False)
            fields["maybe_submitted"] = models.Case(
                # The generate call was the step: nothing was left to upload.
                models.When(lapsed & (models.Q(kind="image", img_id__isnull=False)
                                      | ~models.Q(kind="image") & models.Q(uploads_pending=0)),
                            then=True),
                default=models.F("maybe_submitted"),
            )
            fields["status"] = self.Status.SUBMITTING
            claimable = claimable.filter(status__in=[self.Status.QUEUED, self.Status.SUBMITTING])
        else:
            claimable = claimable.filter(status=self.status)
        claimed = claimable.update(**fields) == 1
        if claimed:
            self.refresh_from_db()
        return claimed

    @classmethod
    def renew_claims(cls, pks, token, lease: timedelta) -> int:
        return cls.objects.filter(pk__in=pks, claimed_by=token).update(
            claimed_until=timezone.now() + lease)

    def release(self, token, next_at=None) -> bool:
        """Give the step back unchanged (nothing was sent), due again at next_at."""
        fields = {"claimed_until": None, "claimed_by": None}
        if next_at is not None:
            fields["next_attempt_at"] = next_at
        if self.status == self.Status.SUBMITTING:
            fields["status"] = models.Case(
                models.When(maybe_submitted=False, then=models.Value(self.Status.QUEUED)),
                default=models.Value(self.Status.SUBMITTING),
            )
        return Generation.objects.filter(pk=self.pk, claimed_by=token).update(**fields) == 1

    def record_image(self, img_id: int, token=None) -> bool:
        """The source image is uploaded; the generate call is due at once."""
        return self._change(
            [self.Status.SUBMITTING], token=token, img_id=img_id, next_attempt_at=timezone.now(),
            claimed_until=None, claimed_by=None, misses=0,
        )

    def record_upload(self, source: "SourceInput", pixverse_id: int, token=None) -> bool:
        """One input is uploaded (its img_id or media_id); the next step is due at once."""
        with transaction.atomic():
            changed = self._change(
                [self.Status.SUBMITTING], token=token, uploads_pending=models.F("uploads_pending") - 1,
                next_attempt_at=timezone.now(), claimed_until=None, claimed_by=None, misses=0,
            )
            if changed:
                SourceInput.objects.filter(pk=source.pk).update(pixverse_id=pixverse_id)
        return changed

    def mark_submitted(self, video_id: int, first_read_at, token=None,
                       expected: timedelta | None = None, credits: int | None = None) -> bool:
        """PixVerse took the job; expected: how long such videos take from now;
        credits: what PixVerse said it charged, when it said (it wins over our estimate)."""
        now = timezone.now()
        fields = {}
        if credits is not None:
            fields["credits"] = credits
        if expected is not None:
            fields["expected_seconds"] = math.ceil((now - self.created + expected).total_seconds())
        return self._change(
            [self.Status.SUBMITTING], token=token, status=self.Status.RUNNING, video_id=video_id,
            submitted_at=now, next_attempt_at=first_read_at, claimed_until=None,
            claimed_by=None, misses=0, error_reason="", error_message="", **fields,
        )

    def requeue(self, retry_at, reason: "Generation.Reason", *, token=None, counted: bool = False,
                missed: bool = False, sent: bool = True) -> bool:
        """Back to the queue until retry_at, keeping its place in the key's line.

        counted: PixVerse answered with a passing error (one of the tries
        PORTAL_MAX_SUBMIT_ATTEMPTS allows); missed: no usable answer came (the
        backoff grows), and unless the request was surely never sent, PixVerse
        may have the job: it stays "submitting", resent only with its trace id.
        """
        fields = {"next_attempt_at": retry_at, "claimed_until": None, "claimed_by": None,
                  "error_reason": reason, "error_message": ""}
        if counted:
            fields["submit_attempts"] = models.F("submit_attempts") + 1
        fields["misses"] = models.F("misses") + 1 if missed else 0
        if missed and sent:
            fields["maybe_submitted"] = True
        else:
            fields.update(status=models.Case(
                models.When(maybe_submitted=False, then=models.Value(self.Status.QUEUED)),
                default=models.Value(self.Status.SUBMITTING),
            ))
        return self._change([self.Status.SUBMITTING], token=token, **fields)

    @classmethod
    def wake_waiting(cls, key_hash: str) -> int:
        """A video of this key has finished: jobs waiting for the plan's limit may go now."""
        return cls.objects.filter(
            key_hash=key_hash, status__in=[cls.Status.QUEUED, cls.Status.SUBMITTING],
            error_reason=cls.Reason.WAITING, next_attempt_at__gt=timezone.now(),
        ).update(next_attempt_at=timezone.now())

    def record_status_read(self, next_read_at, *, token=None, missed: bool = False) -> bool:
        """A status read found the video still running (or got no usable answer: missed).

        A read asked for since this row was loaded for the read (read_soon: a
        webhook that came while the read was in flight) is not overwritten by
        next_read_at: the next read is due at once.
        """
        now = timezone.now()
        asked_since = (models.Q(read_asked_at__gt=self.read_asked_at) if self.read_asked_at
                       else models.Q(read_asked_at__isnull=False))
        next_attempt_at = models.Case(models.When(asked_since, then=models.Value(now)),
                                      default=models.Value(next_read_at),
                                      output_field=models.DateTimeField())
        fields = {} if missed else {"last_read_at": now}
        return self._change(
            [self.Status.RUNNING], token=token, poll_count=models.F("poll_count") + 1,
            next_attempt_at=next_attempt_at, claimed_until=None, claimed_by=None,
            misses=models.F("misses") + 1 if missed else 0, **fields,
        )

    def postpone_read(self, until) -> bool:
        """Move a running job's next status read later, without counting a read."""
        return Generation.objects.filter(
            self._unclaimed(timezone.now()), pk=self.pk, status=self.Status.RUNNING,
        ).update(next_attempt_at=until) == 1

    def mark_done(self, video_url: str, token=None) -> bool:
        """PixVerse made the video; the copy into our storage is due at once."""
        return self._change(
            [self.Status.RUNNING], token=token, status=self.Status.DONE, video_url=video_url,
            finished_at=timezone.now(), next_attempt_at=timezone.now(), claimed_until=None,
            claimed_by=None, poll_count=models.F("poll_count") + 1, misses=0,
            error_reason="", error_code=None, error_message="",
        )

    def mark_failed(self, reason: "Generation.Reason", *, detail: str = "", code: int | None = None,
                    status: str = Status.FAILED, token=None, read: bool = False) -> bool:
        """End the job unsuccessfully: failed, moderated or timed out, and say why.

        read: a status read said so (it counts among the job's reads).
        """
        assert status in (self.Status.FAILED, self.Status.MODERATED, self.Status.TIMED_OUT)
        extra = {"poll_count": models.F("poll_count") + 1} if read else {}
        return self._change(
            self.ACTIVE, token=token, status=status, error_reason=reason, error_code=code,
            error_message=detail, finished_at=timezone.now(), next_attempt_at=None,
            claimed_until=None, claimed_by=None, **extra,
        )

    def cancel(self) -> bool:
        """Stop caring about the job. A running one may still finish (and bill) at PixVerse."""
        return self._change(
            self.ACTIVE, status=self.Status.CANCELLED, finished_at=timezone.now(),
            next_attempt_at=None, claimed_until=None, claimed_by=None,
        )

    def attach_video_file(self, name: str, token=None, facts: "VideoFacts | None" = None,
                          poster: str = "") -> bool:
        """Our copy is stored, with what was read from it: nothing is left to do for this job.

        The facts come in the same change as the file: the card stops polling
        once the file is there, so a poster stored later would not reach it.
        """
        return self._change([self.Status.DONE], token=token, video_file=name, next_attempt_at=None,
                            claimed_until=None, claimed_by=None, misses=0, error_reason="",
                            **self._facts_fields(facts, poster))

    def record_video_facts(self, facts: "VideoFacts | None", poster: str = "", token=None) -> bool:
        """The facts of a copy stored without them (the repair pass); only once per job."""
        rows = Generation.objects.filter(pk=self.pk, status=self.Status.DONE, facts_read_at__isnull=True)
        if token is not None:
            rows = rows.filter(claimed_by=token)
        changed = rows.update(next_attempt_at=None, claimed_until=None, claimed_by=None,
                              **self._facts_fields(facts, poster)) == 1
        if changed:
            self.refresh_from_db()
        return changed

    @staticmethod
    def _facts_fields(facts: "VideoFacts | None", poster: str) -> dict:
        """The fields for a video's facts; facts None: the file could not be read."""
        fields = {"facts_read_at": timezone.now(), "poster": poster}
        if facts is not None:
            fields.update(video_seconds=facts.duration, video_width=facts.width,
                          video_height=facts.height, has_audio=facts.has_audio)
        return fields

    def copy_failed(self, retry_at, token=None) -> bool:
        return self._change([self.Status.DONE], token=token, next_attempt_at=retry_at,
                            claimed_until=None, claimed_by=None,
                            copy_attempts=models.F("copy_attempts") + 1)

    def copy_refused(self, reason: "Generation.Reason", token=None) -> bool:
        """A refusal that cannot change (over the size limit): the copy is not tried again."""
        return self._change([self.Status.DONE], token=token, next_attempt_at=None, claimed_until=None,
                            claimed_by=None, error_reason=reason,
                            copy_attempts=models.F("copy_attempts") + 1)

    @property
    def never_billed(self) -> bool:
        """Ended without PixVerse ever taking the job (no video id, no unanswered send)."""
        return (self.status in self.TERMINAL and self.status != self.Status.DONE
                and self.video_id is None and not self.maybe_submitted)

    @property
    def copy_pending(self) -> bool:
        """Done at PixVerse, our copy not stored yet (from the fields a job card reads)."""
        return (self.status == self.Status.DONE and not self.video_file and bool(self.video_url)
                and self.error_reason != self.Reason.COPY_TOO_LARGE)

    def retry(self) -> "Generation":
        """A new job with the same settings (and image).

        It gets a trace id of its own, except when PixVerse may already have
        made this one (its answer never came): then the same trace id asks for
        that video again, which PixVerse answers without billing it twice.
        """
        fields = ("owner", "kind", "prompt", "negative_prompt", "model", "quality", "duration",
                  "aspect_ratio", "motion_mode", "seed", "style", "camera_movement", "generate_audio",
                  "multi_clip", "thinking_type", "template_id", "template_name", "sound_effect_content",
                  "credits", "source_image", "is_private", "team_key")
        fields += ("source_generation", "source_video_id", "keep_original_sound", "tts_speaker")
        again = {name: getattr(self, name) for name in fields}
        # The same submission resent must be the same request: the inputs PixVerse already
        # has keep their ids then; otherwise they are uploaded again (the key may be another).
        resend = self.maybe_submitted and self.video_id is None
        if resend:
            again.update(trace_id=self.trace_id, img_id=self.img_id, key_hash=self.key_hash,
                         maybe_submitted=True)
        inputs = list(self.inputs.all())
        with transaction.atomic():
            copy = Generation.objects.create(
                **again, uploads_pending=sum(1 for i in inputs if not (resend and i.pixverse_id)))
            SourceInput.objects.bulk_create(
                SourceInput(generation=copy, position=i.position, role=i.role, name=i.name, file=i.file.name,
                            seconds=i.seconds, pixverse_id=i.pixverse_id if resend else None)
                for i in inputs)
        return copy

    def read_soon(self) -> bool:
        """Have the scheduler read this running job's status at its next step
        (even if a read is in flight now: record_status_read)."""
        now = timezone.now()
        return self._change([self.Status.RUNNING], next_attempt_at=now, read_asked_at=now)

    def set_private(self, private: bool) -> None:
        Generation.objects.filter(pk=self.pk).update(is_private=private)
        self.is_private = private


def _input_path(source: "SourceInput", filename: str) -> str:
    return f"inputs/{source.generation.code}/{filename}"


class SourceInput(models.Model):
    """A file a job sends PixVerse before its generate call: an image, a video or a sound.

    Transition has a first and a last frame, fusion one to three named
    references, extend, sound effect and lip sync an uploaded video (unless
    they start from a video of ours), lip sync perhaps a sound. Each is
    uploaded as one step of the job (jobs.submit) and keeps the id PixVerse
    gave it. Try again shares the files.
    """

    class Role(models.TextChoices):
        FIRST_FRAME = "first", _("First frame")
        LAST_FRAME = "last", _("Last frame")
        SUBJECT = "subject", _("Subject")
        BACKGROUND = "background", _("Background")
        VIDEO = "video", _("Video")
        AUDIO = "audio", _("Sound")

    IMAGE_ROLES = (Role.FIRST_FRAME, Role.LAST_FRAME, Role.SUBJECT, Role.BACKGROUND)

    generation = models.ForeignKey(Generation, on_delete=models.CASCADE, related_name="inputs")
    position = models.PositiveSmallIntegerField(default=0)
    role = models.CharField(_("role"), max_length=12, choices=Role)
    name = models.CharField(_("name in the prompt"), max_length=30, blank=True)
    file = models.FileField(_("file"), upload_to=_input_path)
    seconds = models.FloatField(_("length (s)"), null=True, blank=True)
    # The img_id (images) or media_id (video, sound) PixVerse answered the upload with.
    pixverse_id = models.BigIntegerField(_("PixVerse id"), null=True, blank=True)

    class Meta:
        ordering = ["position"]
        verbose_name = _("input")
        verbose_name_plural = _("inputs")

    def __str__(self) -> str:
        return f"{self.get_role_display()} {self.name}".strip()

    @property
    def is_image(self) -> bool:
        return self.role in self.IMAGE_ROLES


@receiver(post_delete, sender=SourceInput)
def _remove_input_file(sender, instance: SourceInput, **kwargs) -> None:
    """An input's file goes with the last job that uses it (try again shares it)."""
    name = instance.file.name

    def remove() -> None:
        if name and not SourceInput.objects.filter(file=name).exists():
            instance.file.storage.delete(name)

    transaction.on_commit(remove)


@receiver(post_delete, sender=Generation)
def _remove_stored_files(sender, instance: Generation, **kwargs) -> None:
    """A deleted job takes its files along, however it was deleted (page, admin, bulk).

    A source image can be shared by jobs made from one another; it goes with
    the last of them. Files go only once the deletion is committed.
    """
    video, poster, source = instance.video_file.name, instance.poster.name, instance.source_image.name

    def remove() -> None:
        storage = instance.video_file.storage
        for name in (video, poster):
            if name:
                storage.delete(name)
        if source and not Generation.objects.filter(source_image=source).exists():
            storage.delete(source)

    transaction.on_commit(remove)


class WorkerHeartbeat(models.Model):
    """When the workers last showed they are alive (the dispatch schedule beats every minute).

    /healthz reads it: a cluster that stopped leaves an old beat behind.
    """

    name = models.CharField(max_length=50, primary_key=True)
    beat_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} at {self.beat_at}"

    @classmethod
    def beat(cls, name: str = "dispatcher") -> None:
        cls.objects.update_or_create(name=name, defaults={"beat_at": timezone.now()})

    @classmethod
    def last(cls, name: str = "dispatcher"):
        return cls.objects.filter(name=name).values_list("beat_at", flat=True).first()


class SchedulerRunner(models.Model):
    """A running scheduler loop's lease: one loop per worker cluster (generations/jobs.py).

    The loop renews it every few seconds; one that stopped renewing (its
    process was killed) is replaced as soon as the lease lapses. The token
    tells a loop whether the lease is still its own.
    """

    name = models.CharField(max_length=200, primary_key=True)
    token = models.UUIDField(null=True)
    until = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} until {self.until}"

    @classmethod
    def claim(cls, name: str, token, lease: timedelta) -> bool:
        now = timezone.now()
        cls.objects.bulk_create([cls(name=name, until=now)], ignore_conflicts=True)
        return cls.objects.filter(name=name, until__lte=now).update(
            token=token, until=now + lease) == 1

    @classmethod
    def renew(cls, name: str, token, lease: timedelta) -> bool:
        return cls.objects.filter(name=name, token=token).update(until=timezone.now() + lease) == 1

    @classmethod
    def release(cls, name: str, token) -> None:
        cls.objects.filter(name=name, token=token).update(token=None, until=timezone.now())

    @classmethod
    def any_alive(cls) -> bool:
        return cls.objects.filter(until__gt=timezone.now()).exists()

    @classmethod
    def prune(cls) -> None:
        cls.objects.filter(until__lt=timezone.now() - timedelta(hours=1)).delete()


class PasswordResetRequest(models.Model):
    """A password-reset mail the portal agreed to send: what its hourly limits count.

    See generations/accounts.py. Only hashes of the address asked for and of the
    client's address are kept, and only for the hour the limits look back.
    """

    email_hash = models.CharField(max_length=64)
    client_hash = models.CharField(max_length=64)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["email_hash", "created"], name="password_reset_email"),
            models.Index(fields=["client_hash", "created"], name="password_reset_client"),
        ]

    def __str__(self) -> str:
        return f"password reset {self.email_hash[:12]}… at {self.created:%Y-%m-%d %H:%M}"


def _invitation_expiry():
    return timezone.now() + timedelta(days=settings.PORTAL_INVITATION_DAYS)


class Invitation(models.Model):
    """A one-time link by e-mail that lets a person make their account, with a role chosen here.

    Only the token's hash is stored: the link exists in the mail (and on the page
    staff see right after inviting), nowhere else.
    """

    email = models.EmailField(_("e-mail address"))
    role = models.CharField(_("role"), max_length=8, default="member", choices=Role)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                                   editable=False, related_name="+", verbose_name=_("invited by"))
    created = models.DateTimeField(_("sent"), auto_now_add=True)
    expires_at = models.DateTimeField(_("valid until"), default=_invitation_expiry)
    accepted_at = models.DateTimeField(_("accepted"), null=True, blank=True, editable=False)
    accepted_by = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                                       blank=True, editable=False, related_name="invitation",
                                       verbose_name=_("account"))

    class Meta:
        ordering = ["-created"]
        verbose_name = _("invitation")
        verbose_name_plural = _("invitations")

    def __str__(self) -> str:
        return self.email

    @staticmethod
    def hash_token(token: str) -> str:
        return hashlib.sha256(f"pixverse-invitation:{token}".encode()).hexdigest()

    def new_token(self) -> str:
        """A fresh link token (the old link stops working); only its hash is kept."""
        token = secrets.token_urlsafe(32)
        self.token_hash = self.hash_token(token)
        return token

    @classmethod
    def open_one(cls, token: str) -> "Invitation | None":
        return cls.objects.filter(token_hash=cls.hash_token(token), accepted_at__isnull=True,
                                  expires_at__gt=timezone.now()).first()

    def accept(self, user) -> bool:
        """Use the invitation up, once: False when another request did first."""
        return Invitation.objects.filter(pk=self.pk, accepted_at__isnull=True).update(
            accepted_at=timezone.now(), accepted_by=user) == 1

    @property
    def state(self) -> str:
        if self.accepted_at:
            return _("accepted")
        return _("expired") if self.expires_at <= timezone.now() else _("open")
