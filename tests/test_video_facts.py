"""Poster frames and video facts, read with PyAV from the portal's own copy (store_video).

The sandbox's sample MP4s are real videos (640×360, 5 s, H.264, no sound); one with
sound is made here with PyAV itself. Steps are called directly, PixVerse's CDN is
`responses`.
"""

import io
import logging
import uuid
from pathlib import Path

import av
import pytest
import responses
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.utils import timezone
from PIL import Image, ImageStat

from generations import jobs, video_facts
from generations.models import Generation
from tests.test_s3_media import BUCKET, bucket, keys  # noqa: F401

SAMPLES = sorted((Path(video_facts.__file__).parent / "sandbox" / "samples").glob("*.mp4"))
CDN = "https://cdn.pixverse.test/77.mp4"
S = Generation.Status


def with_sound() -> bytes:
    """Half a second of red picture (320×240) and silence, as an MP4."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        picture = out.add_stream("mpeg4", rate=10)
        picture.width, picture.height, picture.pix_fmt = 320, 240, "yuv420p"
        sound = out.add_stream("aac", rate=44100)
        for _ in range(5):
            frame = av.VideoFrame.from_image(Image.new("RGB", (320, 240), (200, 40, 40)))
            for packet in picture.encode(frame):
                out.mux(packet)
        for packet in picture.encode():
            out.mux(packet)
        for i in range(10):
            silence = av.AudioFrame(format="fltp", layout="mono", samples=1024)
            silence.sample_rate, silence.pts = 44100, i * 1024
            for plane in silence.planes:
                plane.update(bytes(plane.buffer_size))
            for packet in sound.encode(silence):
                out.mux(packet)
        for packet in sound.encode():
            out.mux(packet)
    return buffer.getvalue()


@pytest.fixture
def alice(db):
    return User.objects.create_user("alice")


@pytest.fixture
def done(alice):
    return Generation.objects.create(owner=alice, kind="text", prompt="A wolf", model="v5", quality="360p",
                                     duration=5, credits=45, status=S.DONE, video_id=77, video_url=CDN,
                                     submitted_at=timezone.now(), finished_at=timezone.now())


@pytest.fixture
def cdn():
    with responses.RequestsMock() as rsps:
        yield rsps


def reload(generation):
    generation.refresh_from_db()
    return generation


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_it_reads_the_facts_and_a_poster_from_each_sandbox_sample(sample):
    with sample.open("rb") as f:
        facts = video_facts.read(f)
    assert (facts.width, facts.height) == (640, 360)
    assert facts.duration == pytest.approx(5.0, abs=0.1)
    assert facts.has_audio is False
    poster = Image.open(io.BytesIO(facts.poster_jpeg))
    assert poster.format == "JPEG" and poster.size == (640, 360)
    # The frame at about 1 s, not the black of a fade-in.
    assert ImageStat.Stat(poster.convert("L")).mean[0] > 40


def test_a_video_shorter_than_a_second_gives_its_first_frame_and_its_sound_is_noticed():
    facts = video_facts.read(io.BytesIO(with_sound()))
    assert (facts.width, facts.height, facts.has_audio) == (320, 240, True)
    assert facts.duration == pytest.approx(0.5, abs=0.2)
    red, green, _blue = Image.open(io.BytesIO(facts.poster_jpeg)).convert("RGB").getpixel((160, 120))
    assert red > 150 and green < 100


@pytest.mark.parametrize("junk", [b"not a video at all" * 100, SAMPLES[0].read_bytes()[:5000]],
                         ids=["junk", "truncated"])
def test_a_file_pyav_cannot_read_is_unreadable(junk):
    with pytest.raises(video_facts.UnreadableVideo):
        video_facts.read(io.BytesIO(junk))


def test_the_copy_is_stored_with_its_poster_and_facts_in_one_change(done, cdn):
    cdn.get(CDN, body=SAMPLES[0].read_bytes())
    assert jobs.store_video(done.pk)
    done = reload(done)
    assert done.video_file.name == f"videos/{done.code}/77.mp4"
    assert done.poster.name == f"posters/{done.code}/77.jpg"
    assert Image.open(done.poster.open("rb")).size == (640, 360)
    assert (done.video_width, done.video_height, done.has_audio) == (640, 360, False)
    assert done.video_seconds == pytest.approx(5.0, abs=0.1)
    assert done.facts_read_at is not None and done.next_attempt_at is None
    assert not jobs.store_video(done.pk)  # safe to run twice: nothing more is stored
    assert len(list((Path(done.poster.path).parent).iterdir())) == 1


def test_a_corrupt_video_keeps_its_copy_and_is_logged_without_its_link(done, cdn, caplog):
    cdn.get(CDN, body=b"\x00\x00\x00\x18ftypmp42" + b"\x01" * 5000)
    with caplog.at_level(logging.WARNING, logger="generations.jobs"):
        assert jobs.store_video(done.pk)
    done = reload(done)
    assert done.video_file.read()[4:8] == b"ftyp"  # the copy stands
    assert not done.poster and done.video_width is None and done.has_audio is None
    assert done.facts_read_at is not None  # not read again by every repair pass
    assert "video facts not read: UnreadableVideo" in caplog.text
    assert CDN not in caplog.text
    jobs.housekeeping(repair=True)
    assert reload(done).next_attempt_at is None


def test_a_copy_whose_job_changed_meanwhile_leaves_no_files_behind(done, cdn, monkeypatch):
    cdn.get(CDN, body=SAMPLES[1].read_bytes())
    monkeypatch.setattr(Generation, "attach_video_file", lambda *args, **kwargs: False)
    assert not jobs.store_video(done.pk)
    assert not any((Path(done.video_file.storage.location)).rglob("*.*"))


@pytest.fixture
def stored_without_facts(done):
    """A copy stored before the portal read facts (the migration left them empty)."""
    done.video_file.save("77.mp4", ContentFile(SAMPLES[2].read_bytes()), save=False)
    Generation.objects.filter(pk=done.pk).update(video_file=done.video_file.name, next_attempt_at=None)
    return reload(done)


def test_the_repair_pass_has_facts_read_for_copies_stored_without_them(stored_without_facts):
    jobs.housekeeping(repair=True)
    generation = reload(stored_without_facts)
    assert generation.next_attempt_at is not None  # a copy step, which the scheduler runs
    assert not generation.copy_pending  # the card does not poll for it
    assert jobs.store_video(generation.pk)
    generation = reload(generation)
    assert generation.poster and (generation.video_width, generation.video_height) == (640, 360)
    assert generation.next_attempt_at is None and generation.claimed_by is None
    assert not jobs.store_video(generation.pk)  # safe to run twice
    jobs.housekeeping(repair=True)
    assert reload(generation).next_attempt_at is None


@pytest.mark.django_db(transaction=True)
def test_the_scheduler_runs_the_repaired_facts_step(stored_without_facts):
    jobs.housekeeping(repair=True)
    scheduler = jobs.Scheduler(token=uuid.uuid4())
    scheduler.run(5, until_idle=True)
    assert reload(stored_without_facts).video_width == 640


def test_facts_are_read_through_the_storage_api_from_a_bucket(bucket, done):  # noqa: F811
    with responses.RequestsMock() as cdn:  # inside moto's mock, which has its own
        cdn.get(CDN, body=SAMPLES[0].read_bytes())
        assert jobs.store_video(done.pk)
    done = reload(done)
    assert done.video_width == 640 and done.video_file.name in keys(bucket)
    poster = bucket.get_object(Bucket=BUCKET, Key=done.poster.name)["Body"].read()
    assert Image.open(io.BytesIO(poster)).size == (640, 360)
