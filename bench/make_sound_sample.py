"""Make the sandbox's sample with sound: sample-3.mp4's picture and a few seconds of tones.

    .venv/bin/python bench/make_sound_sample.py

The sandbox serves it for sound-effect and lip-sync results, which must have an
audio track (the other samples are silent). The picture is copied, not
re-encoded, so the file stays small; the sound is AAC, mono, 44.1 kHz: a
rising three-note chime that repeats, so a listener can tell it plays.
"""

import math
from array import array
from pathlib import Path

import av

SAMPLES = Path(__file__).resolve().parent.parent / "generations" / "sandbox" / "samples"
SOURCE = SAMPLES / "sample-3.mp4"
TARGET = SAMPLES / "sound" / "sample-sound.mp4"
RATE = 44100
FRAME = 1024  # samples per AAC frame
NOTES = (523.25, 659.25, 783.99)  # C5, E5, G5


def tone(seconds: float) -> array:
    """32-bit float samples: each note a third of a second, fading out."""
    samples = array("f")
    for i in range(int(seconds * RATE)):
        t = i / RATE
        frequency = NOTES[int(t * 3) % len(NOTES)]
        samples.append(0.3 * (1 - t * 3 % 1) * math.sin(2 * math.pi * frequency * t))
    return samples


def main() -> None:
    with av.open(str(SOURCE)) as source, av.open(str(TARGET), "w", format="mp4") as out:
        picture_in = source.streams.video[0]
        picture = out.add_stream_from_template(picture_in)
        sound = out.add_stream("aac", rate=RATE, layout="mono")
        sound.bit_rate = 48_000
        seconds = float(source.duration / av.time_base)
        for packet in source.demux(picture_in):
            if packet.dts is None:
                continue
            packet.stream = picture
            out.mux(packet)
        samples = tone(seconds)
        for start in range(0, len(samples), FRAME):
            chunk = samples[start:start + FRAME]
            chunk.extend([0.0] * (FRAME - len(chunk)))
            frame = av.AudioFrame(format="fltp", layout="mono", samples=FRAME)
            frame.sample_rate, frame.pts = RATE, start
            frame.planes[0].update(chunk.tobytes())
            for packet in sound.encode(frame):
                out.mux(packet)
        for packet in sound.encode():
            out.mux(packet)
    print(f"{TARGET}: {TARGET.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
