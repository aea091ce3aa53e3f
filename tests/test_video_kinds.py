"""The kinds of video beyond text and image (issue 13, item 2): each form refuses what PixVerse
would, stores the job with its files in one go, and the same engine uploads the files one
step each and makes the kind's generate call; try again and remix keep the inputs."""

import io
import json
import re
import uuid

import pytest
import responses
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from generations import jobs, lists
from generations.models import Generation, SourceInput
from tests.media_samples import mp4_bytes, wav_bytes
from tests.test_jobs import BASE, ok
from tests.test_views import TEXT, alice, as_alice, started  # noqa: F401 (fixtures)

S = Generation.Status


def png(name="frame.png", colour="teal"):
    buffer = io.BytesIO()
    Image.new("RGB", (320, 180), colour).save(buffer, "PNG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


def settings_of(**extra):
    return {"model": "v5", "quality": "540p", "duration": "5", "motion_mode": "normal"} | extra


@pytest.fixture
def finished(alice):  # noqa: F811
    """A done video of alice's, with its PixVerse id and our copy."""
    job = Generation.objects.create(owner=alice, kind="text", prompt="A lighthouse", model="v5",
                                    quality="540p", duration=8, credits=90, status=S.DONE,
                                    video_id=777000111, video_seconds=8.0, finished_at=timezone.now())
    job.video_file.save("video.mp4", ContentFile(mp4_bytes()), save=True)
    return job


def create(client, kind, data):
    return client.post(reverse("create", args=[kind]), data, headers={"HX-Request": "true"})


def run_steps(job, api, limit=5):
    """Do the job's submission steps as the scheduler would, until PixVerse takes it."""
    for _ in range(limit):
        job.refresh_from_db()
        if job.status == S.RUNNING:
            return job
        jobs.submit(job, job_client_for(job))
    job.refresh_from_db()
    return job


def job_client_for(job):
    from generations.models import ApiCredential

    return ApiCredential.objects.get(user=job.owner).client()


# --- Transition ------------------------------------------------------------------------------


def test_a_transition_is_stored_with_both_frames_and_priced_by_the_model(as_alice, started):  # noqa: F811
    response = create(as_alice, "transition", settings_of(
        prompt="Day turns to night", first_image=png("day.png"), last_image=png("night.png", "navy")))
    assert response.status_code == 200, response.content.decode()[:1500]
    job = Generation.objects.get()
    assert (job.kind, job.credits, job.uploads_pending) == ("transition", 45, 2)
    assert [(i.role, i.position) for i in job.inputs.all()] == [("first", 0), ("last", 1)]
    assert all(i.file.name.startswith(f"inputs/{job.code}/") for i in job.inputs.all())
    assert started == ["kick"]


def test_a_transition_without_its_last_frame_is_refused_next_to_it_and_nothing_is_stored(
        as_alice, started, settings):  # noqa: F811
    response = create(as_alice, "transition", settings_of(prompt="Day turns to night", first_image=png()))
    assert response.status_code == 400
    body = response.content.decode()
    assert 'id="id_last_image"' in body and "Choose an image." in body
    assert "Day turns to night" in body  # what the member typed stays
    assert Generation.objects.count() == 0 and SourceInput.objects.count() == 0
    stored = settings.MEDIA_ROOT / "inputs"
    assert not stored.exists() or not any(stored.rglob("*.*"))


def test_a_frame_that_is_no_image_is_refused(as_alice, started):  # noqa: F811
    fake = SimpleUploadedFile("frame.png", b"not an image at all", content_type="image/png")
    response = create(as_alice, "transition", settings_of(prompt="p", first_image=fake, last_image=png()))
    assert response.status_code == 400
    assert "Use a JPEG, PNG or WebP image." in response.content.decode()


def test_the_engine_uploads_each_frame_then_makes_the_transition_call(as_alice, started):  # noqa: F811
    create(as_alice, "transition", settings_of(prompt="Day to night", first_image=png(),
                                               last_image=png(colour="navy")))
    job = Generation.objects.get()
    with responses.RequestsMock() as api:
        api.post(f"{BASE}/image/upload", json=ok({"img_id": "101"}))
        api.post(f"{BASE}/image/upload", json=ok({"img_id": 102}))
        api.post(f"{BASE}/video/transition/generate", json=ok({"video_id": 555}))
        job = run_steps(job, api)
        sent = json.loads(api.calls[-1].request.body)
        assert api.calls[-1].request.headers["ai-trace-id"] == str(job.trace_id)
    assert (job.status, job.video_id, job.uploads_pending) == (S.RUNNING, 555, 0)
    assert [i.pixverse_id for i in job.inputs.all()] == [101, 102]
    assert sent == {"prompt": "Day to night", "first_frame_img": 101, "last_frame_img": 102, "duration": 5,
                    "quality": "540p", "model": "v5", "motion_mode": "normal"}


def test_a_worker_that_died_during_an_upload_leaves_no_doubt_about_billing(alice):  # noqa: F811
    job = Generation.objects.create(owner=alice, kind="transition", prompt="p", model="v5", quality="540p",
                                    duration=5, credits=45, uploads_pending=1, status=S.SUBMITTING,
                                    claimed_by=uuid.uuid4(), claimed_until=timezone.now())
    assert job.claim_step(uuid.uuid4(), timezone.timedelta(seconds=60), due_only=False)
    assert job.maybe_submitted is False  # an upload bills nothing
    Generation.objects.filter(pk=job.pk).update(uploads_pending=0, claimed_by=uuid.uuid4(),
                                                claimed_until=timezone.now())
    job.refresh_from_db()
    assert job.claim_step(uuid.uuid4(), timezone.timedelta(seconds=60), due_only=False)
    assert job.maybe_submitted is True  # the generate call may have gone out


def test_try_again_shares_the_frames_and_uploads_them_again(as_alice, started):  # noqa: F811
    create(as_alice, "transition", settings_of(prompt="p", first_image=png(), last_image=png()))
    job = Generation.objects.get()
    SourceInput.objects.filter(generation=job).update(pixverse_id=9)
    Generation.objects.filter(pk=job.pk).update(status=S.FAILED, uploads_pending=0)
    job.refresh_from_db()
    again = job.retry()
    assert again.uploads_pending == 2 and again.trace_id != job.trace_id
    assert [(i.role, i.file.name, i.pixverse_id) for i in again.inputs.all()] == [
        (i.role, i.file.name, None) for i in job.inputs.all()]
    # The files stay while a job uses them.
    job.delete()
    assert all(i.file.storage.exists(i.file.name) for i in again.inputs.all())


def test_try_again_after_an_unanswered_send_resends_the_same_request(as_alice, started):  # noqa: F811
    create(as_alice, "transition", settings_of(prompt="p", first_image=png(), last_image=png()))
    job = Generation.objects.get()
    SourceInput.objects.filter(generation=job).update(pixverse_id=9)
    Generation.objects.filter(pk=job.pk).update(status=S.FAILED, uploads_pending=0, maybe_submitted=True)
    job.refresh_from_db()
    again = job.retry()
    assert again.trace_id == job.trace_id and again.uploads_pending == 0
    assert [i.pixverse_id for i in again.inputs.all()] == [9, 9]


def test_remix_of_a_transition_uses_its_frames_when_none_are_chosen(as_alice, started):  # noqa: F811
    create(as_alice, "transition", settings_of(prompt="First", first_image=png(), last_image=png()))
    earlier = Generation.objects.get()
    page = as_alice.get(reverse("dashboard"), {"mode": "transition", "from": earlier.code}).content.decode()
    assert f'value="{earlier.code}"' in page and "First" in page
    # The member sees which frames will be sent.
    assert "the frame of the earlier video is used" in page
    for source in earlier.inputs.all():
        assert reverse("input-file", args=[earlier.code, source.position]) in page
    response = create(as_alice, "transition", settings_of(prompt="Second", source=earlier.code))
    assert response.status_code == 200, response.content.decode()[:1500]
    remix = Generation.objects.get(prompt="Second")
    assert [i.file.name for i in remix.inputs.all()] == [i.file.name for i in earlier.inputs.all()]


# --- Extend, sound effect, lip sync of a video of ours ------------------------------------------


def test_extend_a_video_of_ours_by_its_pixverse_id(as_alice, started, finished):  # noqa: F811
    page = as_alice.get(reverse("dashboard"), {"mode": "extend", "video": finished.code}).content.decode()
    assert f'<option value="{finished.code}" selected>' in page
    assert '<option value="c1"' not in page  # c1 does not extend
    response = create(as_alice, "extend", settings_of(prompt="The storm clears", source_video=finished.code))
    assert response.status_code == 200, response.content.decode()[:1500]
    job = Generation.objects.get(kind="extend")
    assert (job.source_generation, job.source_video_id, job.uploads_pending) == (finished, 777000111, 0)
    with responses.RequestsMock() as api:
        api.post(f"{BASE}/video/extend/generate", json=ok({"video_id": 556}))
        run_steps(job, api)
        assert json.loads(api.calls[0].request.body)["source_video_id"] == 777000111


def test_extend_needs_one_source_not_none_and_not_two(as_alice, started, finished):  # noqa: F811
    response = create(as_alice, "extend", settings_of(prompt="p"))
    assert response.status_code == 400 and "Choose a video to start from" in response.content.decode()
    video = SimpleUploadedFile("clip.mp4", mp4_bytes(), content_type="video/mp4")
    response = create(as_alice, "extend", settings_of(prompt="p", source_video=finished.code, video=video))
    assert response.status_code == 400 and "not both" in response.content.decode()
    assert Generation.objects.filter(kind="extend").count() == 0


def test_an_uploaded_video_is_checked_by_its_content_and_uploaded_as_media(as_alice, started):  # noqa: F811
    fake = SimpleUploadedFile("clip.mp4", b"\x00\x00\x00\x18ftypmp42 not really", content_type="video/mp4")
    assert create(as_alice, "extend", settings_of(prompt="p", video=fake)).status_code == 400
    big = SimpleUploadedFile("wide.mp4", mp4_bytes(width=2000, height=200), content_type="video/mp4")
    response = create(as_alice, "extend", settings_of(prompt="p", video=big))
    assert response.status_code == 400 and "1920 pixels" in response.content.decode()
    clip = SimpleUploadedFile("clip.mp4", mp4_bytes(), content_type="video/mp4")
    assert create(as_alice, "extend", settings_of(prompt="p", video=clip)).status_code == 200
    job = Generation.objects.get(kind="extend")
    with responses.RequestsMock() as api:
        api.post(f"{BASE}/media/upload", json=ok({"media_id": "880", "media_type": "video"}))
        api.post(f"{BASE}/video/extend/generate", json=ok({"video_id": 557}))
        run_steps(job, api)
        assert b'name="file"' in api.calls[0].request.body
        assert json.loads(api.calls[1].request.body)["video_media_id"] == 880


def test_a_sound_effect_is_priced_by_the_videos_length(as_alice, started, finished):  # noqa: F811
    estimate = as_alice.get(reverse("estimate"), {"kind": "sound_effect", "source_video": finished.code})
    assert "<strong>20</strong>" in estimate.content.decode()  # 8 s: two started 5 s
    unknown = as_alice.get(reverse("estimate"), {"kind": "sound_effect"}).content.decode()
    assert "10 credits for every 5 seconds of video." in unknown
    response = create(as_alice, "sound_effect", {"source_video": finished.code, "prompt": "Waves and gulls",
                                                 "keep_original_sound": "on"})
    assert response.status_code == 200, response.content.decode()[:1500]
    job = Generation.objects.get(kind="sound_effect")
    assert (job.credits, job.model, job.quality, job.duration, job.keep_original_sound) == (
        20, "v5", "540p", 8, True)
    with responses.RequestsMock() as api:
        api.post(f"{BASE}/video/sound_effect/generate", json=ok({"video_id": 558}))
        run_steps(job, api)
        assert json.loads(api.calls[0].request.body) == {
            "sound_effect_content": "Waves and gulls", "source_video_id": 777000111,
            "original_sound_switch": True}


@pytest.fixture
def voice_list():
    cache.set(lists._voices_key(), [("Emily", "Emily"), ("James", "James")], 60)
    yield
    cache.clear()


def test_lip_sync_with_a_voice_says_the_words(as_alice, started, finished, voice_list):  # noqa: F811
    page = as_alice.get(reverse("dashboard"), {"mode": "lip_sync", "video": finished.code}).content.decode()
    assert '<option value="Emily">Emily</option>' in page
    refused = create(as_alice, "lip_sync", {"source_video": finished.code, "speaker": "Emily"})
    assert refused.status_code == 400 and "Type the words to say" in refused.content.decode()
    response = create(as_alice, "lip_sync", {"source_video": finished.code, "speaker": "Emily",
                                             "prompt": "Welcome to the lighthouse"})  # 25 bytes: 2 × 4
    assert response.status_code == 200, response.content.decode()[:1500]
    job = Generation.objects.get(kind="lip_sync")
    assert (job.credits, job.tts_speaker) == (8, "Emily")
    with responses.RequestsMock() as api:
        api.post(f"{BASE}/video/lip_sync/generate", json=ok({"video_id": 559}))
        run_steps(job, api)
        assert json.loads(api.calls[0].request.body) == {
            "source_video_id": 777000111, "lip_sync_tts_speaker_id": "Emily",
            "lip_sync_tts_content": "Welcome to the lighthouse"}


def test_lip_sync_to_an_uploaded_speech(as_alice, started, finished, voice_list):  # noqa: F811
    speech = SimpleUploadedFile("speech.wav", wav_bytes(2.5), content_type="audio/wav")
    response = create(as_alice, "lip_sync", {"source_video": finished.code, "audio": speech})
    assert response.status_code == 200, response.content.decode()[:1500]
    job = Generation.objects.get(kind="lip_sync")
    assert (job.credits, job.prompt, job.tts_speaker) == (12, "♪ speech.wav", "")
    with responses.RequestsMock() as api:
        api.post(f"{BASE}/media/upload", json=ok({"media_id": 990, "media_type": "audio"}))
        api.post(f"{BASE}/video/lip_sync/generate", json=ok({"video_id": 560}))
        run_steps(job, api)
        assert json.loads(api.calls[1].request.body) == {"source_video_id": 777000111, "audio_media_id": 990}


@pytest.fixture
def read_at_once(monkeypatch):
    """The lists' worker task run in place of django-q2's queue; what was asked for."""
    asked = []

    def read(name, credential_id):
        asked.append(name)
        lists.read(name, credential_id)

    monkeypatch.setattr("generations.queue.read_list", read)
    cache.clear()
    yield asked
    cache.clear()


def test_the_voices_are_read_by_a_worker_once_and_kept(alice, read_at_once):  # noqa: F811
    from generations.models import ApiCredential

    credential = ApiCredential.objects.get(user=alice)
    with responses.RequestsMock() as api:
        api.get(f"{BASE}/video/lip_sync/tts_list", json=ok({"list": [{"speaker_id": "7", "name": "Ava"}]}))
        # The page does not wait: the automatic voice now, the list once the worker has read it.
        assert lists.voices(credential) == [("Auto", "Automatic")]
        assert lists.voices(credential) == [("7", "Ava")]
        assert lists.voices(credential) == [("7", "Ava")]
        assert len(api.calls) == 1 and read_at_once == ["voices"]


def test_a_list_that_cannot_be_read_is_asked_for_again_a_minute_later(alice, read_at_once):  # noqa: F811
    from generations.models import ApiCredential

    credential = ApiCredential.objects.get(user=alice)
    with responses.RequestsMock() as api:
        api.get(f"{BASE}/video/lip_sync/tts_list", status=503)
        assert lists.voices(credential) == [("Auto", "Automatic")]
        assert lists.voices(credential) == [("Auto", "Automatic")]
    assert read_at_once == ["voices"]  # not on every page view
    cache.delete(lists._voices_key() + ":asked")  # a minute later
    with responses.RequestsMock() as api:
        api.get(f"{BASE}/video/lip_sync/tts_list", json=ok([{"id": "9", "name": "Zoe"}]))
        lists.voices(credential)
    assert lists.voices(credential) == [("9", "Zoe")]


# --- Fusion -----------------------------------------------------------------------------------


def test_fusion_names_each_image_in_the_prompt(as_alice, started):  # noqa: F811
    base = {"model": "v4.5", "quality": "540p", "duration": "5", "aspect_ratio": "16:9",
            "ref1_image": png("hero.png"), "ref1_name": "hero", "ref1_type": "subject",
            "ref2_image": png("city.png", "grey"), "ref2_name": "city", "ref2_type": "background"}
    refused = create(as_alice, "fusion", {**base, "prompt": "@hero walks at night"})
    assert refused.status_code == 400 and "@city" in refused.content.decode()
    base.update(ref1_image=png("hero.png"), ref2_image=png("city.png", "grey"))
    response = create(as_alice, "fusion", {**base, "prompt": "@hero walks through @city at night"})
    errors = re.findall(r'class="errorlist[^>]*>(.*?)</ul>', response.content.decode())
    assert response.status_code == 200, errors
    job = Generation.objects.get(kind="fusion")
    assert [(i.role, i.name) for i in job.inputs.all()] == [("subject", "hero"), ("background", "city")]
    with responses.RequestsMock() as api:
        api.post(f"{BASE}/image/upload", json=ok({"img_id": 11}))
        api.post(f"{BASE}/image/upload", json=ok({"img_id": 12}))
        api.post(f"{BASE}/video/fusion/generate", json=ok({"video_id": 561}))
        run_steps(job, api)
        assert json.loads(api.calls[-1].request.body)["image_references"] == [
            {"type": "subject", "img_id": 11, "ref_name": "hero"},
            {"type": "background", "img_id": 12, "ref_name": "city"}]


def test_remix_of_a_fusion_shows_and_uses_its_named_images(as_alice, started):  # noqa: F811
    create(as_alice, "fusion", {"model": "v4.5", "quality": "540p", "duration": "5", "aspect_ratio": "16:9",
                                "ref1_image": png("hero.png"), "ref1_name": "hero", "ref1_type": "subject",
                                "prompt": "@hero at dawn"})
    earlier = Generation.objects.get()
    page = as_alice.get(reverse("dashboard"), {"mode": "fusion", "from": earlier.code}).content.decode()
    assert "the images of the earlier video are used" in page and "@hero · Subject" in page
    assert reverse("input-file", args=[earlier.code, 0]) in page
    response = create(as_alice, "fusion", {"model": "v4.5", "quality": "540p", "duration": "5",
                                           "aspect_ratio": "16:9", "prompt": "@hero at dusk",
                                           "source": earlier.code})
    assert response.status_code == 200, response.content.decode()[:1500]
    remix = Generation.objects.get(prompt="@hero at dusk")
    assert [(i.name, i.file.name) for i in remix.inputs.all()] == [("hero", earlier.inputs.get().file.name)]


def test_an_empty_fusion_form_asks_for_an_image_and_the_prompt_at_once(as_alice, started):  # noqa: F811
    refused = create(as_alice, "fusion", {"model": "v4.5", "quality": "540p", "duration": "5",
                                          "aspect_ratio": "16:9"})
    page = refused.content.decode()
    assert refused.status_code == 400
    assert "Choose at least one image." in page and "This field is required." in page


def test_a_fusion_image_without_a_name_is_asked_for_its_name_only(as_alice, started):  # noqa: F811
    refused = create(as_alice, "fusion", {"model": "v4.5", "quality": "540p", "duration": "5",
                                          "aspect_ratio": "16:9", "ref1_image": png("red.png"),
                                          "ref1_name": "", "prompt": "@hero at dawn"})
    page = refused.content.decode()
    assert refused.status_code == 400
    assert "Give it a name of letters" in page
    # The image was chosen: not told otherwise (its field, unflagged, keeps the file in the page).
    assert "Choose at least one image." not in page
    assert not Generation.objects.exists()


def test_fusion_offers_only_its_models(as_alice):  # noqa: F811
    page = as_alice.get(reverse("dashboard"), {"mode": "fusion"}).content.decode()
    assert '<option value="v4.5" selected>' in page and '<option value="v5"' not in page


def test_the_prompt_box_stops_at_the_chosen_models_limit(as_alice):  # noqa: F811
    from generations import catalog

    page = as_alice.get(reverse("dashboard")).content.decode()
    box = re.search(r'<textarea[^>]*name="prompt"[^>]*>', page).group(0)
    assert f'maxlength="{catalog.model_named(catalog.DEFAULT_MODEL).prompt_max}"' in box
    assert "&quot;v6&quot;: 5000" in box  # what portal.js switches to with the model


def test_a_prompt_over_the_models_limit_is_refused_with_that_models_figure(as_alice):  # noqa: F811
    from tests.test_views import TEXT

    refused = as_alice.post(reverse("create-text"), {**TEXT, "model": "v5", "prompt": "a" * 2100},
                            headers={"HX-Request": "true"})
    page = refused.content.decode()
    assert refused.status_code == 400 and "2048" in page and "5000" not in page.split("data-prompt-max")[0]
    assert not Generation.objects.exists()
    taken = as_alice.post(reverse("create-text"), {**TEXT, "model": "v6", "quality": "540p", "duration": "5",
                                                   "prompt": "a" * 2100}, headers={"HX-Request": "true"})
    assert taken.status_code == 200, re.findall(r'class="errorlist[^>]*>(.*?)</ul>', taken.content.decode())


# --- Every kind on the dashboard, the card and the detail page --------------------------------


@pytest.mark.parametrize("mode", list(Generation.Kind.values))
def test_each_kind_has_its_tab_and_form(as_alice, mode, voice_list):  # noqa: F811
    page = as_alice.get(reverse("dashboard"), {"mode": mode}).content.decode()
    assert f'href="?mode={mode}" aria-current="page"' in page
    assert f'id="{mode}-form"' in page


def test_a_guest_cannot_start_any_kind(client, db):
    from django.contrib.auth.models import User

    from generations import roles

    guest = User.objects.create_user("gus", password="pw-gus-long-1")
    roles.set_role(guest, roles.Role.GUEST)
    client.force_login(guest)
    assert create(client, "transition", settings_of(prompt="p")).status_code == 403
    assert create(client, "nonsense", {}).status_code in (403, 404)


def test_the_detail_page_shows_the_inputs_and_what_it_was_made_from(as_alice, started, finished):  # noqa: F811
    create(as_alice, "extend", settings_of(prompt="Onwards", source_video=finished.code))
    job = Generation.objects.get(kind="extend")
    page = as_alice.get(reverse("detail", args=[job.code])).content.decode()
    assert "Made from" in page and reverse("detail", args=[finished.code]) in page
    done = as_alice.get(reverse("detail", args=[finished.code])).content.decode()
    assert f"?mode=lip_sync&amp;video={finished.code}" in done


@pytest.mark.parametrize("name", ["page.html", "p.js", "frame.svg", "frame"])
def test_an_upload_named_as_a_page_or_a_script_is_never_served_as_one(as_alice, started, name):  # noqa: F811
    """A valid image with HTML or a script after it passes the image check: its name must not
    choose how it is served (it would run on the portal's origin, past the CSP's 'self')."""
    polyglot = SimpleUploadedFile(name, png().read() + b"<script>alert(document.cookie)</script>",
                                  content_type="text/html")
    assert create(as_alice, "transition", settings_of(prompt="p", first_image=polyglot,
                                                      last_image=png())).status_code == 200
    job = Generation.objects.get()
    first, last = job.inputs.order_by("position")
    assert "." not in first.file.name.rsplit("/", 1)[-1]
    served = as_alice.get(reverse("input-file", args=[job.code, 0]))
    assert served["Content-Type"] == "application/octet-stream"
    assert served["Content-Disposition"].startswith("attachment")
    assert last.file.name.endswith(".png")
    image = as_alice.get(reverse("input-file", args=[job.code, 1]))
    assert image["Content-Type"] == "image/png" and "attachment" not in image.get("Content-Disposition", "")


def test_a_stored_file_of_another_type_is_sent_as_bytes_to_download(alice, rf):  # noqa: F811
    """Files stored before names were checked (or by hand) are not served as what they say."""
    from generations import media

    job = Generation.objects.create(owner=alice, kind="transition", prompt="p", model="v5", quality="540p",
                                    duration=5, credits=45)
    source = SourceInput(generation=job, position=0, role=SourceInput.Role.FIRST_FRAME)
    source.file.save("first-0.html", ContentFile(b"<script>alert(1)</script>"), save=True)
    response = media.serve(rf.get("/"), source.file)
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment")


# --- Effect templates and sound effects on text and image videos ------------------------------


@pytest.fixture
def templates(alice):  # noqa: F811
    from generations.models import ApiCredential

    credential = ApiCredential.objects.get(user=alice)
    cache.set(lists._templates_key(credential), [
        {"id": 301, "name": "Balloon flight", "qualities": ["360p", "540p", "720p"]},
        {"id": 302, "name": "Hug", "qualities": None}], 60)
    yield
    cache.clear()


def test_the_text_form_offers_the_accounts_templates_on_models_that_have_them(as_alice, templates):  # noqa: F811
    page = as_alice.get(reverse("dashboard")).content.decode()
    assert '<option value="301">Balloon flight</option>' in page
    newer = as_alice.get(reverse("estimate"), {**TEXT, "model": "v6", "options": "1"}).content.decode()
    assert 'id="id_template_id"' not in newer


def test_a_template_at_a_quality_it_lacks_is_refused_next_to_it(as_alice, started, templates):  # noqa: F811
    response = as_alice.post(reverse("create-text"), {**TEXT, "quality": "1080p", "template_id": "301"},
                             headers={"HX-Request": "true"})
    assert response.status_code == 400
    assert "Balloon flight is made at 360p, 540p, 720p only." in response.content.decode()
    with_camera = {**TEXT, "template_id": "301", "camera_movement": "zoom_in"}
    refused = as_alice.post(reverse("create-text"), with_camera, headers={"HX-Request": "true"})
    assert refused.status_code == 400 and "cannot be used with an effect template" in refused.content.decode()
    assert Generation.objects.count() == 0


def test_a_templated_video_with_a_sound_effect_is_stored_priced_and_sent(as_alice, started, templates):  # noqa: F811
    response = as_alice.post(reverse("create-text"), {**TEXT, "template_id": "301",
                                                      "sound_effect_content": "Wind and birdsong"})
    assert response.status_code == 302
    job = Generation.objects.get()
    assert (job.template_id, job.template_name, job.credits) == (301, "Balloon flight", 55)
    assert job.video_request().as_json() | {"prompt": "-"} == {
        "prompt": "-", "duration": 5, "quality": "540p", "model": "v5", "aspect_ratio": "16:9",
        "motion_mode": "normal", "template_id": 301, "sound_effect_switch": True,
        "sound_effect_content": "Wind and birdsong"}
    card = as_alice.get(reverse("dashboard")).content.decode()
    assert "Balloon flight · with sound" in card


def test_the_templates_are_read_per_account_and_kept(alice, read_at_once):  # noqa: F811
    from generations.models import ApiCredential

    credential = ApiCredential.objects.get(user=alice)
    with responses.RequestsMock() as api:
        api.get(f"{BASE}/video/effects/templates/list", json=ok({"list": [
            {"template_id": "301", "name": "Balloon", "qualities": ["540p"], "activated": True},
            {"template_id": 304, "name": "Not yours", "activated": False}]}))
        assert lists.templates(credential) == []
        assert lists.templates(credential) == [{"id": 301, "name": "Balloon", "qualities": ["540p"]}]
        assert len(api.calls) == 1
    assert read_at_once == ["templates"]
