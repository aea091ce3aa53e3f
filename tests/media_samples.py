"""Small video and audio files made on the spot, for the media upload tests."""

import io
import wave

import av
from PIL import Image


def mp4_bytes(width: int = 320, height: int = 240, frames: int = 5, rate: int = 10) -> bytes:
    """A short silent MP4 (MPEG-4 part 2: fast to encode at any size)."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        picture = out.add_stream("mpeg4", rate=rate)
        picture.width, picture.height, picture.pix_fmt = width, height, "yuv420p"
        for _ in range(frames):
            frame = av.VideoFrame.from_image(Image.new("RGB", (width, height), (30, 120, 200)))
            for packet in picture.encode(frame):
                out.mux(packet)
        for packet in picture.encode():
            out.mux(packet)
    return buffer.getvalue()


def wav_bytes(seconds: float = 1.5, rate: int = 8000) -> bytes:
    """Silence as a mono 16-bit WAV."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(bytes(2 * int(seconds * rate)))
    return buffer.getvalue()


def has_audio_track(data: bytes) -> bool:
    with av.open(io.BytesIO(data), format="mp4") as container:
        if not container.streams.audio:
            return False
        # A track that decodes, not only a header.
        return next(container.decode(audio=0), None) is not None
