"""The portal's forms: generation settings, the source image, a member's API key."""

import contextlib
import json
import unicodedata
import uuid

from django import forms
from django.conf import settings
from django.contrib.auth.forms import UserCreationForm
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator
from django.forms.renderers import TemplatesSetting
from django.urls import reverse
from django.utils.functional import lazy
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from generations import accounts, catalog
from generations.images import InvalidImage, check_image
from generations.keys import LimitReached, check_limit
from generations.models import Generation
from generations.usage import Month


class PortalFormRenderer(TemplatesSetting):
    """Django's form templates, with each field group wrapped so it lays out as one unit."""

    field_template_name = "forms/field.html"


# Labels are made when a form is shown, in the reader's language, not at import.
_seconds = lazy(lambda n: gettext("%(n)s s") % {"n": n}, str)


def _choices(values, labels=None):
    return [(v, (labels or {}).get(v, v)) for v in values]


MOTION_LABELS = {"normal": _("Normal"), "fast": _("Fast (double cost)")}

# What shows as nothing: spaces, control and format characters (U+200B zero-width
# space, U+2060 word joiner, U+FEFF...), most of which str.strip() keeps, and the
# letters drawn blank (Hangul fillers, the empty Braille pattern).
_INVISIBLE_CATEGORIES = {"Cc", "Cf", "Zs", "Zl", "Zp"}
_BLANK_LETTERS = set("\u115f\u1160\u3164\uffa0\u2800")


def _invisible(char: str) -> bool:
    return char in _BLANK_LETTERS or unicodedata.category(char) in _INVISIBLE_CATEGORIES


def strip_invisible(text: str) -> str:
    """text without what shows as nothing at its ends; inside it stays (a zero-width
    joiner holds an emoji together)."""
    start, end = 0, len(text)
    while start < end and _invisible(text[start]):
        start += 1
    while end > start and _invisible(text[end - 1]):
        end -= 1
    return text[start:end]


class PromptField(forms.CharField):
    """Text sent to PixVerse: required means something visible, not zero-width characters."""

    def to_python(self, value):
        value = super().to_python(value)
        return strip_invisible(value) if value else value


# Room in a request for the image form's other fields (a prompt of 5000 and a
# negative prompt of 2048 characters at up to four bytes each, the settings, the
# multipart wrapping).
FORM_FIELDS_ALLOWANCE = 64 * 1024


def image_upload_limit() -> int:
    """The largest image a member can send: PixVerse's limit, or less where a request cannot carry it."""
    return max(1, min(settings.PIXVERSE_MAX_IMAGE_BYTES,
                      settings.PORTAL_MAX_REQUEST_BYTES - FORM_FIELDS_ALLOWANCE))


def _megabytes(size: int) -> str:
    return f"{size / 2**20:.1f}".removesuffix(".0")


# The form fields that say what PixVerse makes, and the API's names where they differ.
OPTION_FIELDS = ("model", "quality", "duration", "aspect_ratio", "motion_mode", "style", "template_id",
                 "camera_movement", "generate_audio", "multi_clip", "thinking_type", "sound_effect_content")
API_NAMES = {"generate_audio": "generate_audio_switch", "multi_clip": "generate_multi_clip_switch"}
FORM_NAMES = {api: name for name, api in API_NAMES.items()}


def _offered(model: catalog.Model) -> set[str]:
    """The option fields this model has."""
    switches = {"motion_mode": model.fast_motion, "style": model.style, "template_id": model.templates,
                "camera_movement": model.camera_movement, "generate_audio": model.native_audio,
                "multi_clip": model.multi_clip, "thinking_type": model.thinking,
                "sound_effect_content": model.sound_effect}
    return {name for name in OPTION_FIELDS if switches.get(name, True)}


class PaidForm(forms.Form):
    """What every form that starts a job has: which key pays, the cost, and the checks of the
    known balance and the member's monthly limit before anything is stored.

    A subclass says what the job costs (cost) and which settings PixVerse
    would refuse together (combination_problems).
    """

    # New in every form shown, the same when a form comes back with its errors: the
    # same form sent twice makes one job (generations/views.py, _job_code).
    submission = forms.UUIDField(required=False, widget=forms.HiddenInput, initial=uuid.uuid4)

    # Which key pays: shown when the member has more than one (generations/keys.py).
    key = forms.ChoiceField(label=_("Pay with"), required=False)

    kind = "text"
    option_fields: list = []  # the fields that change what the job costs, shown in a grid
    # The fields shown before the prompt (what the job is made from) and after it.
    lead_names: tuple[str, ...] = ()
    tail_names: tuple[str, ...] = ()
    tab_label = _("From text")
    submit_label = _("Generate video")

    def action_url(self) -> str:
        return reverse("create", args=[self.kind])

    @classmethod
    def initial_from(cls, generation) -> dict:
        """The settings of an earlier job, to start a new one from (remix)."""
        return {"prompt": generation.prompt, "source": generation.code}

    def __init__(self, *args, balance: int | None = None, keys=None, **kwargs):
        """balance: the known balance of the member's own key; keys: the KeyChoices they may use."""
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.keys = list(keys or [])
        self.fields["key"].choices = [(choice.value, choice.label) for choice in self.keys]
        # Shown when there is a choice, or a team key whose limit the member should see.
        self.key_shown = len(self.keys) > 1 or any(choice.is_team for choice in self.keys)
        if not self.key_shown:
            self.fields["key"].widget = forms.HiddenInput()
        self.own_balance = balance

    @property
    def lead_fields(self) -> list:
        return [self[name] for name in self.lead_names if name in self.fields]

    @property
    def lead_items(self) -> list:
        """The lead fields, each with the id of its image preview (portal.js) if it has one."""
        return [(field, field.field.widget.attrs.get("data-preview")) for field in self.lead_fields]

    @property
    def tail_fields(self) -> list:
        return [self[name] for name in self.tail_names if name in self.fields]

    @classmethod
    def for_model(cls, data, **kwargs) -> "PaidForm":
        """An unbound form with what the member chose so far (the estimate's)."""
        return cls(initial={name: data.get(name) for name in data}, **kwargs)

    def not_sent_while_editing(self) -> str:
        """htmx's hx-params for the estimate: the form without its token and its files."""
        files = [name for name, field in self.fields.items() if isinstance(field, forms.FileField)]
        return "not " + ",".join(["csrfmiddlewaretoken", *files])

    def chosen_key(self):
        """The KeyChoice the form names (what it was sent with, else its initial value), or None."""
        value = self["key"].value()
        return next((choice for choice in self.keys if choice.value == value), None) or (
            self.keys[0] if len(self.keys) == 1 else None)

    @property
    def known_balance(self) -> int | None:
        """The chosen key's balance as last read; the member's own otherwise."""
        choice = self.chosen_key()
        if choice is None or not choice.is_team:
            return self.own_balance
        balance = choice.credential.balance
        return balance.total if balance else None

    def clean_key(self):
        choice = self.chosen_key()
        if self.keys and choice is None:
            raise ValidationError(_("Choose a key to pay with."), code="key")
        if choice is not None and choice.credential.broken_at:
            raise ValidationError(_("PixVerse refuses this key (%(error)s). Choose another one, or ask "
                                    "staff to replace it.") % {"error": choice.credential.broken_error},
                                  code="key_broken")
        return choice

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        # The combinations PixVerse refuses, said next to the field to change.
        for field, message in self.combination_problems(data.get("prompt") or "-"):
            self.add_error(field, message)
        if self.errors:
            return data
        cost = self.cost()
        if cost is None:
            return data  # a subclass said why next to its field
        if self.known_balance is not None and cost > self.known_balance:
            raise forms.ValidationError(
                _("This video costs %(cost)s credits; the PixVerse balance of this key is %(balance)s."),
                params={"cost": cost, "balance": self.known_balance}, code="balance",
            )
        try:
            check_limit(data.get("key"), cost)
        except LimitReached as refused:
            self.add_error("key" if self.key_shown else None, refused.message)
        return data

    def combination_problems(self, prompt: str = "-") -> list[tuple[str | None, str]]:
        return []

    def cost(self) -> int | None:
        raise NotImplementedError

    def cost_note(self) -> str:
        """What the estimate says when there is no cost yet and nothing is refused."""
        return ""

    def estimate(self) -> dict:
        """What the form says under the settings: the cost, or why there is none, and
        whether the known balance covers it."""
        cost = self.cost()
        balance = self.known_balance
        problems = [] if cost is not None else [message for _field, message in self.combination_problems()]
        choice = self.chosen_key()
        left = choice.left_this_month() if choice else None
        return {"cost": cost, "balance": balance, "problems": problems, "key": choice, "left": left,
                "note": self.cost_note() if cost is None and not problems else "",
                "over_limit": cost is not None and left is not None and cost > left,
                "over_balance": cost is not None and balance is not None and cost > balance}

    def paid_fields(self) -> dict:
        """The job's fields of the form's PaidForm part: its cost and the team key that pays."""
        choice = self.cleaned_data.get("key")
        return {"kind": self.kind, "credits": self.cost(),
                "team_key": choice.credential if choice and choice.is_team else None}

    def inputs(self) -> list[tuple[str, str, object, float | None]]:
        """The files to store with the job as SourceInputs: (role, name, upload, seconds)."""
        return []


class GenerationForm(PaidForm):
    """Settings shared by text-to-video and image-to-video.

    The option fields are those of the chosen model (catalog.Model): its
    lengths, qualities and aspect ratios, and only the switches it has. While
    the member edits, htmx asks for the options again when the model changes
    (views.estimate); without JavaScript a value the model refuses is refused
    next to its field, or above the form for a field the model lacks.
    """

    prompt = PromptField(
        # The longest any model takes; the chosen model's own limit is checked in clean().
        label=_("Prompt"), max_length=catalog.LONGEST_PROMPT,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": _("A wolf in the snow at dawn")}),
    )
    model = forms.ChoiceField(label=_("Model"), choices=_choices(catalog.MODELS),
                              initial=catalog.DEFAULT_MODEL)
    quality = forms.ChoiceField(label=_("Quality"), choices=_choices(catalog.QUALITIES),
                                initial="540p")
    duration = forms.TypedChoiceField(label=_("Duration"), coerce=int, initial=5,
                                      choices=[(d, _seconds(d)) for d in catalog.DURATIONS])
    motion_mode = forms.ChoiceField(label=_("Motion"), required=False, initial="normal",
                                    choices=_choices(catalog.MOTION_MODES, MOTION_LABELS))
    style = forms.ChoiceField(label=_("Style"), required=False,
                              choices=[("", _("None")), *_choices(catalog.STYLES, catalog.STYLE_LABELS)])
    camera_movement = forms.ChoiceField(
        label=_("Camera"), required=False,
        choices=[("", _("As the prompt says")), *_choices(catalog.CAMERA_MOVEMENTS, catalog.CAMERA_LABELS)])
    generate_audio = forms.BooleanField(label=_("With sound"), required=False,
                                        help_text=_("PixVerse makes the sound too; it costs more."))
    multi_clip = forms.BooleanField(label=_("Several shots"), required=False,
                                    help_text=_("The video may cut between shots."))
    thinking_type = forms.ChoiceField(
        label=_("Prompt reasoning"), required=False,
        choices=[("", _("PixVerse decides")), ("enabled", _("On")), ("disabled", _("Off"))])
    # The account's activated templates, set in __init__ (generations/lists.py).
    template_id = forms.TypedChoiceField(label=_("Effect template"), required=False, coerce=int,
                                         empty_value=None, choices=[])
    sound_effect_content = PromptField(
        label=_("Sound effect"), required=False, max_length=catalog.PROMPT_MAX_LENGTH,
        widget=forms.TextInput(attrs={"placeholder": _("Waves, gulls, a distant horn")}))
    negative_prompt = PromptField(
        label=_("Negative prompt"), required=False, max_length=catalog.PROMPT_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": _("What to keep out of the video")}),
    )
    seed = forms.IntegerField(label=_("Seed"), required=False, min_value=0, max_value=catalog.SEED_MAX,
                              help_text=_("The same seed and settings give a similar video."))

    # The option fields this kind of video has at all; the chosen model may have fewer.
    kind_options = OPTION_FIELDS
    # The models that make this kind of video.
    kind_models = catalog.MODELS

    def __init__(self, *args, templates=(), **kwargs):
        """templates: the paying account's effect templates (generations/lists.py)."""
        super().__init__(*args, **kwargs)
        self.templates = {template["id"]: template for template in templates}
        if "sound_effect_content" in self.fields:
            self.fields["sound_effect_content"].help_text = _(
                "PixVerse adds this sound: %(n)s credits for every 5 seconds.") % {
                "n": catalog.SOUND_EFFECT_CREDITS}
        if "template_id" in self.fields:
            self.fields["template_id"].choices = [("", _("None")), *(
                (template["id"], template["name"]) for template in templates)]
        default = catalog.DEFAULT_MODEL if catalog.DEFAULT_MODEL in self.kind_models else self.kind_models[0]
        # Before the field is first read: a bound field keeps the initial value it read.
        self.fields["model"].choices = _choices(self.kind_models)
        self.fields["model"].initial = default
        chosen = self["model"].value()
        self.spec = catalog.model_named(chosen if chosen in self.kind_models else default)
        self._fit_options()
        # The browser stops at the chosen model's prompt limit (portal.js follows a change of
        # model); clean() says so for a longer one sent without the browser's check.
        if "prompt" in self.fields:
            prompt = self.fields["prompt"]
            # The model's own limit, in the field's message too (not the longest of any model).
            prompt.max_length = self.spec.prompt_max
            prompt.validators = [v for v in prompt.validators if not isinstance(v, MaxLengthValidator)]
            prompt.validators.append(MaxLengthValidator(self.spec.prompt_max, message=gettext(
                "The prompt is longer than %(n)s characters.") % {"n": self.spec.prompt_max}))
            prompt.widget.attrs.update({
                "maxlength": self.spec.prompt_max,
                "data-prompt-max": json.dumps({name: catalog.model_named(name).prompt_max
                                               for name in self.kind_models}),
                # portal.js: how much room is left near the limit, and a paste cut at it.
                "data-count-format": gettext("%(n)s of %(max)s characters"),
                "data-cut-note": gettext("What you pasted was cut at this model's limit."),
            })
        # A change of model brings that model's options (views.estimate); "consume" keeps
        # the change from also asking for the cost alone (the answer brings it).
        self.fields["model"].widget.attrs.update({
            "hx-get": f"{reverse('estimate')}?kind={self.kind}&options=1", "hx-trigger": "change consume",
            "hx-target": f"#{self.kind}-options", "hx-swap": "outerHTML", "hx-include": "closest form",
            "hx-params": self.not_sent_while_editing(), "hx-sync": "this:queue last"})

    def _fit_options(self) -> None:
        """Offer what the chosen model accepts: its choices, and only the switches it has."""
        spec = self.spec
        self.lacking = {}  # option fields the model lacks: what the form was sent for them
        for name in OPTION_FIELDS:
            if name in self.fields and (name not in _offered(spec) or name not in self.kind_options):
                if self.is_bound and (value := self.data.get(self.add_prefix(name))) not in (None, ""):
                    self.lacking[name] = value
                del self.fields[name]
        if not self.templates:
            # No template to offer (none activated, or the list cannot be read now).
            self.fields.pop("template_id", None)
        self.fields["quality"].choices = _choices(spec.qualities)
        self.fields["duration"].choices = [(d, _seconds(d)) for d in spec.durations]
        if "aspect_ratio" in self.fields:
            self.fields["aspect_ratio"].choices = _choices(spec.aspect_ratios)

    @property
    def option_fields(self) -> list:
        """The bound option fields the chosen model has, in the order they are shown."""
        return [self[name] for name in OPTION_FIELDS if name in self.fields]

    @classmethod
    def for_model(cls, data, **kwargs) -> "GenerationForm":
        """An unbound form with what the member chose so far, fitted to the chosen model.

        A value the model does not take is replaced by the field's default
        (5 s after a move from v6's 12 s to v5, say), so the options shown are
        always a combination the member could send.
        """
        initial = {name: data.get(name) for name in data}
        fitted = cls(initial=initial, **kwargs)  # its fields are the chosen model's
        for name in OPTION_FIELDS:
            field = fitted.fields.get(name)
            if isinstance(field, forms.BooleanField):
                initial[name] = data.get(name) in ("on", "true", "1")
            elif isinstance(field, forms.ChoiceField) and str(data.get(name)) not in {
                    str(v) for v, _label in field.choices}:
                initial[name] = field.initial if field.initial is not None else field.choices[0][0]
        return cls(initial=initial, **kwargs)

    def api_params(self, prompt: str = "-") -> dict | None:
        """The settings as PixVerse's fields, from what the form shows or was sent;
        None while the duration is no number."""
        def value(name):
            if name in self.lacking:
                return self.lacking[name]
            return self[name].value() if name in self.fields else None

        try:
            duration = int(value("duration"))
        except (TypeError, ValueError):
            return None
        params = {"prompt": prompt, "duration": duration}
        for name in OPTION_FIELDS:
            if name != "duration" and (raw := value(name)) not in (None, "", False):
                # A switch is on (a checkbox's value, or "on" sent for a field the model lacks).
                params[API_NAMES.get(name, name)] = True if name in API_NAMES else raw
        if params.get("sound_effect_content"):
            params["sound_effect_switch"] = True
        if "template_id" in params:
            with contextlib.suppress(TypeError, ValueError):  # else the field says it is no choice
                params["template_id"] = int(params["template_id"])
        return params

    def combination_problems(self, prompt: str = "-") -> list[tuple[str, str]]:
        """(field, why) for each setting the chosen model refuses with the others.

        The rules are the catalog's, the same the sandbox answers 400017 for. A
        problem with a field the model lacks (sent without JavaScript) has no
        field to stand next to: None, above the form.
        """
        params = self.api_params(prompt)
        if params is None:
            return [("duration", gettext("Choose a duration."))]
        problems = []
        for problem in catalog.check_parameters(params):
            name = FORM_NAMES.get(problem.field, problem.field)
            if name == "prompt" and prompt == "-":
                continue
            problems.append((name if name in self.fields else None, problem.message))
        template = self.templates.get(params.get("template_id"))
        if template and template["qualities"] and params.get("quality") not in template["qualities"]:
            # What PixVerse answers 500071 for, said before anything is spent.
            problems.append(("template_id", gettext("%(name)s is made at %(qualities)s only.") % {
                "name": template["name"], "qualities": ", ".join(template["qualities"])}))
        return problems

    def cost(self) -> int | None:
        """The credits these settings cost, or None while they are incomplete or refused."""
        params = self.api_params()
        if params is None or catalog.check_parameters(params):
            return None
        return self.spec.cost(params["quality"], params["duration"], motion_mode=params.get("motion_mode"),
                              audio=bool(params.get("generate_audio_switch")),
                              sound_effect=bool(params.get("sound_effect_switch")))

    @classmethod
    def initial_from(cls, generation) -> dict:
        return super().initial_from(generation) | {
            name: getattr(generation, name) for name in ("negative_prompt", "seed", *OPTION_FIELDS)}

    def generation_fields(self) -> dict:
        data = self.cleaned_data
        return {
            **self.paid_fields(), "prompt": data["prompt"],
            "negative_prompt": data.get("negative_prompt") or "", "model": data["model"],
            "quality": data["quality"], "duration": data["duration"],
            "aspect_ratio": data.get("aspect_ratio") or "", "motion_mode": data.get("motion_mode") or "",
            "seed": data.get("seed"), "style": data.get("style") or "",
            "camera_movement": data.get("camera_movement") or "",
            "thinking_type": data.get("thinking_type") or "",
            "generate_audio": bool(data.get("generate_audio")), "multi_clip": bool(data.get("multi_clip")),
            "template_id": data.get("template_id"),
            "template_name": self.templates[t]["name"][:100] if (t := data.get("template_id")) else "",
            "sound_effect_content": data.get("sound_effect_content") or "",
        }


class TextToVideoForm(GenerationForm):
    source = forms.UUIDField(required=False, widget=forms.HiddenInput)

    def action_url(self) -> str:
        return reverse("create-text")

    aspect_ratio = forms.ChoiceField(label=_("Aspect ratio"), initial="16:9",
                                     choices=_choices(catalog.ASPECT_RATIOS))
    field_order = ["prompt", *OPTION_FIELDS, "negative_prompt", "seed"]


class ImageToVideoForm(GenerationForm):
    image = forms.FileField(label=_("Image"), required=False)
    # An earlier job whose image to use again when no new file is chosen.
    source = forms.UUIDField(required=False, widget=forms.HiddenInput)
    field_order = ["image", "prompt", *OPTION_FIELDS, "negative_prompt", "seed"]
    kind = "image"
    tab_label = _("From image")
    submit_label = _("Animate image")

    def action_url(self) -> str:
        # The path the request-size check knows (views.image_too_large).
        return reverse("create-image")

    def __init__(self, *args, sources=None, **kwargs):
        """sources: the jobs whose images this member may use again."""
        super().__init__(*args, **kwargs)
        self.sources = sources
        self.reused = None
        prepare_image_input(self.fields["image"], "image-preview")

    @staticmethod
    def too_large_message() -> str:
        return _IMAGE_MESSAGES["too_large"] % {"mb": _megabytes(image_upload_limit())}

    def refuse_image(self) -> None:
        """The size message next to the image field, for a post too large to be read."""
        self.cleaned_data = {}  # add_error expects it; a form not bound to data has none
        self.add_error("image", self.too_large_message())

    def source_generation(self):
        """The earlier job whose image is offered, if the member may use it."""
        code = self["source"].value()
        if not code or self.sources is None:
            return None
        try:
            return self.sources.filter(code=code).exclude(source_image="").first()
        except ValidationError:
            return None

    def clean(self):
        data = super().clean()
        if not data.get("image") and "image" not in self.errors:
            self.reused = self.source_generation()
            if self.reused is None:
                self.add_error("image", _("Choose an image to animate."))
        return data

    def clean_image(self):
        upload = self.cleaned_data["image"]
        if upload:
            self.image_info = checked_image(upload)
        return upload


def prepare_image_input(field: forms.FileField, preview: str) -> None:
    """An image input's help and what portal.js needs: the size limit, refusing a file
    that is no image, and the preview (its id) with the image's size."""
    field.help_text = _("JPEG, PNG or WebP, up to %(side)s×%(side)s px and %(mb)s MB.") % {
        "side": settings.PIXVERSE_MAX_IMAGE_SIDE, "mb": _megabytes(image_upload_limit())}
    # portal.js refuses a larger file before anything is sent (a request over
    # PORTAL_MAX_REQUEST_BYTES is never read, so the form's values would not come back).
    field.widget.attrs.update({
        "accept": "image/jpeg,image/png,image/webp", "data-preview": preview,
        "data-max-bytes": image_upload_limit(), "data-too-large": ImageToVideoForm.too_large_message(),
        "data-not-image": _("%(name)s is not an image. Use a JPEG, PNG or WebP image."),
        "data-preview-size": f"{preview}-size",
        "data-size-format": _("%(width)s × %(height)s · %(size)s"),
        "data-kilobytes": _("%(n)s KB"), "data-megabytes": _("%(n)s MB"),
    })


def checked_image(upload):
    """What an uploaded image is (ImageInfo), or a ValidationError saying what is wrong with it."""
    data = upload.read()
    upload.seek(0)
    try:
        return check_image(data)
    except InvalidImage as e:
        message = _IMAGE_MESSAGES.get(e.code, e.message) % {
            "side": settings.PIXVERSE_MAX_IMAGE_SIDE, "mb": settings.PIXVERSE_MAX_IMAGE_BYTES // 2**20}
        raise forms.ValidationError(message, code=e.code) from None


_IMAGE_MESSAGES = {
    "empty": _("The file is empty."),
    "too_large": _("The file is larger than %(mb)s MB."),
    "format": _("Use a JPEG, PNG or WebP image."),
    "dimensions": _("The image must be at most %(side)s×%(side)s pixels."),
    "bomb": _("The image has too many pixels."),
    "damaged": _("The image is damaged or incomplete."),
}


class ApiKeyForm(forms.Form):

    api_key = forms.CharField(
        label=_("PixVerse API key"), max_length=200, strip=True,
        # Never rendered back: a stored key does not return to any page.
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


def _unused_email(email: str, user=None) -> str:
    """An address no other member has (any case): a password reset must reach one person."""
    from django.contrib.auth import get_user_model

    others = get_user_model().objects.filter(email__iexact=email)
    if user is not None:
        others = others.exclude(pk=user.pk)
    if email and others.exists():
        raise ValidationError(_("Another member uses this address. Use your own."), code="email_taken")
    return email


class SignUpForm(UserCreationForm):
    """Django's sign-up, refusing a user name that would look like another member's in every list.

    It asks for an e-mail address: without one "Forgot your password?" cannot reach the member.
    """

    email = forms.EmailField(
        label=_("E-mail address"), max_length=254,
        help_text=_("Only for resetting your password; never shown to the team."),
        widget=forms.EmailInput(attrs={"autocomplete": "email"}))

    class Meta(UserCreationForm.Meta):
        fields = ("username", "email")

    def clean_email(self):
        return _unused_email(self.cleaned_data["email"])

    def clean_username(self):
        username = super().clean_username()
        if not username or self.has_error("username"):
            return username
        if accounts.username_looks_taken(username):
            raise ValidationError(
                _("This user name looks like an existing member's. Choose another one."), code="lookalike")
        if accounts.mixes_scripts(username):
            raise ValidationError(
                _("Use letters of one alphabet only (not Latin and Cyrillic mixed, for example)."),
                code="mixed_scripts")
        return username


class HistoryFilterForm(forms.Form):
    """The team history's filters; they live in the URL, so a filtered view can be shared."""

    q = forms.CharField(label=_("Search prompts"), required=False, max_length=200,
                        widget=forms.TextInput(attrs={"type": "search", "placeholder": _("wolf, forest…")}))
    member = forms.ChoiceField(label=_("Member"), required=False)
    status = forms.ChoiceField(label=_("Status"), required=False)
    kind = forms.ChoiceField(label=_("Kind"), required=False)
    model = forms.ChoiceField(label=_("Model"), required=False,
                              choices=[("", _("Any model")), *_choices(catalog.MODELS)])
    quality = forms.ChoiceField(label=_("Quality"), required=False,
                                choices=[("", _("Any quality")), *_choices(catalog.QUALITIES)])
    since = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, members=(), **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.fields["member"].choices = [("", _("Everyone")), ("me", _("Me")),
                                         *[(u.username, u.username) for u in members]]
        self.fields["status"].choices = [("", _("Any status")), ("active", _("Active")),
                                         *Generation.Status.choices]
        self.fields["kind"].choices = [("", _("Any kind")), *Generation.Kind.choices]

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            self.add_error("until", _("The end date is before the start date."))
        return data

    def more_filters_set(self) -> bool:
        """Whether any filter beyond search and member is set (or wrong): then they show."""
        names = ("status", "kind", "model", "quality", "since", "until")
        return any(self.data.get(name) for name in names) or any(n in self.errors for n in names)

    def apply(self, generations, user):
        """These filters applied to a queryset; fields with errors are left out."""
        data = {name: value for name, value in getattr(self, "cleaned_data", {}).items()
                if name not in self.errors}
        member = data.get("member")
        if member == "me":
            generations = generations.filter(owner=user)
        elif member:
            generations = generations.filter(owner__username=member)
        if data.get("status") == "active":
            generations = generations.filter(status__in=Generation.ACTIVE)
        elif data.get("status"):
            generations = generations.filter(status=data["status"])
        for name in ("kind", "model", "quality"):
            if data.get(name):
                generations = generations.filter(**{name: data[name]})
        if data.get("since"):
            generations = generations.filter(created__date__gte=data["since"])
        if data.get("until"):
            generations = generations.filter(created__date__lte=data["until"])
        if data.get("q"):
            for word in data["q"].casefold().split():
                generations = generations.filter(prompt_folded__contains=word)
        return generations


class InvitationForm(SignUpForm):
    """Sign-up through an invitation: the address is the invitation's, the person picks the rest."""

    class Meta(SignUpForm.Meta):
        fields = ("username",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        del self.fields["email"]  # not asked: the invitation's address is used


def _time_zone_choices():
    # The zones the middleware accepts from the cookie, so a choice always takes effect.
    from pixverse_site.middleware import known_time_zones

    return [("", _("The browser's time zone")),
            *[(name, name.replace("_", " ")) for name in sorted(known_time_zones())
              if "/" in name and not name.startswith(("Etc/", "SystemV/", "US/"))], ("UTC", "UTC")]


class AccountForm(forms.Form):
    """What a member changes about themselves: the address for password resets, the time zone."""

    email = forms.EmailField(
        label=_("E-mail address"), max_length=254, required=False,
        help_text=_("Where a password reset link is sent; never shown to the team."),
        widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    time_zone = forms.ChoiceField(
        label=_("Time zone"), required=False, choices=lazy(_time_zone_choices, list)(),
        help_text=_("Times on every page are shown in it."))

    def __init__(self, *args, user, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_email(self):
        return _unused_email(self.cleaned_data["email"], self.user)


class UsageFilterForm(forms.Form):
    """The usage page's filters (and its CSV's); they live in the URL. An empty month is this one."""

    OWN_KEYS = "own"

    month = forms.CharField(label=_("Month"), required=False, max_length=7,
                            widget=forms.TextInput(attrs={"type": "month", "placeholder": _("YYYY-MM")}))
    member = forms.ChoiceField(label=_("Member"), required=False)
    key = forms.ChoiceField(label=_("Key"), required=False)
    model = forms.ChoiceField(label=_("Model"), required=False,
                              choices=[("", _("Any model")), *_choices(catalog.MODELS)])
    kind = forms.ChoiceField(label=_("Kind"), required=False)

    def __init__(self, *args, members=(), keys=(), **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.fields["member"].choices = [("", _("Everyone")), *[(u.username, u.username) for u in members]]
        self.fields["key"].choices = [("", _("Any key")), (self.OWN_KEYS, _("Members' own keys")),
                                      *[(str(k.pk), k.name or k.masked) for k in keys]]
        self.fields["kind"].choices = [("", _("Any kind")), *Generation.Kind.choices]

    def clean_month(self):
        text = self.cleaned_data["month"]
        if not text:
            return Month.of()
        month = Month.parse(text)
        if month is None:
            raise ValidationError(_("Enter a month as year and month, for example 2026-03."), code="invalid")
        return month

    @property
    def chosen_month(self) -> Month:
        """The month shown: the one asked for, or this one when it is missing or wrong."""
        return getattr(self, "cleaned_data", {}).get("month") or Month.of()

    def apply(self, generations):
        """The month's jobs, with these filters; fields with errors are left out."""
        data = {name: value for name, value in getattr(self, "cleaned_data", {}).items()
                if name not in self.errors}
        generations = self.chosen_month.jobs(generations)
        if data.get("member"):
            generations = generations.filter(owner__username=data["member"])
        if data.get("key") == self.OWN_KEYS:
            generations = generations.filter(team_key__isnull=True)
        elif data.get("key"):
            generations = generations.filter(team_key_id=int(data["key"]))
        for name in ("model", "kind"):
            if data.get(name):
                generations = generations.filter(**{name: data[name]})
        return generations
