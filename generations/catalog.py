"""What PixVerse offers: each model's options, their limits and prices, as data.

One place for the rules the forms (to offer only what a model accepts and
say why a combination is refused), the sandbox (to refuse what the real API
refuses, with 400017) and the command line use. A new model is one more
`Model(...)` in MODEL_LIST. Sources: ../shared/pixverse/API-NOTES.md,
sections 2, 3.2 and 3.3 (third-party restatements where the docs are silent).

Messages are translated for the member; the sandbox answers them in English.
"""

import math
from dataclasses import dataclass, field

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

QUALITIES = ("360p", "540p", "720p", "1080p")
CLASSIC_RATIOS = ("16:9", "4:3", "1:1", "3:4", "9:16")
WIDE_RATIOS = (*CLASSIC_RATIOS, "2:3", "3:2")
MOTION_MODES = ("normal", "fast")
STYLES = ("anime", "3d_animation", "clay", "comic", "cyberpunk")
STYLE_LABELS = {"anime": gettext_lazy("Anime"), "3d_animation": gettext_lazy("3D animation"),
                "clay": gettext_lazy("Clay"), "comic": gettext_lazy("Comic"),
                "cyberpunk": gettext_lazy("Cyberpunk")}
# Named in the public docs; PixVerse may know more, and refuses what it does not (400017).
CAMERA_MOVEMENTS = ("zoom_in", "zoom_out", "pan_left", "pan_right", "crane_up", "whip_pan",
                    "hitchcock", "fix_bg")
CAMERA_LABELS = {"zoom_in": gettext_lazy("Zoom in"), "zoom_out": gettext_lazy("Zoom out"),
                 "pan_left": gettext_lazy("Pan left"), "pan_right": gettext_lazy("Pan right"),
                 "crane_up": gettext_lazy("Crane up"), "whip_pan": gettext_lazy("Whip pan"),
                 "hitchcock": gettext_lazy("Hitchcock zoom"), "fix_bg": gettext_lazy("Still background")}
THINKING_TYPES = ("auto", "enabled", "disabled")
PROMPT_MAX_LENGTH = 2048  # the prompt limit of every model but v6, and of negative prompts
SEED_MAX = 2_147_483_647

# The V5 price list, credits per video: (5 s, 8 s). Fast motion doubles.
_PER_VIDEO = {"360p": (45, 90), "540p": (45, 90), "720p": (60, 120), "1080p": (120, 240)}
# Per-second billing: (without audio, with audio) a second.
_V6_PER_SECOND = {"360p": (5, 7), "540p": (7, 9), "720p": (9, 12), "1080p": (18, 23)}
_C1_PER_SECOND = {"360p": (6, 8), "540p": (8, 10), "720p": (10, 13), "1080p": (19, 24)}
SOUND_EFFECT_CREDITS = 10  # per started 5 s, for the older models' sound effect switch


@dataclass(frozen=True)
class Model:
    """One PixVerse model: what it accepts and what it costs."""

    name: str
    durations: tuple[int, ...]
    aspect_ratios: tuple[str, ...] = CLASSIC_RATIOS
    qualities: tuple[str, ...] = QUALITIES
    # Where 1080p takes fewer lengths than the rest (None: the same).
    durations_1080p: tuple[int, ...] | None = None
    fast_motion: bool = False  # motion_mode "fast": 5 s only, not at 1080p, double price
    style: bool = False
    camera_movement: bool = False
    templates: bool = False  # effect templates (template_id)
    sound_effect: bool = False  # sound_effect_switch + sound_effect_content on text/image
    native_audio: bool = False  # generate_audio_switch
    multi_clip: bool = False  # generate_multi_clip_switch
    thinking: bool = False  # thinking_type
    extend: bool = True
    fusion: bool = False
    prompt_max: int = PROMPT_MAX_LENGTH
    # Exactly one of: credits per video (5 s, 8 s) or per second (without, with audio).
    per_video: dict = field(default_factory=dict)
    per_second: dict = field(default_factory=dict)

    def accepts_duration(self, duration: int, quality: str | None = None) -> bool:
        allowed = self.durations_1080p if quality == "1080p" and self.durations_1080p else self.durations
        return duration in allowed

    def cost(self, quality: str, duration: int, *, motion_mode: str | None = None,
             audio: bool = False, sound_effect: bool = False) -> int:
        """Credits on the price list; PixVerse's own figure, when it gives one, wins."""
        if quality not in self.qualities or duration not in self.durations:
            raise ValueError(f"no price for {self.name} at {quality}, {duration} s")
        if self.per_second:
            without, with_audio = self.per_second[quality]
            credits = (with_audio if audio and self.native_audio else without) * duration
        else:
            five, eight = self.per_video[quality]
            credits = eight if duration == 8 else five
        if motion_mode == "fast" and self.fast_motion:
            credits *= 2
        if sound_effect and self.sound_effect:
            credits += SOUND_EFFECT_CREDITS * math.ceil(duration / 5)
        return credits


_CLASSIC = dict(durations=(5, 8), durations_1080p=(5,), fast_motion=True, style=True,
                camera_movement=True, templates=True, sound_effect=True, per_video=_PER_VIDEO)
MODEL_LIST = (
    Model("v3.5", **_CLASSIC),
    Model("v4", **_CLASSIC),
    Model("v4.5", **_CLASSIC, fusion=True),
    Model("v5", **_CLASSIC),
    # v5.5 and v5.6 have no published price: the portal assumes v6's rates until
    # PixVerse's submit answer says what it charged.
    Model("v5.5", durations=(5, 8, 10), durations_1080p=(5, 8), native_audio=True, multi_clip=True,
          thinking=True, per_second=_V6_PER_SECOND),
    Model("v5.6", durations=tuple(range(1, 11)), aspect_ratios=WIDE_RATIOS, native_audio=True,
          per_second=_V6_PER_SECOND),
    Model("v6", durations=tuple(range(1, 16)), aspect_ratios=(*WIDE_RATIOS, "21:9"), native_audio=True,
          multi_clip=True, thinking=True, fusion=True, prompt_max=5000, per_second=_V6_PER_SECOND),
    Model("c1", durations=tuple(range(1, 16)), aspect_ratios=WIDE_RATIOS, native_audio=True,
          extend=False, per_second=_C1_PER_SECOND),
)
MODELS_BY_NAME = {model.name: model for model in MODEL_LIST}
MODELS = tuple(MODELS_BY_NAME)
LONGEST_PROMPT = max(model.prompt_max for model in MODEL_LIST)
DEFAULT_MODEL = "v5"
# Every length some model takes, for the filters and the Generation column.
DURATIONS = tuple(sorted({d for model in MODEL_LIST for d in model.durations}))
ASPECT_RATIOS = tuple(dict.fromkeys(r for model in MODEL_LIST for r in model.aspect_ratios))


def model_named(name: str | None) -> Model:
    """The model of this name; a request without one gets PixVerse's default as we assume it."""
    return MODELS_BY_NAME.get(name or DEFAULT_MODEL) or MODELS_BY_NAME[DEFAULT_MODEL]


def credit_cost(quality: str, duration: int, motion_mode: str | None = None, *,
                model: str | None = None, audio: bool = False, sound_effect: bool = False) -> int:
    """Credits the generation costs on the price list."""
    return model_named(model).cost(quality, duration, motion_mode=motion_mode, audio=audio,
                                   sound_effect=sound_effect)


@dataclass(frozen=True)
class ParameterProblem:
    """One refused parameter: the field it concerns and why, in plain words."""

    field: str
    message: str


def _seconds_list(durations: tuple[int, ...]) -> str:
    if len(durations) > 3 and durations == tuple(range(durations[0], durations[-1] + 1)):
        return _("%(low)s to %(high)s") % {"low": durations[0], "high": durations[-1]}
    return ", ".join(str(d) for d in durations)


def _switch_on(params: dict, name: str) -> bool:
    return params.get(name) not in (None, False, "", 0)


def check_parameters(params: dict) -> list[ParameterProblem]:
    """The problems the real API would refuse in these generation parameters.

    An empty list when PixVerse takes them. The rules come from the chosen
    model (PixVerse's default when the request names none).
    """
    problems: list[ParameterProblem] = []

    def refuse(name: str, message: str) -> None:
        problems.append(ParameterProblem(name, message))

    name = params.get("model")
    if name is not None and name not in MODELS_BY_NAME:
        refuse("model", _("Model must be one of %(models)s.") % {"models": ", ".join(MODELS)})
    model = model_named(name)
    prompt = params.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        refuse("prompt", _("The prompt is empty."))
    elif len(prompt) > model.prompt_max:
        refuse("prompt", _("The prompt is longer than %(n)s characters.") % {"n": model.prompt_max})
    negative = params.get("negative_prompt")
    if negative is not None and (not isinstance(negative, str) or len(negative) > PROMPT_MAX_LENGTH):
        refuse("negative_prompt", _("The negative prompt must be text of at most %(n)s characters.")
               % {"n": PROMPT_MAX_LENGTH})
    quality = params.get("quality")
    if quality not in model.qualities:
        refuse("quality", _("Quality must be one of %(qualities)s.")
               % {"qualities": ", ".join(model.qualities)})
    duration = params.get("duration")
    if type(duration) is not int or duration not in model.durations:
        refuse("duration", _("The %(model)s model makes videos of %(seconds)s seconds.")
               % {"model": model.name, "seconds": _seconds_list(model.durations)})
    elif not model.accepts_duration(duration, quality):
        refuse("duration", _("The %(model)s model makes 1080p videos of %(seconds)s seconds only.")
               % {"model": model.name, "seconds": _seconds_list(model.durations_1080p)})
    aspect = params.get("aspect_ratio")
    if aspect is not None and aspect not in model.aspect_ratios:
        refuse("aspect_ratio", _("The %(model)s model takes the aspect ratios %(ratios)s.")
               % {"model": model.name, "ratios": ", ".join(model.aspect_ratios)})
    motion = params.get("motion_mode")
    if motion is not None and motion not in MOTION_MODES:
        refuse("motion_mode", _("Motion mode must be normal or fast."))
    elif motion == "fast":
        if not model.fast_motion:
            refuse("motion_mode", _("The %(model)s model has no fast motion.") % {"model": model.name})
        else:
            if duration != 5:
                refuse("motion_mode", _("Fast motion is available for 5-second videos only."))
            if quality == "1080p":
                refuse("motion_mode", _("Fast motion is not available at 1080p."))
    style = params.get("style")
    if style is not None and style not in STYLES:
        refuse("style", _("Style must be one of %(styles)s.") % {"styles": ", ".join(STYLES)})
    elif style is not None and not model.style:
        refuse("style", _("The %(model)s model has no styles.") % {"model": model.name})
    camera = params.get("camera_movement")
    if camera is not None and (not model.camera_movement or camera not in CAMERA_MOVEMENTS):
        refuse("camera_movement", _("The %(model)s model has no camera movement %(name)s.")
               % {"model": model.name, "name": camera})
    template = params.get("template_id")
    if template is not None and not model.templates:
        refuse("template_id", _("The %(model)s model has no effect templates.") % {"model": model.name})
    elif template is not None and camera is not None:
        refuse("camera_movement", _("A camera movement cannot be used with an effect template."))
    switches = (
        ("generate_audio_switch", model.native_audio, _("The %(model)s model makes no sound of its own.")),
        ("generate_multi_clip_switch", model.multi_clip, _("The %(model)s model has no multi-clip videos.")),
        ("sound_effect_switch", model.sound_effect, _("The %(model)s model adds no sound effects.")),
    )
    for switch, offered, message in switches:
        if _switch_on(params, switch) and not offered:
            refuse(switch, message % {"model": model.name})
    content = params.get("sound_effect_content")
    if content is not None and (not isinstance(content, str) or len(content) > PROMPT_MAX_LENGTH):
        refuse("sound_effect_content", _("The sound description must be text of at most %(n)s characters.")
               % {"n": PROMPT_MAX_LENGTH})
    thinking = params.get("thinking_type")
    if thinking is not None and (not model.thinking or thinking not in THINKING_TYPES):
        refuse("thinking_type", _("The %(model)s model takes no thinking mode %(name)s.")
               % {"model": model.name, "name": thinking})
    seed = params.get("seed")
    whole = isinstance(seed, int) and not isinstance(seed, bool)
    if seed is not None and (not whole or not 0 <= seed <= SEED_MAX):
        refuse("seed", _("Seed must be a whole number from 0 to %(max)s.") % {"max": SEED_MAX})
    return problems
