"""What the portal reads from a stored video with PyAV: a poster frame, the duration,
the picture's size and whether it has sound.

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
