"""The forms of the kinds of video beyond text and image (issue 13): transition, extend,
sound effect, lip sync and fusion.

Each is a PaidForm (the key, the cost, the balance and limit checks) and
says which files its job uploads (inputs). Extend, sound effect and lip sync
start from a finished video of ours, by its PixVerse id, or from an uploaded
video; transition and fusion from images, checked as the image form checks
its one. What PixVerse refuses is refused here first, with the same rules
(catalog, api_kinds).
"""

import math
from functools import cached_property

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from generations import api_kinds, catalog, video_facts
from generations.forms import (
    FORM_FIELDS_ALLOWANCE,
    GenerationForm,
    PaidForm,
    PromptField,
    _choices,
    _megabytes,
    checked_image,
    prepare_image_input,
)
from generations.models import Generation, SourceInput

Role = SourceInput.Role
VIDEO_TYPES = "video/mp4,video/quicktime,video/webm"
AUDIO_TYPES = "audio/mpeg,audio/wav,audio/x-wav,audio/mp4,audio/aac,audio/x-m4a"


def media_upload_limit() -> int:
    """The largest video or sound a member can send in one form."""
    return max(1, settings.PORTAL_MAX_REQUEST_BYTES - FORM_FIELDS_ALLOWANCE)


def _prepare_media_input(field: forms.FileField, accept: str) -> None:
    mb = _megabytes(media_upload_limit())
    field.widget.attrs.update({"accept": accept, "data-max-bytes": media_upload_limit(),
                               "data-too-large": gettext("The file is larger than %(mb)s MB.") % {"mb": mb}})


def checked_media(upload, media_type: str, *, max_seconds: float | None = None) -> video_facts.MediaFacts:
    """What an uploaded video or sound is, or a ValidationError saying why PixVerse would refuse it."""
    try:
        facts = video_facts.probe_media(upload.read())
    except video_facts.UnreadableMedia:
        facts = None
    finally:
        upload.seek(0)
    if facts is None or facts.media_type != media_type:
        raise ValidationError(gettext("Use an MP4, MOV or WebM video.") if media_type == "video"
                              else gettext("Use an MP3, WAV, M4A or AAC sound file."), code="format")
    if facts.width and max(facts.width, facts.height or 0) > api_kinds.MEDIA_MAX_SIDE:
        raise ValidationError(gettext("The video must be at most %(side)s pixels a side.")
                              % {"side": api_kinds.MEDIA_MAX_SIDE}, code="dimensions")
    if max_seconds is not None and (facts.duration or 0) >= max_seconds:
        raise ValidationError(gettext("The video must be shorter than %(n)s seconds.") % {"n": max_seconds},
                              code="too_long")
    return facts


def _video_label(job: Generation) -> str:
    prompt = job.prompt if len(job.prompt) <= 60 else job.prompt[:59] + "…"
    return f"{prompt} · {job.model} · {gettext('%(n)s s') % {'n': job.duration}}"


class FromVideoMixin(forms.Form):
    """A finished video of ours (chosen from the member's visible ones) or an uploaded one."""

    source_video = forms.ChoiceField(label=_("Video"), required=False)
    video = forms.FileField(label=_("Or upload a video"), required=False,
                            help_text=_("MP4, MOV or WebM, at most 1920 pixels a side."))
    video_max_seconds: float | None = None

    def _setup_video_source(self, sources) -> None:
        self.videos = (sources.filter(status=Generation.Status.DONE, video_id__isnull=False)
                       .exclude(kind__in=[Generation.Kind.SOUND_EFFECT, Generation.Kind.LIP_SYNC])
                       if sources is not None else Generation.objects.none())
        choices = [("", gettext("Upload a video instead"))]
        choices += [(str(job.code), _video_label(job)) for job in self.videos[:50]]
        self.fields["source_video"].choices = choices
        _prepare_media_input(self.fields["video"], VIDEO_TYPES)
        self.source_job = None
        self.video_facts = None

    @classmethod
    def initial_from(cls, generation) -> dict:
        made_from = generation.source_generation
        return super().initial_from(generation) | ({"source_video": made_from.code} if made_from else {})

    def chosen_video(self) -> Generation | None:
        code = self["source_video"].value()
        if not code:
            return None
        try:
            return self.videos.filter(code=code).first()
        except ValidationError:
            return None

    def clean_video(self):
        upload = self.cleaned_data.get("video")
        if upload:
            self.video_facts = checked_media(upload, "video", max_seconds=self.video_max_seconds)
        return upload

    def clean_video_source(self, data) -> None:
        """Exactly one of a video of ours or an upload (called from clean)."""
        self.source_job = self.chosen_video()
        if self.source_job and data.get("video"):
            self.add_error("video", gettext("Choose one of your videos or upload one, not both."))
        elif not self.source_job and not data.get("video") and "video" not in self.errors:
            self.add_error("source_video", gettext("Choose a video to start from, or upload one."))

    def video_seconds(self) -> float | None:
        """How long the source video is, when the form knows."""
        job = self.chosen_video()
        if job is not None:
            return job.video_seconds or job.duration
        return self.video_facts.duration if self.video_facts else None

    def source_fields(self) -> dict:
        job = self.source_job
        if job is not None:
            return {"source_generation": job, "source_video_id": job.video_id}
        return {}

    def video_inputs(self) -> list:
        upload = self.cleaned_data.get("video")
        return [(Role.VIDEO, "", upload, self.video_facts.duration)] if upload else []


# --- Transition ---------------------------------------------------------------------------


class EarlierImagesMixin(forms.Form):
    """A form started from an earlier job of its kind (remix) uses that job's images where
    no new file is chosen; the form shows them (dashboard.html), so the member sees what
    will be sent."""

    source = forms.UUIDField(required=False, widget=forms.HiddenInput)
    sources = None  # the jobs this member may start from (set by the form's __init__)

    @cached_property
    def earlier_job(self) -> Generation | None:
        code = self["source"].value()
        if not code or self.sources is None:
            return None
        try:
            return self.sources.filter(code=code, kind=self.kind).first()
        except ValidationError:
            return None

    @cached_property
    def earlier_images(self) -> list[SourceInput]:
        job = self.earlier_job
        return [source for source in job.inputs.all() if source.is_image] if job else []


class TransitionForm(EarlierImagesMixin, GenerationForm):
    """A video from a first frame to a last frame: two images and a prompt."""

    first_image = forms.FileField(label=_("First frame"), required=False)
    last_image = forms.FileField(label=_("Last frame"), required=False)
    kind = Generation.Kind.TRANSITION
    tab_label = _("Transition")
    submit_label = _("Make the transition")
    kind_options = ("model", "quality", "duration", "motion_mode")
    field_order = ["first_image", "last_image", "prompt"]
    lead_names = ("first_image", "last_image")

    def __init__(self, *args, sources=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.sources = sources
        prepare_image_input(self.fields["first_image"], "first-preview")
        prepare_image_input(self.fields["last_image"], "last-preview")
        self.reused = {}

    def clean_first_image(self):
        return self._image("first_image")

    def clean_last_image(self):
        return self._image("last_image")

    def _image(self, name):
        upload = self.cleaned_data.get(name)
        if upload:
            checked_image(upload)
        return upload

    def clean(self):
        data = super().clean()
        earlier = {source.role: source for source in self.earlier_images}
        for name, role in (("first_image", Role.FIRST_FRAME), ("last_image", Role.LAST_FRAME)):
            if not data.get(name) and name not in self.errors:
                if role in earlier:
                    self.reused[role] = earlier[role]
                else:
                    self.add_error(name, gettext("Choose an image."))
        return data

    def inputs(self) -> list:
        found = []
        for name, role in (("first_image", Role.FIRST_FRAME), ("last_image", Role.LAST_FRAME)):
            upload = self.cleaned_data.get(name) or self.reused[role].file.name
            found.append((role, "", upload, None))
        return found


# --- Extend -----------------------------------------------------------------------------


class ExtendForm(FromVideoMixin, GenerationForm):
    """More of a video: a finished one of ours or an upload, and a prompt for what comes next."""

    kind = Generation.Kind.EXTEND
    tab_label = _("Extend")
    submit_label = _("Extend the video")
    kind_options = ("model", "quality", "duration", "motion_mode", "style")
    kind_models = tuple(m.name for m in catalog.MODEL_LIST if m.extend)
    video_max_seconds = api_kinds.EXTEND_MAX_SECONDS
    field_order = ["source_video", "video", "prompt"]
    lead_names = ("source_video", "video")

    def __init__(self, *args, sources=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._setup_video_source(sources)
        self.fields["prompt"].widget.attrs["placeholder"] = gettext("What happens next")
        self.fields["video"].help_text = _("MP4, MOV or WebM, at most 1920 pixels a side and shorter "
                                           "than %(n)s seconds.") % {"n": api_kinds.EXTEND_MAX_SECONDS}

    def clean(self):
        data = super().clean()
        self.clean_video_source(data)
        return data

    def generation_fields(self) -> dict:
        return {**super().generation_fields(), **self.source_fields()}

    def inputs(self) -> list:
        return self.video_inputs()


# --- Sound effect and lip sync: made from a video, priced by its length ----------------------


class _FromVideoForm(FromVideoMixin, PaidForm):
    def __init__(self, *args, sources=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._setup_video_source(sources)

    def clean(self):
        data = super().clean()
        self.clean_video_source(data)
        return data

    def job_fields(self) -> dict:
        """What the job stores of the video it is made from."""
        job = self.source_job
        seconds = self.video_seconds() or 0
        return {**self.paid_fields(), **self.source_fields(),
                "model": job.model if job else "", "quality": job.quality if job else "",
                "duration": math.ceil(seconds)}


class SoundEffectForm(_FromVideoForm):
    """A sound made for a video from a description, with or without its own sound."""

    prompt = PromptField(
        label=_("Sound"), max_length=api_kinds.SOUND_CONTENT_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": _("Rain on a tin roof, distant thunder")}))
    keep_original_sound = forms.BooleanField(label=_("Keep the video's own sound"), required=False)
    kind = Generation.Kind.SOUND_EFFECT
    tab_label = _("Sound")
    submit_label = _("Add the sound")
    field_order = ["source_video", "video", "prompt", "keep_original_sound"]
    lead_names = ("source_video", "video")
    tail_names = ("keep_original_sound",)

    @classmethod
    def initial_from(cls, generation) -> dict:
        return super().initial_from(generation) | {"keep_original_sound": generation.keep_original_sound}

    def cost(self) -> int | None:
        seconds = self.video_seconds()
        return api_kinds.sound_effect_cost(seconds) if seconds else None

    def cost_note(self) -> str:
        return gettext("%(n)s credits for every 5 seconds of video.") % {"n": api_kinds.SOUND_EFFECT_CREDITS}

    def generation_fields(self) -> dict:
        return {**self.job_fields(), "prompt": self.cleaned_data["prompt"],
                "keep_original_sound": self.cleaned_data.get("keep_original_sound", False)}

    def inputs(self) -> list:
        return self.video_inputs()


class LipSyncForm(_FromVideoForm):
    """A video's lips moved to words: a text one of PixVerse's voices speaks, or a sound file."""

    speaker = forms.ChoiceField(label=_("Voice"), required=False)
    prompt = PromptField(label=_("Words to say"), required=False, max_length=api_kinds.TTS_CONTENT_MAX_LENGTH,
                         widget=forms.Textarea(attrs={"rows": 2}))
    audio = forms.FileField(label=_("Or upload the speech"), required=False,
                            help_text=_("MP3, WAV, M4A or AAC. Without it, the voice says the words above."))
    kind = Generation.Kind.LIP_SYNC
    tab_label = _("Lip sync")
    submit_label = _("Sync the lips")
    field_order = ["source_video", "video", "speaker", "prompt", "audio"]
    lead_names = ("source_video", "video", "speaker")
    tail_names = ("audio",)

    def __init__(self, *args, speakers=(), **kwargs):
        """speakers: PixVerse's voices, (id, name) pairs (generations/lists.py)."""
        super().__init__(*args, **kwargs)
        self.fields["speaker"].choices = list(speakers)
        _prepare_media_input(self.fields["audio"], AUDIO_TYPES)
        self.audio_facts = None
        # The words set the price: the estimate follows the typing, not only a change.
        self.fields["prompt"].widget.attrs.update({
            "hx-get": f"{reverse('estimate')}?kind={self.kind}", "hx-trigger": "input changed delay:400ms",
            "hx-target": f"#{self.kind}-estimate", "hx-swap": "outerHTML", "hx-include": "closest form",
            "hx-params": self.not_sent_while_editing(), "hx-sync": "this:queue last"})

    @classmethod
    def initial_from(cls, generation) -> dict:
        spoken = generation.tts_speaker  # empty when the speech was an uploaded file
        words = generation.prompt if spoken else ""
        return super().initial_from(generation) | {"speaker": spoken, "prompt": words}

    def clean_audio(self):
        upload = self.cleaned_data.get("audio")
        if upload:
            self.audio_facts = checked_media(upload, "audio")
        return upload

    def clean(self):
        data = super().clean()
        if data.get("audio") and data.get("prompt"):
            self.add_error("audio", gettext("Upload the speech or type the words, not both."))
        elif not data.get("audio") and "audio" not in self.errors:
            if not data.get("prompt"):
                self.add_error("prompt", gettext("Type the words to say, or upload the speech."))
            elif not data.get("speaker"):
                self.add_error("speaker", gettext("Choose a voice."))
        return data

    def cost(self) -> int | None:
        if self.audio_facts is not None:
            return api_kinds.lip_sync_cost(audio_seconds=self.audio_facts.duration or 0)
        words = self["prompt"].value()
        return api_kinds.lip_sync_cost(tts_content=words) if words else None

    def cost_note(self) -> str:
        return gettext("%(n)s credits for every second of speech, or every 15 letters of text.") % {
            "n": api_kinds.LIP_SYNC_CREDITS}

    def generation_fields(self) -> dict:
        data = self.cleaned_data
        words = data.get("prompt") or ""
        if data.get("audio"):
            # The card's heading: the file's name, as the member knows the speech.
            words = "♪ " + data["audio"].name[:120]
        return {**self.job_fields(), "prompt": words,
                "tts_speaker": "" if data.get("audio") else data.get("speaker", "")}

    def inputs(self) -> list:
        found = self.video_inputs()
        if upload := self.cleaned_data.get("audio"):
            found.append((Role.AUDIO, "", upload, self.audio_facts.duration))
        return found


# --- Fusion -------------------------------------------------------------------------------


REFERENCE_SLOTS = (1, 2, 3)


def _reference_fields() -> tuple:
    """One reference slot: its image, the name the prompt calls it by, subject or background."""
    return (
        forms.FileField(label=_("Image"), required=False),
        forms.CharField(label=_("Name"), required=False, max_length=api_kinds.REFERENCE_NAME_MAX_LENGTH,
                        help_text=_("Call it @name in the prompt.")),
        forms.ChoiceField(label=_("Used as"), initial="subject", required=False,
                          choices=[("subject", _("Subject")), ("background", _("Background"))]),
    )


class FusionForm(EarlierImagesMixin, GenerationForm):
    """A video made of one to three reference images, each called by its name in the prompt."""

    ref1_image, ref1_name, ref1_type = _reference_fields()
    ref2_image, ref2_name, ref2_type = _reference_fields()
    ref3_image, ref3_name, ref3_type = _reference_fields()
    kind = Generation.Kind.FUSION
    tab_label = _("Fusion")
    submit_label = _("Fuse the images")
    kind_options = ("model", "quality", "duration", "aspect_ratio")
    kind_models = api_kinds.FUSION_MODELS
    aspect_ratio = forms.ChoiceField(label=_("Aspect ratio"), initial="16:9",
                                     choices=_choices(catalog.ASPECT_RATIOS))

    def __init__(self, *args, sources=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.sources = sources
        for n in REFERENCE_SLOTS:
            prepare_image_input(self.fields[f"ref{n}_image"], f"ref{n}-preview")
        self.fields["prompt"].widget.attrs["placeholder"] = gettext("@hero walks through @city at night")
        self.chosen_references = []

    @property
    def references(self) -> list[dict]:
        """The three reference slots, as the template lays them out."""
        return [{"n": n, "image": self[f"ref{n}_image"], "name": self[f"ref{n}_name"],
                 "type": self[f"ref{n}_type"]} for n in REFERENCE_SLOTS]

    def clean(self):
        data = super().clean()
        chosen = []
        uploaded = False  # an image was sent, though its name (or it) may be refused
        for n in REFERENCE_SLOTS:
            upload, name = data.get(f"ref{n}_image"), (data.get(f"ref{n}_name") or "").strip()
            if upload:
                uploaded = True
                checked = self._checked(f"ref{n}_image", upload)
                if not api_kinds.reference_name_is_valid(name):
                    self.add_error(f"ref{n}_name", gettext(
                        "Give it a name of letters, digits, _ or spaces, at most %(n)s.")
                        % {"n": api_kinds.REFERENCE_NAME_MAX_LENGTH})
                elif checked:
                    chosen.append((data.get(f"ref{n}_type") or "subject", name, upload))
            elif name and f"ref{n}_image" not in self.errors:
                self.add_error(f"ref{n}_image", gettext("Choose the image called %(name)s.") % {"name": name})
        # Said with the other fields' messages (an empty form hears of its images and its
        # prompt at once), unless an image field already has its own.
        if not chosen and not uploaded and not any(f"ref{n}_image" in self.errors for n in REFERENCE_SLOTS):
            chosen = [(source.role, source.name, source.file.name) for source in self.earlier_images]
            if not chosen:
                self.add_error("ref1_image", gettext("Choose at least one image."))
        names = [name.lower() for _type, name, _upload in chosen]
        if len(set(names)) < len(names):
            self.add_error(None, gettext("Give each image its own name."))
        prompt = data.get("prompt") or ""
        missing = [name for _type, name, _upload in chosen if f"@{name}" not in prompt]
        if missing and "prompt" not in self.errors:
            self.add_error("prompt", gettext("Name each image in the prompt: %(names)s.")
                           % {"names": ", ".join(f"@{name}" for name in missing)})
        self.chosen_references = chosen
        return data

    def _checked(self, name, upload) -> bool:
        try:
            checked_image(upload)
        except ValidationError as error:
            self.add_error(name, error)
            return False
        return True

    def inputs(self) -> list:
        return [(role, name, upload, None) for role, name, upload in self.chosen_references]
