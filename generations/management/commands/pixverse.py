"""Try each PixVerse call from the command line, as the spec's section 7 does with Postman.

    python manage.py pixverse balance
    python manage.py pixverse text --prompt P --duration 5 --quality 360p [options]
    python manage.py pixverse upload FILE
    python manage.py pixverse image --img-id N --prompt P --duration 5 --quality 540p [options]
    python manage.py pixverse status VIDEO_ID

Success prints one JSON object on stdout and exits 0. An API error prints its
kind, ErrCode, ErrMsg and trace id on stderr and exits 1. The key comes from
--user (that member's stored key) or PIXVERSE_API_KEY, and is never printed.
Every request keeps to the shared 1 request/s per key limit, so several of
these started at once with one key queue behind each other.
"""

import argparse
import dataclasses
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from generations.crypto import CannotDecrypt
from generations.models import ApiCredential
from generations.pixverse import PixVerseClient, PixVerseError, VideoRequest

EXIT_API_ERROR = 1


def _add_generation_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--duration", type=int, required=True)
    parser.add_argument("--quality", required=True)
    parser.add_argument("--model")
    parser.add_argument("--motion-mode")
    parser.add_argument("--negative-prompt")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--style")
    parser.add_argument(
        "--trace-id",
        help="Resend an earlier submission with its trace id instead of starting a new one.",
    )


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {k: _jsonable(v) for k, v in dataclasses.asdict(value).items()}
    return value


class Command(BaseCommand):
    help = "Call the PixVerse API: balance, text, upload, image, status."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", help="Use this member's stored PixVerse key.")
        parser.add_argument("--base-url", help="Default: the PIXVERSE_BASE_URL setting.")
        calls = parser.add_subparsers(dest="call", required=True, parser_class=argparse.ArgumentParser)
        calls.add_parser("balance", help="Credits left on the key's account.")
        text = calls.add_parser("text", help="Start a text-to-video generation.")
        _add_generation_options(text)
        text.add_argument("--aspect-ratio")
        upload = calls.add_parser("upload", help="Upload an image for image-to-video.")
        upload.add_argument("file", type=Path)
        image = calls.add_parser("image", help="Start an image-to-video generation.")
        image.add_argument("--img-id", type=int, required=True)
        _add_generation_options(image)
        image.add_argument("--aspect-ratio", help="Ignored: the image sets the aspect ratio.")
        status = calls.add_parser("status", help="Read one video's state.")
        status.add_argument("video_id", type=int)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["user"]:
            client = self._client_for_user(options["user"], options["base_url"])
        else:
            client = PixVerseClient(self._api_key(), base_url=options["base_url"])
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
            path: Path = options["file"]
            try:
                data = path.read_bytes()
            except OSError as e:
                raise CommandError(f"{path}: {e.strerror}") from None
            return client.upload_image(data)
        if call == "status":
            return client.video_status(options["video_id"])
        request = VideoRequest(
            prompt=options["prompt"], duration=options["duration"], quality=options["quality"],
            model=options["model"], aspect_ratio=options["aspect_ratio"],
            motion_mode=options["motion_mode"], negative_prompt=options["negative_prompt"],
            seed=options["seed"], style=options["style"],
        )
        trace_id = options["trace_id"] or str(uuid.uuid4())
        if call == "text":
            return client.text_to_video(request, trace_id=trace_id)
        return client.image_to_video(options["img_id"], request, trace_id=trace_id)
