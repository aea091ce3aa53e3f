"""`manage.py pixverse`: each call against the live sandbox, its output and exit codes."""

import io
import json

import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from generations.sandbox.models import SandboxAccount, SandboxVideo
from tests.media_samples import mp4_bytes, wav_bytes

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def key(monkeypatch, sandbox_url, settings):
    _, raw_key = SandboxAccount.issue("cli", credits=500, generation_seconds=0)
    monkeypatch.setenv("PIXVERSE_API_KEY", raw_key)
    settings.PIXVERSE_BASE_URL = sandbox_url
    return raw_key


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        call_command("pixverse", *args, stdout=out, stderr=err)
    except SystemExit as e:
        code = e.code
    return code, out.getvalue(), err.getvalue()


def test_balance_prints_one_json_object(key):
    code, out, _ = run("balance")
    assert code == 0
    assert json.loads(out) | {"account_id": 0} == {
        "account_id": 0, "credit_monthly": 500, "credit_package": 0, "total": 500}


def test_text_sends_every_option(key):
    code, out, _ = run("text", "--prompt", "A wolf", "--duration", "5", "--quality", "360p",
                       "--model", "v4.5", "--aspect-ratio", "9:16", "--motion-mode", "normal",
                       "--negative-prompt", "blur", "--seed", "7", "--style", "clay")
    assert code == 0
    video = SandboxVideo.objects.get(video_id=json.loads(out)["video_id"])
    assert video.params == {"prompt": "A wolf", "duration": 5, "quality": "360p", "model": "v4.5",
                            "aspect_ratio": "9:16", "motion_mode": "normal",
                            "negative_prompt": "blur", "seed": 7, "style": "clay"}


def test_a_resent_trace_id_is_not_billed_again(key):
    args = ["text", "--prompt", "p", "--duration", "5", "--quality", "360p",
            "--trace-id", "2d1c1a3e-6e9b-4c38-9a3f-2f4f1c0d5e11"]
    first, second = run(*args), run(*args)
    assert json.loads(first[1])["video_id"] == json.loads(second[1])["video_id"]
    assert json.loads(run("balance")[1])["total"] == 500 - 45


def test_upload_image_and_status(key, tmp_path):
    path = tmp_path / "photo.jpg"
    Image.new("RGB", (200, 100), "navy").save(path, "JPEG")
    code, out, _ = run("upload", str(path))
    assert code == 0
    img_id = json.loads(out)["img_id"]
    code, out, _ = run("image", "--img-id", str(img_id), "--prompt", "A magical forest",
                       "--duration", "5", "--quality", "540p")
    assert code == 0
    video_id = json.loads(out)["video_id"]
    code, out, _ = run("status", str(video_id))
    assert code == 0
    result = json.loads(out)
    assert result["state"] == "done"
    assert result["url"].endswith(f"/sandbox/files/videos/{video_id}.mp4")


def test_an_api_error_goes_to_stderr_with_a_non_zero_exit(key):
    code, out, err = run("--no-check", "text", "--prompt", "p", "--duration", "8", "--quality", "1080p")
    assert code == 1
    assert out == ""
    assert err.startswith("invalid_request: ErrCode=400017 ErrMsg=")
    assert "trace_id=" in err


def test_what_pixverse_would_refuse_is_refused_before_sending(key):
    code, out, err = run("text", "--prompt", "p", "--duration", "12", "--quality", "540p", "--model", "v5")
    assert code == 1 and out == ""
    assert err.startswith("invalid_parameters: ErrCode=None ErrMsg=")
    assert "The v5 model makes videos of 5, 8 seconds." in err
    assert not SandboxVideo.objects.exists()


def test_an_invalid_key_is_reported_and_never_printed(monkeypatch, sandbox_url, settings):
    monkeypatch.setenv("PIXVERSE_API_KEY", "sk-sandbox-wrong-key-9876")
    code, out, err = run("--base-url", sandbox_url, "balance")
    assert code == 1
    assert err.startswith("invalid_key: ErrCode=401")
    assert "wrong-key" not in out + err and "9876" not in out + err


def test_an_unreadable_file(key, tmp_path):
    with pytest.raises(CommandError, match=r"missing\.png"):
        run("upload", str(tmp_path / "missing.png"))


def test_a_key_is_required(monkeypatch):
    monkeypatch.delenv("PIXVERSE_API_KEY", raising=False)
    with pytest.raises(CommandError, match="PIXVERSE_API_KEY"):
        run("balance")


# --- The real platform's other calls ---------------------------------------------------------


def upload(tmp_path, name="photo.png"):
    path = tmp_path / name
    Image.new("RGB", (200, 100), "navy").save(path, "PNG")
    code, out, _ = run("upload", str(path))
    assert code == 0
    return json.loads(out)["img_id"]


def finished(*args):
    code, out, err = run(*args)
    assert code == 0, err
    video_id = json.loads(out)["video_id"]
    code, out, _ = run("status", str(video_id))
    assert json.loads(out)["state"] == "done"
    return video_id


def text_video():
    return finished("text", "--prompt", "p", "--duration", "5", "--quality", "360p")


def test_transition(key, tmp_path):
    first, last = upload(tmp_path, "a.png"), upload(tmp_path, "b.png")
    video_id = finished("transition", "--first-img-id", str(first), "--last-img-id", str(last),
                        "--prompt", "Day to night", "--duration", "5", "--quality", "540p",
                        "--model", "v4.5")
    assert SandboxVideo.objects.get(video_id=video_id).params == {
        "prompt": "Day to night", "first_frame_img": first, "last_frame_img": last,
        "duration": 5, "quality": "540p", "model": "v4.5"}


def test_extend_a_video_or_an_uploaded_one(key, tmp_path):
    source = text_video()
    video_id = finished("extend", "--video-id", str(source), "--prompt", "On", "--duration", "5",
                        "--quality", "540p")
    assert SandboxVideo.objects.get(video_id=video_id).params["model"] == "v5"
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(mp4_bytes())
    code, out, _ = run("media-upload", str(clip))
    assert code == 0
    media = json.loads(out)
    assert media["media_type"] == "video"
    finished("extend", "--media-id", str(media["media_id"]), "--prompt", "On", "--duration", "5",
             "--quality", "360p")


def test_extend_takes_one_source_only(key, capsys):
    # A usage error: argparse's own exit 2 and message, before any request.
    code, _, _ = run("extend", "--video-id", "1", "--media-id", "2", "--prompt", "p",
                     "--duration", "5", "--quality", "540p")
    assert code == 2
    assert "not allowed with" in capsys.readouterr().err


def test_sound_keeps_the_original_sound_when_asked(key):
    source = text_video()
    video_id = finished("sound", "--video-id", str(source), "--content", "Rain",
                        "--keep-original-sound")
    assert SandboxVideo.objects.get(video_id=video_id).params == {
        "sound_effect_content": "Rain", "source_video_id": source, "original_sound_switch": True}
    assert json.loads(run("balance")[1])["total"] == 500 - 45 - 10


def test_lipsync_by_speaker_or_by_audio(key, tmp_path):
    source = text_video()
    finished("lipsync", "--video-id", str(source), "--speaker", "Emily", "--text", "Hello")
    speech = tmp_path / "speech.wav"
    speech.write_bytes(wav_bytes())
    code, out, _ = run("media-upload", str(speech))
    assert code == 0
    audio = json.loads(out)
    assert audio["media_type"] == "audio"
    finished("lipsync", "--video-id", str(source), "--audio-media-id", str(audio["media_id"]))


def test_lipsync_checks_before_sending(key):
    code, out, err = run("lipsync", "--video-id", "1", "--speaker", "Emily")
    assert code == 1 and out == ""
    assert err.startswith("invalid_parameters: ErrCode=None ErrMsg=")
    assert "lip_sync_tts_content" in err


def test_fusion_with_named_references(key, tmp_path):
    hero, town = upload(tmp_path, "hero.png"), upload(tmp_path, "town.png")
    video_id = finished("fusion", "--ref", f"subject:hero={hero}", "--ref",
                        f"background:old town={town}", "--prompt", "@hero in @old town",
                        "--duration", "5", "--quality", "540p", "--aspect-ratio", "16:9")
    params = SandboxVideo.objects.get(video_id=video_id).params
    assert params["model"] == "v4.5"
    assert params["image_references"] == [
        {"type": "subject", "img_id": hero, "ref_name": "hero"},
        {"type": "background", "img_id": town, "ref_name": "old town"}]


def test_fusion_refuses_a_malformed_ref(key, capsys):
    code, _, _ = run("fusion", "--ref", "hero=12", "--prompt", "@hero", "--duration", "5",
                     "--quality", "540p", "--aspect-ratio", "16:9")
    assert code == 2
    assert "expected subject:NAME=IMG_ID" in capsys.readouterr().err


def test_media_upload_of_a_file_that_is_no_media(key, tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("not a video" * 50)
    code, out, err = run("media-upload", str(path))
    assert code == 1 and out == ""
    assert err.startswith("invalid_media: ErrCode=None")


def test_speakers_and_effects_print_json_lists(key):
    code, out, _ = run("speakers")
    assert code == 0
    assert {"speaker_id": "Auto", "name": "Auto"} in json.loads(out)
    code, out, _ = run("effects")
    assert code == 0
    templates = json.loads(out)
    assert [t["activated"] for t in templates] == [True, True, True, False]
    assert templates[0]["qualities"] == ["360p", "540p", "720p"]


def test_text_with_a_template_and_its_refusal(key):
    templates = json.loads(run("effects")[1])
    activated, inactive = templates[0]["template_id"], templates[-1]["template_id"]
    finished("text", "--prompt", "p", "--duration", "5", "--quality", "540p",
             "--template-id", str(activated))
    code, out, err = run("text", "--prompt", "p", "--duration", "5", "--quality", "540p",
                         "--template-id", str(inactive))
    assert code == 1 and out == ""
    assert err.startswith("template_refused: ErrCode=500070 ErrMsg=")
    assert "trace_id=" in err


def test_image_with_a_sound_effect(key, tmp_path):
    img_id = upload(tmp_path)
    video_id = finished("image", "--img-id", str(img_id), "--prompt", "p", "--duration", "5",
                        "--quality", "360p", "--sound-effect", "Birdsong")
    assert SandboxVideo.objects.get(video_id=video_id).params["sound_effect_content"] == "Birdsong"
    assert json.loads(run("balance")[1])["total"] == 500 - 45 - 10
