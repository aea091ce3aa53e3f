"""What the portal reads from a stored video with PyAV: a poster frame, the duration,
the picture's size and whether it has sound; and what a video or audio file for
PixVerse's media upload is (probe_media).

The only module that imports PyAV (which ships its own FFmpeg). The file is read
through Django's storage API into a temporary file, so it works the same for
MEDIA_ROOT and for a bucket (MEDIA_S3_BUCKET): nothing assumes a local path.
"""

import io
import shutil
import tempfile
from dataclasses import dataclass
from typing import BinaryIO

import av

# The poster is the frame at about this time: the first frames of a generated video
# are often a fade-in from black. A shorter video gives its first frame.
POSTER_AT = 1.0  # seconds
# Posters are for cards and the detail page: a larger frame only costs bytes.
POSTER_MAX = (1280, 1280)
POSTER_QUALITY = 82


class UnreadableVideo(Exception):
    """PyAV found no usable video in the file."""


@dataclass(frozen=True)
class VideoFacts:
    duration: float | None  # seconds
    width: int
    height: int
    has_audio: bool
    poster_jpeg: bytes


def read_stored(storage, name: str) -> VideoFacts:
    """The facts of a stored file, copied through the storage API into a temporary file."""
    with tempfile.TemporaryFile() as local:
        with storage.open(name, "rb") as stored:
            shutil.copyfileobj(stored, local, length=1024 * 1024)
        local.seek(0)
        return read(local)


def read(file: BinaryIO) -> VideoFacts:
    """A video's facts and poster frame; UnreadableVideo if PyAV cannot read it."""
    try:
        # Only MP4 (what PixVerse sends): each of FFmpeg's other demuxers is more
        # code exposed to a file the portal did not make.
        with av.open(file, mode="r", format="mp4") as container:
            if not container.streams.video:
                raise UnreadableVideo("no video stream")
            stream = container.streams.video[0]
            duration = _duration(container, stream)
            target = POSTER_AT if duration is None or duration > POSTER_AT else 0.0
            poster = None
            for frame in container.decode(stream):
                poster = frame
                if frame.time is None or frame.time >= target:
                    break
            if poster is None:
                raise UnreadableVideo("no frame could be decoded")
            return VideoFacts(duration=duration, width=poster.width, height=poster.height,
                              has_audio=bool(container.streams.audio), poster_jpeg=_jpeg(poster))
    except av.FFmpegError as error:
        raise UnreadableVideo(str(error)) from error


def _duration(container, stream) -> float | None:
    if container.duration:
        return container.duration / av.time_base
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return None


def _jpeg(frame) -> bytes:
    image = frame.to_image()  # Pillow, RGB
    image.thumbnail(POSTER_MAX)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=POSTER_QUALITY, optimize=True)
    return buffer.getvalue()


# --- Uploads for PixVerse's media calls --------------------------------------------------

# What PixVerse's media upload takes (API-NOTES.md, 3.1), told by the first bytes
# and then opened only with that format's demuxer: the name of a file says nothing.
MEDIA_CONTENT_TYPES = {"mp4": "video/mp4", "mov": "video/quicktime", "webm": "video/webm",
                       "mp3": "audio/mpeg", "wav": "audio/wav", "m4a": "audio/mp4",
                       "aac": "audio/aac"}
# QuickTime files may start with any of these atoms; MP4 and M4A with ftyp.
_MOV_ATOMS = (b"ftyp", b"moov", b"mdat", b"wide", b"free")


class UnreadableMedia(Exception):
    """Not a video or audio file PixVerse takes, or one PyAV cannot read."""


@dataclass(frozen=True)
class MediaFacts:
    format: str  # a key of MEDIA_CONTENT_TYPES
    media_type: str  # "video" or "audio"
    duration: float | None  # seconds
    width: int | None
    height: int | None

    @property
    def content_type(self) -> str:
        return MEDIA_CONTENT_TYPES[self.format]


def _demuxer(head: bytes) -> str | None:
    if head[4:8] in _MOV_ATOMS:
        return "mov"  # FFmpeg's one demuxer for MP4, MOV and M4A
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"  # and WebM
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "wav"
    if head.startswith(b"ID3"):
        return "mp3"
    if len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        # An MPEG audio frame header; layer bits 00 are an ADTS (AAC) header.
        return "aac" if head[1] & 0x06 == 0 else "mp3"
    return None


def probe_media(data: bytes) -> MediaFacts:
    """What an upload for PixVerse's media calls is; UnreadableMedia if it is none of them."""
    demuxer = _demuxer(data[:16])
    if demuxer is None:
        raise UnreadableMedia("not an MP4, MOV, WebM, MP3, WAV, M4A or AAC file")
    try:
        with av.open(io.BytesIO(data), mode="r", format=demuxer) as container:
            # A cover picture in an MP3 or M4A is a video stream too, but no video.
            pictures = [stream for stream in container.streams.video
                        if not stream.disposition & av.stream.Disposition.attached_pic]
            video = pictures[0] if pictures else None
            audio = container.streams.audio[0] if container.streams.audio else None
            if video is None and audio is None:
                raise UnreadableMedia("no video or audio stream")
            # One decoded frame: a file that only looks right is refused here.
            if next(container.decode(video if video is not None else audio), None) is None:
                raise UnreadableMedia("no frame could be decoded")
            duration = _duration(container, video or audio)
            media_format = _media_format(demuxer, container, video is not None)
    except av.FFmpegError as error:
        raise UnreadableMedia(str(error)) from error
    if video is not None:
        return MediaFacts(media_format, "video", duration, video.width, video.height)
    return MediaFacts(media_format, "audio", duration, None, None)


def _media_format(demuxer: str, container, has_video: bool) -> str:
    if demuxer == "matroska":
        if not has_video:
            raise UnreadableMedia("a WebM file without a picture")
        return "webm"
    if demuxer == "mov":
        if not has_video:
            return "m4a"
        brand = container.metadata.get("major_brand", "")
        return "mov" if brand.strip() == "qt" else "mp4"
    if has_video:
        raise UnreadableMedia("an audio format with a picture")
    return demuxer
