"""The generation kinds beyond text and image: what each requires, refuses and costs.

Pure functions on the JSON body of a generate call, shared by the client (to
refuse a request before it costs a rate-limit slot) and the sandbox (to
refuse what the real API refuses). The common fields (prompt, model, quality,
duration, aspect ratio, motion mode, seed, style) are catalog.check_parameters'
business; this module adds what each kind needs on top. Sources:
../shared/pixverse/API-NOTES.md, section 3.
"""

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from generations import catalog
from generations.catalog import ParameterProblem

SOUND_CONTENT_MAX_LENGTH = 2048
TTS_CONTENT_MAX_LENGTH = 200
FUSION_MAX_REFERENCES = 3
REFERENCE_TYPES = ("subject", "background")
# Letters, digits, "_" and space, at most 30: the name the prompt calls it by, as @name.
REFERENCE_NAME_MAX_LENGTH = 30
REFERENCE_NAME = re.compile(rf"[\w ]{{1,{REFERENCE_NAME_MAX_LENGTH}}}")
# Which models make fusion and extend videos: the catalog's description of each model.
FUSION_MODELS = tuple(model.name for model in catalog.MODEL_LIST if model.fusion)
MODELS_WITHOUT_EXTEND = tuple(model.name for model in catalog.MODEL_LIST if not model.extend)
VIDEO_SOURCES = ("source_video_id", "video_media_id")
# Uploaded videos: at most this many pixels a side; shorter than this to be extended.
MEDIA_MAX_SIDE = 1920
EXTEND_MAX_SECONDS = 40

# Prices the catalog does not know (API-NOTES.md, 3.3).
LIP_SYNC_CREDITS = 4  # per second of audio, or per TTS_BYTES_PER_UNIT bytes of TTS text
TTS_BYTES_PER_UNIT = 15
SOUND_EFFECT_CREDITS = catalog.SOUND_EFFECT_CREDITS  # per SOUND_EFFECT_SECONDS of video, on any kind
SOUND_EFFECT_SECONDS = 5


def lip_sync_cost(*, audio_seconds: float | None = None, tts_content: str | None = None) -> int:
    """Credits for a lip sync: by the audio's length, or by the TTS text's UTF-8 bytes."""
    if audio_seconds is not None:
        return LIP_SYNC_CREDITS * math.ceil(audio_seconds)
    if tts_content is not None:
        return LIP_SYNC_CREDITS * math.ceil(len(tts_content.encode()) / TTS_BYTES_PER_UNIT)
    raise ValueError("a lip sync is priced by its audio or its TTS text")


def sound_effect_cost(video_seconds: float) -> int:
    """Credits for a sound effect on a video this long (also the +price on text/image)."""
    return SOUND_EFFECT_CREDITS * math.ceil(video_seconds / SOUND_EFFECT_SECONDS)


# --- Checks ----------------------------------------------------------------------------


def _is_id(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63


def _given(body: dict, name: str) -> bool:
    return body.get(name) not in (None, "", [])


def _id_problems(body: dict, names: tuple[str, ...]) -> list[ParameterProblem]:
    return [ParameterProblem(name, f"{name} must be a PixVerse id (a whole number).")
            for name in names if _given(body, name) and not _is_id(body[name])]


def _one_video_source(body: dict) -> list[ParameterProblem]:
    if all(_given(body, name) for name in VIDEO_SOURCES):
        return [ParameterProblem("source_video_id",
                                 "Give source_video_id or video_media_id, not both.")]
    return _id_problems(body, VIDEO_SOURCES)


def _seed_problems(body: dict) -> list[ParameterProblem]:
    seed = body.get("seed")
    if seed is None or (isinstance(seed, int) and not isinstance(seed, bool)
                        and 0 <= seed <= catalog.SEED_MAX):
        return []
    return [ParameterProblem("seed", f"Seed must be a whole number from 0 to {catalog.SEED_MAX}.")]


def _switch_problems(body: dict, name: str) -> list[ParameterProblem]:
    if body.get(name) is None or isinstance(body[name], bool):
        return []
    return [ParameterProblem(name, f"{name} must be true or false.")]


def _text_problems(body: dict, name: str, limit: int) -> list[ParameterProblem]:
    value = body.get(name)
    if value is None:
        return []
    if not isinstance(value, str) or not value.strip():
        return [ParameterProblem(name, f"{name} must be text.")]
    if len(value) > limit:
        return [ParameterProblem(name, f"{name} is longer than {limit} characters.")]
    return []


def check_video_extras(body: dict) -> list[ParameterProblem]:
    """The optional template, camera and sound fields of a text or image generate call."""
    problems = _id_problems(body, ("template_id",))
    camera = body.get("camera_movement")
    if camera is not None and not (isinstance(camera, str) and camera.strip()):
        problems.append(ParameterProblem("camera_movement", "camera_movement must be text."))
    if _given(body, "template_id") and _given(body, "camera_movement"):
        problems.append(ParameterProblem("camera_movement",
                                         "A camera movement cannot go with a template."))
    problems += _switch_problems(body, "sound_effect_switch")
    problems += _text_problems(body, "sound_effect_content", SOUND_CONTENT_MAX_LENGTH)
    if _given(body, "sound_effect_content") and body.get("sound_effect_switch") is not True:
        problems.append(ParameterProblem("sound_effect_content",
                                         "sound_effect_content needs sound_effect_switch true."))
    return problems


def check_transition(body: dict) -> list[ParameterProblem]:
    problems = catalog.check_parameters(body)
    problems += _id_problems(body, ("first_frame_img", "last_frame_img"))
    return problems


def check_extend(body: dict) -> list[ParameterProblem]:
    problems = catalog.check_parameters(body)
    problems += _one_video_source(body)
    if body.get("model") in MODELS_WITHOUT_EXTEND:
        problems.append(ParameterProblem("model", f"Model {body['model']} cannot extend a video."))
    return problems


def check_sound_effect(body: dict) -> list[ParameterProblem]:
    problems = _one_video_source(body)
    problems += _text_problems(body, "sound_effect_content", SOUND_CONTENT_MAX_LENGTH)
    problems += _switch_problems(body, "original_sound_switch")
    problems += _seed_problems(body)
    return problems


def check_lip_sync(body: dict) -> list[ParameterProblem]:
    problems = _one_video_source(body)
    problems += _id_problems(body, ("audio_media_id",))
    speaker, content = body.get("lip_sync_tts_speaker_id"), body.get("lip_sync_tts_content")
    if _given(body, "audio_media_id") and (_given(body, "lip_sync_tts_speaker_id")
                                           or _given(body, "lip_sync_tts_content")):
        problems.append(ParameterProblem(
            "audio_media_id", "Give audio_media_id or a TTS speaker and text, not both."))
    elif _given(body, "lip_sync_tts_speaker_id") != _given(body, "lip_sync_tts_content"):
        problems.append(ParameterProblem(
            "lip_sync_tts_content", "TTS needs both lip_sync_tts_speaker_id and lip_sync_tts_content."))
    if speaker is not None and not isinstance(speaker, str | int):
        problems.append(ParameterProblem("lip_sync_tts_speaker_id", "The speaker id must be text."))
    if content is not None:
        problems += _text_problems(body, "lip_sync_tts_content", TTS_CONTENT_MAX_LENGTH)
    return problems


def check_fusion(body: dict) -> list[ParameterProblem]:
    problems = catalog.check_parameters(body)
    if body.get("model") is not None and body["model"] not in FUSION_MODELS:
        problems.append(ParameterProblem(
            "model", f"Fusion is available on {', '.join(FUSION_MODELS)} only."))
    references = body.get("image_references")
    if references is None:
        return problems
    if not isinstance(references, list) or not 1 <= len(references) <= FUSION_MAX_REFERENCES:
        return [*problems, ParameterProblem(
            "image_references", f"Give 1 to {FUSION_MAX_REFERENCES} image references.")]
    prompt = body.get("prompt") if isinstance(body.get("prompt"), str) else ""
    names = []
    for reference in references:
        if not isinstance(reference, dict):
            problems.append(ParameterProblem("image_references", "Each reference is an object."))
            continue
        if reference.get("type") not in REFERENCE_TYPES:
            problems.append(ParameterProblem(
                "image_references", f"A reference's type is {' or '.join(REFERENCE_TYPES)}."))
        if not _is_id(reference.get("img_id")):
            problems.append(ParameterProblem(
                "image_references", "A reference's img_id must be an uploaded image's id."))
        name = reference.get("ref_name")
        if not reference_name_is_valid(name):
            problems.append(ParameterProblem("image_references", (
                f"A reference name is 1 to {REFERENCE_NAME_MAX_LENGTH} letters, digits, "
                "_ or spaces.")))
            continue
        if name in names:
            problems.append(ParameterProblem("image_references", f"Two references are named {name}."))
        names.append(name)
        if f"@{name}" not in prompt:
            problems.append(ParameterProblem("prompt", f"The prompt must name @{name}."))
    return problems


def reference_name_is_valid(name) -> bool:
    return isinstance(name, str) and bool(name.strip()) and bool(REFERENCE_NAME.fullmatch(name))


# --- The kinds as data -----------------------------------------------------------------


@dataclass(frozen=True)
class GenerationKind:
    """One generate call: its name (the sandbox's SandboxVideo.kind), path and rules.

    required lists groups of fields: each group needs at least one of its
    fields set (the real API answers 400011 otherwise); check finds what it
    answers 400017 for.
    """

    name: str
    path: str
    required: tuple[tuple[str, ...], ...]
    check: Callable[[dict], list[ParameterProblem]]


def _check_text_or_image(body: dict) -> list[ParameterProblem]:
    return catalog.check_parameters(body) + check_video_extras(body)


KINDS = {kind.name: kind for kind in (
    # Text and image keep the original refusals: an empty prompt is 400017 there.
    GenerationKind("text", "/video/text/generate", (), _check_text_or_image),
    GenerationKind("image", "/video/img/generate", (("img_id",),), _check_text_or_image),
    GenerationKind("transition", "/video/transition/generate",
                   (("prompt",), ("first_frame_img",), ("last_frame_img",), ("model",),
                    ("duration",), ("quality",)), check_transition),
    GenerationKind("extend", "/video/extend/generate",
                   (("prompt",), ("model",), ("duration",), ("quality",), VIDEO_SOURCES),
                   check_extend),
    GenerationKind("sound_effect", "/video/sound_effect/generate",
                   (("sound_effect_content",), VIDEO_SOURCES), check_sound_effect),
    GenerationKind("lip_sync", "/video/lip_sync/generate",
                   (VIDEO_SOURCES, ("audio_media_id", "lip_sync_tts_speaker_id")), check_lip_sync),
    GenerationKind("fusion", "/video/fusion/generate",
                   (("image_references",), ("prompt",), ("model",), ("duration",), ("quality",),
                    ("aspect_ratio",)), check_fusion),
)}


def missing(kind: str, body: dict) -> list[ParameterProblem]:
    """The required fields (or groups of alternatives) the body leaves empty."""
    return [ParameterProblem(group[0], f"{' or '.join(group)} is required.")
            for group in KINDS[kind].required if not any(_given(body, name) for name in group)]


def problems(kind: str, body: dict) -> list[ParameterProblem]:
    """Everything the real API would refuse in this body: missing fields first."""
    empty = missing(kind, body)
    empty_fields = {problem.field for problem in empty}
    return empty + [problem for problem in KINDS[kind].check(body)
                    if problem.field not in empty_fields]
