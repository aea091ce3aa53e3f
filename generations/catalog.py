"""What PixVerse offers: the generation parameters, their limits and prices.

One place for the values both the client (to check a request before it
costs a rate-limit slot), the sandbox (to refuse what the real API refuses)
and the forms use. Sources: ../shared/pixverse/API-NOTES.md, section 2.
"""

from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

MODELS = ("v3.5", "v4", "v4.5", "v5", "v5.5", "v6")
DEFAULT_MODEL = "v5"
QUALITIES = ("360p", "540p", "720p", "1080p")
DURATIONS = (5, 8)
ASPECT_RATIOS = ("16:9", "4:3", "1:1", "3:4", "9:16")
MOTION_MODES = ("normal", "fast")
STYLES = ("anime", "3d_animation", "clay", "comic", "cyberpunk")
STYLE_LABELS = {"anime": _("Anime"), "3d_animation": _("3D animation"), "clay": _("Clay"),
                "comic": _("Comic"), "cyberpunk": _("Cyberpunk")}
PROMPT_MAX_LENGTH = 2048
SEED_MAX = 2_147_483_647

# Credits per video on the V5 price list: (5 s, 8 s). Fast motion doubles.
_PRICES = {
    "360p": (45, 90),
    "540p": (45, 90),
    "720p": (60, 120),
    "1080p": (120, 240),
}


def credit_cost(quality: str, duration: int, motion_mode: str | None = None) -> int:
    """Credits the generation costs on the real price list."""
    if duration not in DURATIONS:
        raise ValueError(f"no price for a {duration} s video")
    five, eight = _PRICES[quality]
    cost = eight if duration == 8 else five
    return cost * 2 if motion_mode == "fast" else cost


@dataclass(frozen=True)
class ParameterProblem:
    """One refused parameter: the field it concerns and why, in plain words."""

    field: str
    message: str


def check_parameters(params: dict) -> list[ParameterProblem]:
    """The problems the real API would refuse in these generation parameters.

    Returns an empty list when the combination is acceptable. Messages are
    plain English; the portal's forms show their own translated ones.
    """
    problems = []
    prompt = params.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        problems.append(ParameterProblem("prompt", "The prompt is empty."))
    elif len(prompt) > PROMPT_MAX_LENGTH:
        problems.append(
            ParameterProblem("prompt", f"The prompt is longer than {PROMPT_MAX_LENGTH} characters.")
        )
    negative = params.get("negative_prompt")
    if negative is not None and not isinstance(negative, str):
        problems.append(ParameterProblem("negative_prompt", "The negative prompt must be text."))
    elif negative is not None and len(negative) > PROMPT_MAX_LENGTH:
        problems.append(
            ParameterProblem(
                "negative_prompt",
                f"The negative prompt is longer than {PROMPT_MAX_LENGTH} characters.",
            )
        )
    quality = params.get("quality")
    if quality not in QUALITIES:
        problems.append(ParameterProblem("quality", f"Quality must be one of {', '.join(QUALITIES)}."))
    duration = params.get("duration")
    if type(duration) is not int or duration not in DURATIONS:
        problems.append(ParameterProblem("duration", "Duration must be 5 or 8 seconds."))
    model = params.get("model")
    if model is not None and model not in MODELS:
        problems.append(ParameterProblem("model", f"Model must be one of {', '.join(MODELS)}."))
    aspect = params.get("aspect_ratio")
    if aspect is not None and aspect not in ASPECT_RATIOS:
        problems.append(
            ParameterProblem("aspect_ratio", f"Aspect ratio must be one of {', '.join(ASPECT_RATIOS)}.")
        )
    motion = params.get("motion_mode")
    if motion is not None and motion not in MOTION_MODES:
        problems.append(ParameterProblem("motion_mode", "Motion mode must be normal or fast."))
    if motion == "fast" and duration == 8:
        problems.append(ParameterProblem("motion_mode", "Fast motion is available for 5 s only."))
    if motion == "fast" and quality == "1080p":
        problems.append(ParameterProblem("motion_mode", "Fast motion is not available at 1080p."))
    if quality == "1080p" and duration == 8:
        problems.append(ParameterProblem("duration", "1080p is available for 5 s only."))
    style = params.get("style")
    if style is not None and style not in STYLES:
        problems.append(ParameterProblem("style", f"Style must be one of {', '.join(STYLES)}."))
    seed = params.get("seed")
    if seed is not None and (
        not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= SEED_MAX
    ):
        problems.append(ParameterProblem("seed", f"Seed must be a whole number from 0 to {SEED_MAX}."))
    return problems
