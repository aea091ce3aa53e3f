"""The sandbox's own state: accounts (keys and credits), images, media and videos.

This is the simulated PixVerse server's database, not the portal's: the
portal knows a sandbox key only as any other PixVerse key.
"""

import hashlib
import secrets
import time
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

KEY_PREFIX = "sk-sandbox-"


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


# The kinds of call a hang can be switched on for; "status" is both status routes.
# "lists" is the TTS speaker and effect template lists.
CALL_KINDS = ("balance", "upload", "generate", "status", "lists")


def parse_call_kinds(value: str) -> set[str]:
    return {kind.strip() for kind in value.split(",") if kind.strip()}


def validate_call_kinds(value: str) -> None:
    unknown = sorted(parse_call_kinds(value) - set(CALL_KINDS))
    if unknown:
        raise ValidationError(
            _("Unknown call kinds: %(unknown)s. Use any of: %(known)s."),
            params={"unknown": ", ".join(unknown), "known": ", ".join(CALL_KINDS)},
        )


# The sandbox's effect templates (the real catalogue is PixVerse's and changes):
# the qualities each supports, for 500071. All but the last are activated for a
# new account; the last shows 500070 until activated in the admin.
EFFECT_TEMPLATES = (
    {"template_id": 315446315336768, "name": "Kiss", "qualities": ["360p", "540p", "720p"]},
    {"template_id": 315447659476032, "name": "Hug", "qualities": ["360p", "540p", "720p", "1080p"]},
    {"template_id": 313555098280384, "name": "Muscle surge", "qualities": ["360p", "540p"]},
    {"template_id": 316826014376384, "name": "Venom", "qualities": ["540p", "720p"]},
)
TEMPLATE_IDS = tuple(template["template_id"] for template in EFFECT_TEMPLATES)

# The TTS voices of lip sync: (speaker_id, name).
TTS_SPEAKERS = (("Auto", "Auto"), ("Emily", "Emily"), ("James", "James"),
                ("Sophia", "Sophia"), ("Lucas", "Lucas"))


def default_activated_templates() -> list[int]:
    return list(TEMPLATE_IDS[:-1])


def validate_template_ids(value) -> None:
    if not isinstance(value, list) or not all(isinstance(item, int) for item in value):
        raise ValidationError(_("A list of template ids, e.g. [315446315336768]."))
    unknown = sorted(set(value) - set(TEMPLATE_IDS))
    if unknown:
        raise ValidationError(
            _("Unknown template ids: %(unknown)s. The sandbox has: %(known)s."),
            params={"unknown": ", ".join(map(str, unknown)),
                    "known": ", ".join(map(str, TEMPLATE_IDS))},
        )


def new_id() -> int:
    # 64-bit ids as the real service has, large enough that a client which
    # squeezes them into 32 bits or a float breaks visibly.
    return secrets.randbelow(2**62 - 2**40) + 2**40


class SandboxAccount(models.Model):
    class Dialect(models.TextChoices):
        REAL = "real", _("Real service (six-digit ErrCodes in HTTP 200)")
        SPEC = "spec", _("Spec (ErrCode 403 / 500 with the same HTTP status)")

    account_id = models.BigIntegerField(_("account id"), unique=True, default=new_id)
    label = models.CharField(_("label"), max_length=100)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    key_last4 = models.CharField(_("key ends with"), max_length=4, editable=False)
    credit_monthly = models.IntegerField(_("monthly credits"), default=0)
    credit_package = models.IntegerField(_("package credits"), default=0)
    concurrency_limit = models.PositiveIntegerField(_("generations at once"), default=5)
    dialect = models.CharField(_("dialect"), max_length=8, choices=Dialect, default=Dialect.REAL)
    spec_status_route = models.BooleanField(
        _("answers the spec's /video/status"), default=True,
        help_text=_("Off: that route answers 404, as the real service does."),
    )
    generation_seconds = models.FloatField(
        _("generation time (s)"), null=True, blank=True,
        help_text=_("Empty: the SANDBOX_GENERATION_SECONDS setting."),
    )
    # Switchable faults, each a share of requests (0 to 1) or a delay.
    fault_error_rate = models.FloatField(
        _("share answered 'system under high load' (500069)"), default=0.0
    )
    fault_http_500_rate = models.FloatField(_("share answered HTTP 500"), default=0.0)
    fault_malformed_rate = models.FloatField(_("share answered with non-JSON"), default=0.0)
    fault_slow_seconds = models.FloatField(_("delay before every answer (s)"), default=0.0)
    fault_generation_failure_rate = models.FloatField(
        _("share of videos that end failed"), default=0.0
    )
    fault_http_429_rate = models.FloatField(_("share answered HTTP 429"), default=0.0)
    spec_status_404_envelope = models.BooleanField(
        _("/video/status answers 404 in the envelope"), default=False,
        help_text=_("On: the spec's status route answers HTTP 404 with ErrCode 404 in the "
                    "JSON envelope; /video/result keeps working."),
    )
    # Billing faults strike only a generate call that creates a new video:
    # the credits are gone but the client never learns the video id.
    fault_timeout_after_billing_rate = models.FloatField(
        _("share of new videos answered only after the hang"), default=0.0,
        help_text=_("The video is created and billed, then the answer waits the hang time."),
    )
    fault_drop_after_billing_rate = models.FloatField(
        _("share of new videos answered by closing the connection"), default=0.0,
        help_text=_("The video is created and billed, then the connection is closed "
                    "with no HTTP answer."),
    )
    fault_hang_seconds = models.FloatField(_("hang time (s)"), default=40.0)
    fault_hang_calls = models.CharField(
        _("calls that hang"), max_length=100, blank=True, validators=[validate_call_kinds],
        help_text=_("Comma-separated, any of: balance, upload, generate, status, lists. Each "
                    "such request waits the hang time before it is answered."),
    )
    fault_file_error_rate = models.FloatField(_("share of video downloads answered HTTP 503"),
                                              default=0.0)
    fault_file_slow_seconds = models.FloatField(
        _("time to send a video file (s)"), default=0.0,
        help_text=_("Spread over the file's chunks; 0: as fast as possible."),
    )
    # As PixVerse's platform does for an account: where to POST each finished video's outcome.
    webhook_url = models.URLField(
        _("webhook URL"), max_length=500, blank=True,
        help_text=_("Where the sandbox sends each finished video's webhook, e.g. "
                    "https://portal.example/webhooks/pixverse/. Empty: no webhooks."),
    )
    webhook_secret = models.CharField(
        _("webhook secret"), max_length=200, blank=True,
        help_text=_("Signs the webhooks; the portal's PIXVERSE_WEBHOOK_SECRET must be the same."),
    )
    activated_templates = models.JSONField(
        # null: a field emptied in the admin is no template, not a crash on save.
        _("activated effect templates"), default=default_activated_templates, blank=True,
        null=True,
        validators=[validate_template_ids],
        help_text=_("Template ids this account may use; any other answers 500070."),
    )
    tts_list_route = models.BooleanField(
        _("answers the older /video/lip_sync/tts_list"), default=True,
        help_text=_("Off: only /video/tts_speaker lists the TTS voices; the older route "
                    "answers 404."),
    )
    last_request_at = models.FloatField(default=0.0, editable=False)
    request_count = models.PositiveBigIntegerField(_("requests answered"), default=0, editable=False)
    created = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("sandbox account")
        verbose_name_plural = _("sandbox accounts")

    def __str__(self) -> str:
        return f"{self.label} (…{self.key_last4})"

    @classmethod
    def issue(cls, label: str, *, credits: int | None = None, **fields) -> tuple["SandboxAccount", str]:
        """Create an account and return it with its key, which is not stored and not shown again."""
        fields.setdefault("concurrency_limit", settings.SANDBOX_CONCURRENCY)
        monthly = settings.SANDBOX_STARTING_CREDITS if credits is None else credits
        account = cls(label=label, credit_monthly=monthly, **fields)
        raw_key = account.new_key()
        account.save()
        return account, raw_key

    def new_key(self) -> str:
        """Give the account a new key (not saved yet) and return it: only its hash is kept."""
        raw_key = KEY_PREFIX + secrets.token_urlsafe(24)
        self.key_hash = hash_key(raw_key)
        self.key_last4 = raw_key[-4:]
        return raw_key

    @property
    def credits(self) -> int:
        return self.credit_monthly + self.credit_package

    def claim_request_slot(self, min_interval: float, now: float | None = None) -> bool:
        """Record a request that arrived at `now`, unless the previous one arrived
        less than min_interval before it."""
        now = time.time() if now is None else now
        claimed = SandboxAccount.objects.filter(
            pk=self.pk, last_request_at__lte=now - min_interval
        ).update(last_request_at=now, request_count=models.F("request_count") + 1)
        return claimed == 1

    def hangs(self, call_kind: str) -> bool:
        return call_kind in parse_call_kinds(self.fault_hang_calls)

    def template_activated(self, template_id: int) -> bool:
        return template_id in (self.activated_templates or [])

    def running_videos(self) -> int:
        return self.videos.filter(ready_at__gt=timezone.now(), deleted=False).count()

    def generation_time(self) -> timedelta:
        seconds = self.generation_seconds
        if seconds is None:
            seconds = settings.SANDBOX_GENERATION_SECONDS
        return timedelta(seconds=seconds)


class SandboxImage(models.Model):
    img_id = models.BigIntegerField(_("image id"), unique=True, default=new_id)
    account = models.ForeignKey(SandboxAccount, on_delete=models.CASCADE, related_name="images",
                                verbose_name=_("account"))
    file = models.FileField(_("file"), upload_to="sandbox/images/")
    format = models.CharField(_("format"), max_length=8)
    width = models.PositiveIntegerField(_("width"))
    height = models.PositiveIntegerField(_("height"))
    created = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("sandbox image")
        verbose_name_plural = _("sandbox images")

    def __str__(self) -> str:
        return f"image {self.img_id}"


class SandboxMedia(models.Model):
    """An uploaded video or audio for extend, sound effect and lip sync."""

    class MediaType(models.TextChoices):
        VIDEO = "video", _("video")
        AUDIO = "audio", _("audio")

    media_id = models.BigIntegerField(_("media id"), unique=True, default=new_id)
    account = models.ForeignKey(SandboxAccount, on_delete=models.CASCADE, related_name="media",
                                verbose_name=_("account"))
    file = models.FileField(_("file"), upload_to="sandbox/media/")
    media_type = models.CharField(_("media type"), max_length=5, choices=MediaType)
    format = models.CharField(_("format"), max_length=8)
    duration = models.FloatField(_("duration (s)"))
    created = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("sandbox media")
        verbose_name_plural = _("sandbox media")

    def __str__(self) -> str:
        return f"{self.media_type} {self.media_id}"


class SandboxVideo(models.Model):
    class Outcome(models.TextChoices):
        SUCCESS = "success", _("success")
        FAILED = "failed", _("failed")
        MODERATED = "moderated", _("moderation failed")

    video_id = models.BigIntegerField(_("video id"), unique=True, default=new_id)
    account = models.ForeignKey(SandboxAccount, on_delete=models.CASCADE, related_name="videos",
                                verbose_name=_("account"))
    trace_id = models.CharField(_("trace id"), max_length=100)
    kind = models.CharField(_("kind"), max_length=16)  # a key of api_kinds.KINDS
    image = models.ForeignKey(SandboxImage, null=True, blank=True, on_delete=models.SET_NULL,
                              verbose_name=_("image"))
    # What extend, sound effect and lip sync started from: a video of this account,
    # or an uploaded video; and lip sync's uploaded audio.
    source_video = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+", verbose_name=_("source video"))
    source_media = models.ForeignKey(SandboxMedia, null=True, blank=True,
                                     on_delete=models.SET_NULL, related_name="+",
                                     verbose_name=_("source media"))
    audio_media = models.ForeignKey(SandboxMedia, null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+",
                                    verbose_name=_("audio"))
    params = models.JSONField(_("parameters"), default=dict)
    credits = models.IntegerField(_("credits"))
    outcome = models.CharField(_("outcome"), max_length=10, choices=Outcome)
    created = models.DateTimeField(_("created"), default=timezone.now)
    ready_at = models.DateTimeField(_("ready at"))
    # When the account's webhook URL answered this video's webhook 200 "ok".
    webhook_delivered_at = models.DateTimeField(_("webhook delivered at"), null=True, blank=True)
    deleted = models.BooleanField(_("deleted"), default=False)
    # Moderation failures are refunded, as on the real service: once.
    refunded = models.BooleanField(_("refunded"), default=False)

    class Meta:
        verbose_name = _("sandbox video")
        verbose_name_plural = _("sandbox videos")
        constraints = [
            # The ai-trace-id is an idempotency key: one submission per id.
            models.UniqueConstraint(fields=["account", "trace_id"], name="sandbox_one_video_per_trace")
        ]

    def __str__(self) -> str:
        return f"video {self.video_id}"

    @property
    def has_audio(self) -> bool:
        """Whether the finished file has sound: the sound kinds, or a generated sound effect."""
        return self.kind in ("sound_effect", "lip_sync") or self.params.get(
            "sound_effect_switch") is True

    def seconds(self) -> float:
        """How long the video is meant to be: what a sound effect on it is priced by."""
        if self.kind == "extend":
            return self.source_seconds() + self.params.get("duration", 5)
        if self.kind in ("sound_effect", "lip_sync"):
            return self.source_seconds()
        return self.params.get("duration", 5)

    def source_seconds(self) -> float:
        if self.source_video is not None:
            return self.source_video.seconds()
        if self.source_media is not None:
            return self.source_media.duration
        return 5

    def quality(self) -> str:
        """The output's quality: the request's, its source video's, or 540p for an upload."""
        if "quality" in self.params:
            return self.params["quality"]
        if self.source_video is not None:
            return self.source_video.quality()
        return "540p"

    def stage(self, now=None) -> str:
        """queued, generating, or the outcome once ready_at has passed."""
        now = now or timezone.now()
        if self.deleted:
            return "deleted"
        if now >= self.ready_at:
            return self.outcome
        total = (self.ready_at - self.created).total_seconds()
        elapsed = (now - self.created).total_seconds()
        return "queued" if elapsed < total * 0.2 else "generating"


class SandboxRequest(models.Model):
    """One answered API request: what a client sent and when, for the admin and for tests.

    The log is how one sees, from the service's side, whether clients keep to
    1 request per second per key and how often they read each job. Rows older
    than REQUEST_LOG_KEEP are pruned now and then, as requests arrive.
    """

    REQUEST_LOG_KEEP = timedelta(days=1)

    account = models.ForeignKey(SandboxAccount, on_delete=models.CASCADE, related_name="requests",
                                verbose_name=_("account"))
    # Epoch seconds, as last_request_at: precise enough to compare gaps.
    started_at = models.FloatField(_("started at"), db_index=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"))
    method = models.CharField(_("method"), max_length=8)
    path = models.CharField(_("path"), max_length=200)
    video_id = models.BigIntegerField(_("video id"), null=True, blank=True, db_index=True)
    http_status = models.PositiveSmallIntegerField(_("HTTP status"))
    err_code = models.IntegerField(_("ErrCode"), null=True, blank=True)

    class Meta:
        verbose_name = _("sandbox request")
        verbose_name_plural = _("sandbox requests")
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.method} {self.path} → {self.http_status}"

    @classmethod
    def prune(cls) -> int:
        cutoff = time.time() - cls.REQUEST_LOG_KEEP.total_seconds()
        deleted, _ = cls.objects.filter(started_at__lt=cutoff).delete()
        return deleted


class SandboxCharge(models.Model):
    """One movement of credits: a charge for a new video, or (negative) its refund.

    The sandbox's own bookkeeping, so tests and benchmarks can tell from the
    service's side whether a client that lost an answer got billed twice.
    """

    account = models.ForeignKey(SandboxAccount, on_delete=models.CASCADE, related_name="charges",
                                verbose_name=_("account"))
    trace_id = models.CharField(_("trace id"), max_length=100, db_index=True)
    video = models.ForeignKey(SandboxVideo, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="charges", verbose_name=_("video"))
    credits = models.IntegerField(_("credits"), help_text=_("Negative for a refund."))
    created = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("sandbox charge")
        verbose_name_plural = _("sandbox charges")
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.credits:+d} credits for {self.trace_id}"

    @classmethod
    def billed_more_than_once(cls, account: SandboxAccount | None = None) -> list[str]:
        """Trace ids charged more than once (refunds aside): what must never happen."""
        charges = cls.objects.filter(credits__gt=0)
        if account is not None:
            charges = charges.filter(account=account)
        repeated = (charges.values("account", "trace_id")
                    .annotate(times=models.Count("id")).filter(times__gt=1))
        return sorted({row["trace_id"] for row in repeated})
