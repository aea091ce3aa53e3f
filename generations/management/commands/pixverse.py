"""Try each PixVerse call from the command line, as the spec's section 7 does with Postman.

    python manage.py pixverse balance
    python manage.py pixverse text --prompt P --duration 5 --quality 360p [options]
    python manage.py pixverse upload FILE
    python manage.py pixverse image --img-id N --prompt P --duration 5 --quality 540p [options]
    python manage.py pixverse status VIDEO_ID
    python manage.py pixverse transition --first-img-id A --last-img-id B --prompt P \
        --duration 5 --quality 540p
    python manage.py pixverse extend (--video-id V | --media-id M) --prompt P --duration 5 --quality 540p
    python manage.py pixverse sound (--video-id V | --media-id M) --content TEXT [--keep-original-sound]
    python manage.py pixverse lipsync (--video-id V | --media-id M) \
        (--audio-media-id A | --speaker S --text T)
    python manage.py pixverse fusion --ref subject:NAME=IMG_ID [--ref background:NAME=IMG_ID ...] --prompt P \
        --duration 5 --quality 540p --aspect-ratio 16:9 [--model v4.5]
    python manage.py pixverse media-upload FILE
    python manage.py pixverse speakers
    python manage.py pixverse effects

Success prints one JSON object (a list for speakers and effects) on stdout and
exits 0. An API error prints its kind, ErrCode, ErrMsg and trace id on stderr
and exits 1. The key comes from
--user (that member's stored key) or PIXVERSE_API_KEY, and is never printed.
A request PixVerse would refuse is refused before it is sent
(invalid_parameters, ErrCode=None); --no-check sends it anyway, to see the
server's own answer. Every request keeps to the shared 1 request/s per key limit, so several of
these started at once with one key queue behind each other.
"""

import argparse
import dataclasses
import json
import os
import re
import sys
import uuid
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from generations.crypto import CannotDecrypt
from generations.models import ApiCredential
from generations.pixverse import (
    ExtendRequest,
    FusionRequest,
    ImageReference,
    LipSyncRequest,
    PixVerseClient,
    PixVerseError,
    SoundEffectRequest,
    TransitionRequest,
    VideoRequest,
)

EXIT_API_ERROR = 1


def _add_trace_id(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trace-id",
        help="Resend an earlier submission with its trace id instead of starting a new one.",
    )


def _add_generation_options(parser: argparse.ArgumentParser, *, style: bool = True) -> None:
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--duration", type=int, required=True)
    parser.add_argument("--quality", required=True)
    parser.add_argument("--model")
    parser.add_argument("--motion-mode")
    parser.add_argument("--negative-prompt")
    parser.add_argument("--seed", type=int)
    if style:
        parser.add_argument("--style")
    _add_trace_id(parser)


def _add_source_video(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--video-id", type=int, help="A PixVerse video of this key's account.")
    source.add_argument("--media-id", type=int, help="A video uploaded with media-upload.")


def _add_video_extras(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--template-id", type=int, help="An effect template (see `effects`).")
    parser.add_argument("--camera-movement")
    parser.add_argument("--sound-effect", metavar="TEXT",
                        help="Add a generated sound described by TEXT (+10 credits per 5 s).")


REFERENCE = re.compile(r"^(subject|background):(.+)=(\d+)$")


def _reference(value: str) -> ImageReference:
    """--ref TYPE:NAME=IMG_ID, e.g. subject:cat=1234."""
    match = REFERENCE.match(value)
    if match is None:
        raise argparse.ArgumentTypeError(
            f"{value!r}: expected subject:NAME=IMG_ID or background:NAME=IMG_ID")
    return ImageReference(type=match[1], img_id=int(match[3]), ref_name=match[2])


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {k: _jsonable(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    return value


class Command(BaseCommand):
    help = ("Call the PixVerse API: balance, text, upload, image, status, transition, extend, "
            "sound, lipsync, fusion, media-upload, speakers, effects.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", help="Use this member's stored PixVerse key.")
        parser.add_argument("--base-url", help="Default: the PIXVERSE_BASE_URL setting.")
        parser.add_argument("--no-check", action="store_true",
                            help="Send what the portal would refuse before sending (the server's answer).")
        calls = parser.add_subparsers(dest="call", required=True, parser_class=argparse.ArgumentParser)
        calls.add_parser("balance", help="Credits left on the key's account.")
        text = calls.add_parser("text", help="Start a text-to-video generation.")
        _add_generation_options(text)
        text.add_argument("--aspect-ratio")
        _add_video_extras(text)
        upload = calls.add_parser("upload", help="Upload an image for image-to-video.")
        upload.add_argument("file", type=Path)
        image = calls.add_parser("image", help="Start an image-to-video generation.")
        image.add_argument("--img-id", type=int, required=True)
        _add_generation_options(image)
        image.add_argument("--aspect-ratio", help="Ignored: the image sets the aspect ratio.")
        _add_video_extras(image)
        status = calls.add_parser("status", help="Read one video's state.")
        status.add_argument("video_id", type=int)
        transition = calls.add_parser("transition", help="A video from a first to a last frame.")
        transition.add_argument("--first-img-id", type=int, required=True)
        transition.add_argument("--last-img-id", type=int, required=True)
        _add_generation_options(transition, style=False)
        extend = calls.add_parser("extend", help="Continue a video.")
        _add_source_video(extend)
        _add_generation_options(extend)
        sound = calls.add_parser("sound", help="Add a generated sound effect to a video.")
        _add_source_video(sound)
        sound.add_argument("--content", required=True, help="The sound, in words.")
        sound.add_argument("--keep-original-sound", action="store_true")
        sound.add_argument("--seed", type=int)
        _add_trace_id(sound)
        lipsync = calls.add_parser("lipsync", help="Move a video's lips to speech.")
        _add_source_video(lipsync)
        lipsync.add_argument("--audio-media-id", type=int, help="An audio uploaded with media-upload.")
        lipsync.add_argument("--speaker", help="A TTS voice's id (see `speakers`), with --text.")
        lipsync.add_argument("--text", help="What the TTS voice says, with --speaker.")
        _add_trace_id(lipsync)
        fusion = calls.add_parser("fusion", help="A video made of 1 to 3 uploaded images.")
        fusion.add_argument("--ref", type=_reference, action="append", required=True,
                            metavar="TYPE:NAME=IMG_ID",
                            help="subject:NAME=IMG_ID or background:NAME=IMG_ID; the prompt "
                                 "names each as @NAME.")
        fusion.add_argument("--prompt", required=True)
        fusion.add_argument("--duration", type=int, required=True)
        fusion.add_argument("--quality", required=True)
        fusion.add_argument("--aspect-ratio", required=True)
        fusion.add_argument("--model")
        fusion.add_argument("--negative-prompt")
        fusion.add_argument("--seed", type=int)
        _add_trace_id(fusion)
        media = calls.add_parser("media-upload", help="Upload a video or audio for the media calls.")
        media.add_argument("file", type=Path)
        calls.add_parser("speakers", help="The TTS voices for lipsync --speaker.")
        calls.add_parser("effects", help="The effect templates for --template-id.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["user"]:
            client = self._client_for_user(options["user"], options["base_url"])
        else:
            client = PixVerseClient(self._api_key(), base_url=options["base_url"])
        client.check = not options["no_check"]
        try:
            result = self._call(client, options)
        except PixVerseError as e:
            self.stderr.write(
                f"{e.kind}: ErrCode={e.err_code} ErrMsg={json.dumps(e.err_msg, ensure_ascii=False)}"
                f" trace_id={e.trace_id}"
            )
            sys.exit(EXIT_API_ERROR)
        self.stdout.write(json.dumps(_jsonable(result), ensure_ascii=False))

    def _api_key(self) -> str:
        key = os.environ.get("PIXVERSE_API_KEY", "")
        if not key:
            raise CommandError("No key: pass --user USERNAME or set PIXVERSE_API_KEY.")
        return key

    def _client_for_user(self, username: str, base_url: str | None) -> PixVerseClient:
        credential = ApiCredential.objects.filter(user__username=username).first()
        if credential is None:
            raise CommandError(f"--user {username}: no such member, or no PixVerse key stored.")
        try:
            return credential.client(base_url=base_url)
        except CannotDecrypt:
            raise CommandError(
                f"--user {username}: the stored key cannot be decrypted with PORTAL_ENCRYPTION_KEYS."
            ) from None

    def _call(self, client: PixVerseClient, options: dict[str, Any]) -> Any:
        call = options["call"]
        if call == "balance":
            balance = client.balance()
            return {**_jsonable(balance), "total": balance.total}
        if call == "upload":
            return client.upload_image(_read(options["file"]))
        if call == "media-upload":
            path: Path = options["file"]
            return client.upload_media(_read(path), path.name)
        if call == "status":
            return client.video_status(options["video_id"])
        if call == "speakers":
            return client.tts_speakers()
        if call == "effects":
            return client.effect_templates()
        trace_id = options["trace_id"] or str(uuid.uuid4())
        if call in ("text", "image"):
            request = VideoRequest(
                prompt=options["prompt"], duration=options["duration"], quality=options["quality"],
                model=options["model"], aspect_ratio=options["aspect_ratio"],
                motion_mode=options["motion_mode"], negative_prompt=options["negative_prompt"],
                seed=options["seed"], style=options["style"], template_id=options["template_id"],
                camera_movement=options["camera_movement"],
                sound_effect_switch=True if options["sound_effect"] else None,
                sound_effect_content=options["sound_effect"],
            )
            if call == "text":
                return client.text_to_video(request, trace_id=trace_id)
            return client.image_to_video(options["img_id"], request, trace_id=trace_id)
        return self._other_kind(client, call, options, trace_id)

    def _other_kind(self, client: PixVerseClient, call: str, options: dict[str, Any],
                    trace_id: str) -> Any:
        # An unset --model leaves each request's own default (fusion's is v4.5).
        model = {"model": options["model"]} if options.get("model") else {}
        sources = {"source_video_id": options.get("video_id"),
                   "video_media_id": options.get("media_id")}
        if call == "transition":
            return client.transition(TransitionRequest(
                prompt=options["prompt"], first_frame_img=options["first_img_id"],
                last_frame_img=options["last_img_id"], duration=options["duration"],
                quality=options["quality"], negative_prompt=options["negative_prompt"],
                seed=options["seed"], motion_mode=options["motion_mode"], **model,
            ), trace_id=trace_id)
        if call == "extend":
            return client.extend(ExtendRequest(
                prompt=options["prompt"], duration=options["duration"], quality=options["quality"],
                negative_prompt=options["negative_prompt"], seed=options["seed"],
                motion_mode=options["motion_mode"], style=options["style"], **sources, **model,
            ), trace_id=trace_id)
        if call == "sound":
            return client.sound_effect(SoundEffectRequest(
                sound_effect_content=options["content"],
                original_sound_switch=True if options["keep_original_sound"] else None,
                seed=options["seed"], **sources,
            ), trace_id=trace_id)
        if call == "lipsync":
            return client.lip_sync(LipSyncRequest(
                audio_media_id=options["audio_media_id"],
                lip_sync_tts_speaker_id=options["speaker"], lip_sync_tts_content=options["text"],
                **sources,
            ), trace_id=trace_id)
        return client.fusion(FusionRequest(
            image_references=tuple(options["ref"]), prompt=options["prompt"],
            duration=options["duration"], quality=options["quality"],
            aspect_ratio=options["aspect_ratio"], negative_prompt=options["negative_prompt"],
            seed=options["seed"], **model,
        ), trace_id=trace_id)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise CommandError(f"{path}: {e.strerror}") from None
