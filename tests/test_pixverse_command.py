"""`manage.py pixverse`: each call against the live sandbox, its output and exit codes."""

import io
import json

import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from generations.sandbox.models import SandboxAccount, SandboxVideo

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
    code, out, err = run("text", "--prompt", "p", "--duration", "8", "--quality", "1080p")
    assert code == 1
    assert out == ""
    assert err.startswith("invalid_request: ErrCode=400017 ErrMsg=")
    assert "trace_id=" in err


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
