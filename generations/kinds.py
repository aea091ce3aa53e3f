"""Each kind of video as one PixVerse generate call, built from a stored job.

The background engine (generations/jobs.py) is the same for every kind: it
uploads the job's inputs one step at a time, then makes the call this module
builds, with the trace id stored for that submission. Adding a kind is a
Generation.Kind, a form, and an entry here.
"""

from collections.abc import Callable

from generations.models import Generation, SourceInput
from generations.pixverse import (
    ExtendRequest,
    FusionRequest,
    ImageReference,
    LipSyncRequest,
    PixVerseClient,
    SoundEffectRequest,
    Submission,
    TransitionRequest,
)

Kind = Generation.Kind
Role = SourceInput.Role


def _inputs(generation: Generation) -> dict[str, list[SourceInput]]:
    by_role: dict[str, list[SourceInput]] = {}
    for source in generation.inputs.all():
        by_role.setdefault(source.role, []).append(source)
    return by_role


def _one(inputs: dict[str, list[SourceInput]], role: str) -> int | None:
    found = inputs.get(role)
    return found[0].pixverse_id if found else None


def _common(generation: Generation) -> dict:
    """The settings every video-making kind shares, as the API's fields."""
    return {"prompt": generation.prompt, "duration": generation.duration, "quality": generation.quality,
            "model": generation.model, "negative_prompt": generation.negative_prompt or None,
            "seed": generation.seed}


def _video_source(generation: Generation, inputs) -> dict:
    """A video of ours (its PixVerse id) or the uploaded one (its media id)."""
    if generation.source_video_id:
        return {"source_video_id": generation.source_video_id}
    return {"video_media_id": _one(inputs, Role.VIDEO)}


def _text(client: PixVerseClient, generation: Generation, trace_id: str) -> Submission:
    return client.text_to_video(generation.video_request(), trace_id=trace_id)


def _image(client: PixVerseClient, generation: Generation, trace_id: str) -> Submission:
    return client.image_to_video(generation.img_id, generation.video_request(), trace_id=trace_id)


def _transition(client: PixVerseClient, generation: Generation, trace_id: str) -> Submission:
    inputs = _inputs(generation)
    return client.transition(TransitionRequest(
        **_common(generation), first_frame_img=_one(inputs, Role.FIRST_FRAME),
        last_frame_img=_one(inputs, Role.LAST_FRAME), motion_mode=generation.motion_mode or None,
    ), trace_id=trace_id)


def _extend(client: PixVerseClient, generation: Generation, trace_id: str) -> Submission:
    return client.extend(ExtendRequest(
        **_common(generation), **_video_source(generation, _inputs(generation)),
        motion_mode=generation.motion_mode or None, style=generation.style or None,
    ), trace_id=trace_id)


def _sound_effect(client: PixVerseClient, generation: Generation, trace_id: str) -> Submission:
    return client.sound_effect(SoundEffectRequest(
        sound_effect_content=generation.prompt, **_video_source(generation, _inputs(generation)),
        original_sound_switch=generation.keep_original_sound or None, seed=generation.seed,
    ), trace_id=trace_id)


def _lip_sync(client: PixVerseClient, generation: Generation, trace_id: str) -> Submission:
    inputs = _inputs(generation)
    speech = ({"audio_media_id": _one(inputs, Role.AUDIO)} if Role.AUDIO in inputs else
              {"lip_sync_tts_speaker_id": generation.tts_speaker, "lip_sync_tts_content": generation.prompt})
    return client.lip_sync(LipSyncRequest(**_video_source(generation, inputs), **speech), trace_id=trace_id)


def _fusion(client: PixVerseClient, generation: Generation, trace_id: str) -> Submission:
    references = tuple(
        ImageReference(type=source.role, img_id=source.pixverse_id, ref_name=source.name)
        for source in generation.inputs.all())
    return client.fusion(FusionRequest(
        **_common(generation), image_references=references, aspect_ratio=generation.aspect_ratio,
    ), trace_id=trace_id)


GENERATE: dict[str, Callable[[PixVerseClient, Generation, str], Submission]] = {
    Kind.TEXT: _text, Kind.IMAGE: _image, Kind.TRANSITION: _transition, Kind.EXTEND: _extend,
    Kind.SOUND_EFFECT: _sound_effect, Kind.LIP_SYNC: _lip_sync, Kind.FUSION: _fusion,
}


def generate(client: PixVerseClient, generation: Generation) -> Submission:
    """The job's generate call, under the trace id stored for its submission."""
    return GENERATE[generation.kind](client, generation, str(generation.trace_id))
