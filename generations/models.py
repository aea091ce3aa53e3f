"""The portal's data."""

import uuid
from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models, transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables

from generations import catalog, crypto

if TYPE_CHECKING:
    from generations.pixverse import PixVerseClient, VideoRequest


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
    """A member's own PixVerse key, encrypted at rest; only its last four characters show.

    The key is decrypted only to build a PixVerseClient (client()); nothing
    else reads it, so it cannot reach a page, a log line or a task argument.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="pixverse_credential",
        verbose_name=_("member"),
    )
    encrypted_key = models.TextField(editable=False)
    last4 = models.CharField(_("key ends with"), max_length=4, editable=False)
    verified_at = models.DateTimeField(_("verified"), null=True, blank=True)
    created = models.DateTimeField(_("added"), auto_now_add=True)
    updated = models.DateTimeField(_("changed"), auto_now=True)
    # The lease of the worker working through this member's jobs
    # (generations/jobs.py): one worker per key, so no job is read twice at once.
    worker_until = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("PixVerse key")
        verbose_name_plural = _("PixVerse keys")

    def __str__(self) -> str:
        return f"…{self.last4}"

    def __repr__(self) -> str:
        return f"<ApiCredential user={self.user_id} …{self.last4}>"

    @property
    def masked(self) -> str:
        return f"••••{self.last4}"

    @sensitive_variables("raw_key")
    def set_key(self, raw_key: str) -> None:
        raw_key = raw_key.strip()
        self.encrypted_key = crypto.encrypt(raw_key)
        self.last4 = raw_key[-4:]

    def client(self, **kwargs) -> "PixVerseClient":
        from generations.pixverse import PixVerseClient

        return PixVerseClient(crypto.decrypt(self.encrypted_key), **kwargs)

    def claim_worker(self, lease: timedelta) -> bool:
        now = timezone.now()
        free = models.Q(worker_until__isnull=True) | models.Q(worker_until__lt=now)
        return ApiCredential.objects.filter(free, pk=self.pk).update(worker_until=now + lease) == 1

    def renew_worker(self, lease: timedelta) -> None:
        ApiCredential.objects.filter(pk=self.pk).update(worker_until=timezone.now() + lease)

    def release_worker(self) -> None:
        ApiCredential.objects.filter(pk=self.pk).update(worker_until=None)

    def reencrypt(self) -> bool:
        """Encrypt with the newest key; True when the stored value changed."""
        token = crypto.reencrypt(self.encrypted_key)
        if token == self.encrypted_key:
            return False
        ApiCredential.objects.filter(pk=self.pk).update(encrypted_key=token)
        self.encrypted_key = token
        return True


class GenerationQuerySet(models.QuerySet):
    def visible_to(self, user) -> "GenerationQuerySet":
        """What a member may see: the team's shared jobs and their own private ones."""
        return self.filter(models.Q(is_private=False) | models.Q(owner=user))


def _source_path(generation: "Generation", filename: str) -> str:
    return f"sources/{generation.code}/{filename}"


def _video_path(generation: "Generation", filename: str) -> str:
    return f"videos/{generation.code}/{filename}"


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

    ACTIVE = (Status.QUEUED, Status.SUBMITTING, Status.RUNNING)
    TERMINAL = (Status.DONE, Status.FAILED, Status.MODERATED, Status.TIMED_OUT, Status.CANCELLED)

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                              related_name="generations", verbose_name=_("owner"))
    kind = models.CharField(_("kind"), max_length=8, choices=Kind)
    prompt = models.TextField(_("prompt"), max_length=2048)
    negative_prompt = models.TextField(_("negative prompt"), max_length=2048, blank=True)
    model = models.CharField(_("model"), max_length=16)
    quality = models.CharField(_("quality"), max_length=8)
    duration = models.PositiveSmallIntegerField(_("duration (s)"))
    aspect_ratio = models.CharField(_("aspect ratio"), max_length=8, blank=True)
    motion_mode = models.CharField(_("motion mode"), max_length=8, blank=True)
    seed = models.BigIntegerField(_("seed"), null=True, blank=True)
    style = models.CharField(_("style"), max_length=16, blank=True, choices=catalog.STYLE_LABELS.items())
    source_image = models.FileField(_("source image"), upload_to=_source_path, blank=True)
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

    status = models.CharField(_("status"), max_length=12, choices=Status, default=Status.QUEUED)
    error_reason = models.CharField(_("reason"), max_length=20, choices=Reason, blank=True)
    error_code = models.IntegerField(_("error code"), null=True, blank=True)
    # PixVerse's own words (its ErrMsg), where it gave any.
    error_message = models.TextField(_("error detail"), blank=True)

    created = models.DateTimeField(_("created"), default=timezone.now)
    submitted_at = models.DateTimeField(_("submitted"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    submit_attempts = models.PositiveSmallIntegerField(default=0)
    poll_count = models.PositiveIntegerField(_("status reads"), default=0)
    # When a queued job may be tried (again), or a running one read next.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # A worker's lease on a submission in flight; when it lapses (the worker
    # died), the submission is resent with the same trace id.
    claimed_until = models.DateTimeField(null=True, blank=True)

    objects = GenerationQuerySet.as_manager()

    class Meta:
        ordering = ["-created"]
        indexes = [
            models.Index(fields=["owner", "-created"]),
            # The team history: newest first over everyone's jobs.
            models.Index(fields=["-created"], name="generation_newest"),
            # The workers' question "which active job of this member is due?"
            # reads only the few active rows, however long the history grows.
            models.Index(
                fields=["owner", "next_attempt_at"], name="generation_active_due",
                condition=models.Q(status__in=["queued", "submitting", "running"]),
            ),
        ]
        verbose_name = _("generation")
        verbose_name_plural = _("generations")

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.prompt[:40]}"

    def save(self, *args, **kwargs) -> None:
        self.prompt_folded = f"{self.prompt}\n{self.negative_prompt}".casefold()
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
        )

    # --- Status changes -----------------------------------------------------------

    def _change(self, allowed_from, **fields) -> bool:
        """Apply fields if the row's status is still one of allowed_from; True if it was."""
        changed = Generation.objects.filter(pk=self.pk, status__in=allowed_from).update(**fields)
        if changed:
            self.refresh_from_db()
        return changed == 1

    def claim_submission(self, lease: timedelta) -> bool:
        """Take this job to submit it: a queued one that is due, or one whose worker's lease lapsed."""
        now = timezone.now()
        due = models.Q(next_attempt_at__isnull=True) | models.Q(next_attempt_at__lte=now)
        claimable = (models.Q(status=self.Status.QUEUED) & due) | models.Q(
            status=self.Status.SUBMITTING, claimed_until__lt=now
        )
        claimed = Generation.objects.filter(claimable, pk=self.pk).update(
            status=self.Status.SUBMITTING, claimed_until=now + lease,
            submit_attempts=models.F("submit_attempts") + 1,
        )
        if claimed:
            self.refresh_from_db()
        return claimed == 1

    def record_image(self, img_id: int) -> None:
        Generation.objects.filter(pk=self.pk).update(img_id=img_id)
        self.img_id = img_id

    def mark_submitted(self, video_id: int, first_read_at) -> bool:
        return self._change(
            [self.Status.SUBMITTING], status=self.Status.RUNNING, video_id=video_id,
            submitted_at=timezone.now(), next_attempt_at=first_read_at, claimed_until=None,
        )

    def requeue(self, retry_at, reason: "Generation.Reason") -> bool:
        """Back to the queue until retry_at (the plan's concurrency limit, a passing fault)."""
        return self._change(
            [self.Status.SUBMITTING], status=self.Status.QUEUED, next_attempt_at=retry_at,
            claimed_until=None, error_reason=reason, error_message="",
        )

    def record_status_read(self, next_read_at) -> bool:
        return self._change(
            [self.Status.RUNNING], poll_count=models.F("poll_count") + 1,
            next_attempt_at=next_read_at,
        )

    def postpone_read(self, until) -> bool:
        """Move a running job's next status read later, without counting a read."""
        return self._change([self.Status.RUNNING], next_attempt_at=until)

    def mark_done(self, video_url: str) -> bool:
        return self._change(
            [self.Status.RUNNING], status=self.Status.DONE, video_url=video_url,
            finished_at=timezone.now(), next_attempt_at=None, poll_count=models.F("poll_count") + 1,
            error_reason="", error_code=None, error_message="",
        )

    def mark_failed(self, reason: "Generation.Reason", *, detail: str = "", code: int | None = None,
                    status: str = Status.FAILED) -> bool:
        """End the job unsuccessfully: failed, moderated or timed out, and say why."""
        assert status in (self.Status.FAILED, self.Status.MODERATED, self.Status.TIMED_OUT)
        return self._change(
            self.ACTIVE, status=status, error_reason=reason, error_code=code, error_message=detail,
            finished_at=timezone.now(), next_attempt_at=None, claimed_until=None,
        )

    def cancel(self) -> bool:
        """Stop caring about the job. A running one may still finish (and bill) at PixVerse."""
        return self._change(
            self.ACTIVE, status=self.Status.CANCELLED, finished_at=timezone.now(),
            next_attempt_at=None, claimed_until=None,
        )

    def retry(self) -> "Generation":
        """A new job with the same settings (and image), with its own trace id."""
        fields = ("owner", "kind", "prompt", "negative_prompt", "model", "quality", "duration",
                  "aspect_ratio", "motion_mode", "seed", "style", "credits", "source_image",
                  "is_private")
        return Generation.objects.create(**{name: getattr(self, name) for name in fields})

    def read_soon(self) -> bool:
        """Have the member's worker read this running job's status at its next step."""
        return self._change([self.Status.RUNNING], next_attempt_at=timezone.now())

    def set_private(self, private: bool) -> None:
        Generation.objects.filter(pk=self.pk).update(is_private=private)
        self.is_private = private

    def attach_video_file(self, name: str) -> None:
        Generation.objects.filter(pk=self.pk).update(video_file=name)
        self.video_file.name = name


@receiver(post_delete, sender=Generation)
def _remove_stored_files(sender, instance: Generation, **kwargs) -> None:
    """A deleted job takes its files along, however it was deleted (page, admin, bulk).

    A source image can be shared by jobs made from one another; it goes with
    the last of them. Files go only once the deletion is committed.
    """
    video, source = instance.video_file.name, instance.source_image.name

    def remove() -> None:
        storage = instance.video_file.storage
        if video:
            storage.delete(video)
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
