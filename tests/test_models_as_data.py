"""Each model's options as data (generations/catalog.py): the rules, the prices, the form
that offers only what the chosen model accepts, and the sandbox that refuses the rest."""

import re

import pytest
import responses
from django.urls import reverse

from generations import catalog, jobs
from generations.catalog import check_parameters, credit_cost
from generations.forms import TextToVideoForm
from generations.models import Generation
from generations.pixverse import InvalidRequest, PixVerseClient, VideoRequest
from generations.sandbox.models import SandboxAccount
from tests.test_jobs import BASE, ok
from tests.test_jobs import alice as alice
from tests.test_jobs import client as job_client
from tests.test_sandbox_contract import new_trace
from tests.test_views import TEXT, as_alice, started  # noqa: F401 (fixtures)

MINIMAL = {"prompt": "A wolf in the snow", "quality": "540p", "duration": 5}


def fields(params: dict) -> list[str]:
    return [problem.field for problem in check_parameters(params)]


# --- The rules of each model -------------------------------------------------------------


@pytest.mark.parametrize(("model", "accepted", "refused"), [
    ("v3.5", [5, 8], [1, 10]),
    ("v5", [5, 8], [4, 10, 15]),
    ("v5.5", [5, 8, 10], [1, 15]),
    ("v5.6", list(range(1, 11)), [11, 15]),
    ("v6", list(range(1, 16)), [0, 16]),
    ("c1", list(range(1, 16)), [16]),
])
def test_each_model_takes_its_own_lengths(model, accepted, refused):
    for duration in accepted:
        assert check_parameters({**MINIMAL, "model": model, "duration": duration}) == [], duration
    for duration in refused:
        assert fields({**MINIMAL, "model": model, "duration": duration}) == ["duration"], duration


def test_1080p_takes_fewer_lengths_on_the_older_models_only():
    assert fields({**MINIMAL, "model": "v5", "quality": "1080p", "duration": 8}) == ["duration"]
    assert fields({**MINIMAL, "model": "v5.5", "quality": "1080p", "duration": 10}) == ["duration"]
    assert check_parameters({**MINIMAL, "model": "v5.5", "quality": "1080p", "duration": 8}) == []
    assert check_parameters({**MINIMAL, "model": "v6", "quality": "1080p", "duration": 15}) == []


@pytest.mark.parametrize(("model", "ratio", "taken"), [
    ("v5", "16:9", True), ("v5", "2:3", False), ("v5", "21:9", False),
    ("v5.6", "3:2", True), ("v5.6", "21:9", False),
    ("v6", "21:9", True), ("v6", "2:3", True),
    ("c1", "3:2", True), ("c1", "21:9", False),
])
def test_aspect_ratios_follow_the_model(model, ratio, taken):
    assert (fields({**MINIMAL, "model": model, "aspect_ratio": ratio}) == []) is taken


@pytest.mark.parametrize(("extra", "older", "v6", "c1"), [
    ({"style": "anime"}, True, False, False),
    ({"motion_mode": "fast"}, True, False, False),
    ({"camera_movement": "zoom_in"}, True, False, False),
    ({"template_id": 301}, True, False, False),
    ({"sound_effect_switch": True, "sound_effect_content": "rain"}, True, False, False),
    ({"generate_audio_switch": True}, False, True, True),
    ({"generate_multi_clip_switch": True}, False, True, False),
    ({"thinking_type": "enabled"}, False, True, False),
])
def test_each_switch_exists_only_on_the_models_that_have_it(extra, older, v6, c1):
    for model, taken in (("v5", older), ("v6", v6), ("c1", c1)):
        assert (check_parameters({**MINIMAL, "model": model, **extra}) == []) is taken, model


def test_switches_that_are_off_are_no_problem_anywhere():
    off = {"generate_audio_switch": False, "generate_multi_clip_switch": False, "sound_effect_switch": False}
    assert check_parameters({**MINIMAL, "model": "v5", **off}) == []


def test_an_unknown_camera_movement_or_one_with_a_template_is_refused():
    assert fields({**MINIMAL, "camera_movement": "somersault"}) == ["camera_movement"]
    assert fields({**MINIMAL, "camera_movement": "zoom_in", "template_id": 301}) == ["camera_movement"]


def test_the_prompt_limit_is_the_models():
    assert check_parameters({**MINIMAL, "model": "v6", "prompt": "x" * 5000}) == []
    assert fields({**MINIMAL, "model": "v6", "prompt": "x" * 5001}) == ["prompt"]
    assert fields({**MINIMAL, "model": "v5", "prompt": "x" * 2049}) == ["prompt"]
    assert catalog.LONGEST_PROMPT == 5000


def test_a_refusal_names_the_model_and_what_it_takes():
    [problem] = check_parameters({**MINIMAL, "model": "v6", "duration": 20})
    assert problem.message == "The v6 model makes videos of 1 to 15 seconds."
    [problem] = check_parameters({**MINIMAL, "model": "c1", "aspect_ratio": "21:9"})
    assert "2:3, 3:2" in problem.message and "21:9" not in problem.message


# --- Prices ----------------------------------------------------------------------------


@pytest.mark.parametrize(("model", "quality", "duration", "audio", "credits"), [
    ("v5", "540p", 8, False, 90),
    ("v5", "540p", 8, True, 90),  # no native sound on v5: the switch costs nothing there
    ("v6", "360p", 10, False, 50),
    ("v6", "360p", 10, True, 70),
    ("v6", "1080p", 1, False, 18),
    ("v6", "1080p", 15, True, 345),
    ("c1", "720p", 5, False, 50),
    ("c1", "1080p", 15, True, 360),
])
def test_older_models_bill_per_video_and_v6_and_c1_per_second(model, quality, duration, audio, credits):
    assert credit_cost(quality, duration, model=model, audio=audio) == credits


def test_a_sound_effect_adds_ten_credits_per_five_seconds_on_the_older_models():
    assert credit_cost("540p", 5, model="v5", sound_effect=True) == 55
    assert credit_cost("540p", 8, model="v5", sound_effect=True) == 110


def test_there_is_no_price_for_a_length_the_model_does_not_make():
    with pytest.raises(ValueError):
        credit_cost("540p", 12, model="v5.6")


# --- The form offers only what the chosen model accepts ----------------------------------


def option_names(form) -> list[str]:
    return [field.name for field in form.option_fields]


def test_the_form_shows_the_options_of_the_chosen_model(db):
    older = TextToVideoForm(initial={"model": "v5"})
    assert option_names(older) == ["model", "quality", "duration", "aspect_ratio", "motion_mode", "style",
                                   "camera_movement", "sound_effect_content"]
    assert [value for value, _label in older.fields["duration"].choices] == [5, 8]

    newer = TextToVideoForm(initial={"model": "v6"})
    assert option_names(newer) == ["model", "quality", "duration", "aspect_ratio", "generate_audio",
                                   "multi_clip", "thinking_type"]
    assert [value for value, _label in newer.fields["duration"].choices] == list(range(1, 16))
    assert "21:9" in dict(newer.fields["aspect_ratio"].choices)
    assert option_names(TextToVideoForm(initial={"model": "c1"}))[-1] == "generate_audio"


def test_changing_the_model_sends_its_options_and_a_cost_that_follows(as_alice):  # noqa: F811
    asked = {**TEXT, "model": "v6", "duration": "12", "aspect_ratio": "21:9", "generate_audio": "on"}
    body = as_alice.get(reverse("estimate"), asked | {"kind": "text", "options": "1"}).content.decode()
    assert 'id="text-options"' in body and 'id="id_generate_audio"' in body
    assert 'id="id_style"' not in body and 'id="id_motion_mode"' not in body
    assert re.search(r'<option value="12" selected>', body)
    assert re.search(r'<option value="21:9" selected>', body)
    # 540p with sound on v6: 9 credits a second.
    assert 'id="text-estimate"' in body and 'hx-swap-oob="true"' in body
    assert "<strong>108</strong>" in body

    # Back to v5: what it does not take falls back to the defaults, and the cost follows.
    asked |= {"kind": "text", "options": "1", "model": "v5"}
    body = as_alice.get(reverse("estimate"), asked).content.decode()
    assert re.search(r'<option value="5" selected>', body)
    assert re.search(r'<option value="16:9" selected>', body)
    assert 'id="id_generate_audio"' not in body and 'id="id_style"' in body
    assert "<strong>45</strong>" in body


def test_any_other_change_brings_the_cost_alone(as_alice):  # noqa: F811
    asked = {**TEXT, "model": "v6", "duration": "12", "generate_audio": "on"}
    body = as_alice.get(reverse("estimate"), asked).content.decode()
    assert 'id="text-options"' not in body and "hx-swap-oob" not in body
    assert 'id="text-estimate"' in body and "<strong>108</strong>" in body


def test_the_model_field_asks_for_its_options(db):
    attrs = TextToVideoForm().fields["model"].widget.attrs
    assert attrs["hx-get"] == f"{reverse('estimate')}?kind=text&options=1"
    assert (attrs["hx-trigger"], attrs["hx-target"]) == ("change consume", "#text-options")


def test_the_image_form_asks_for_its_own_options(as_alice):  # noqa: F811
    asked = {**TEXT, "kind": "image", "model": "v6", "options": "1"}
    body = as_alice.get(reverse("estimate"), asked).content.decode()
    assert 'id="image-options"' in body and 'id="image-estimate"' in body
    assert 'id="id_aspect_ratio"' not in body  # the image sets it


def test_without_javascript_an_option_the_model_lacks_is_refused_above_the_form(
        as_alice, started):  # noqa: F811
    response = as_alice.post(reverse("create-text"), {**TEXT, "model": "v6", "style": "anime"})
    assert response.status_code == 400
    assert "The v6 model has no styles." in response.content.decode()
    assert Generation.objects.count() == 0


def test_without_javascript_a_length_the_model_lacks_is_refused_next_to_it(as_alice, started):  # noqa: F811
    response = as_alice.post(reverse("create-text"), {**TEXT, "model": "v5.5", "duration": "12"})
    assert response.status_code == 400
    assert 'id="id_duration"' in response.content.decode()
    assert Generation.objects.count() == 0


def test_a_v6_job_with_sound_is_stored_priced_and_sent_with_its_switches(as_alice, started):  # noqa: F811
    response = as_alice.post(reverse("create-text"), {
        **TEXT, "model": "v6", "duration": "10", "quality": "720p", "aspect_ratio": "21:9",
        "generate_audio": "on", "multi_clip": "on", "thinking_type": "enabled"})
    assert response.status_code == 302, response.content.decode()[:2000]
    job = Generation.objects.get()
    switches = (job.generate_audio, job.multi_clip, job.thinking_type)
    assert switches == (True, True, "enabled") and job.credits == 120
    sent = job.video_request().as_json()
    assert sent | {"prompt": "-"} == {
        "prompt": "-", "duration": 10, "quality": "720p", "model": "v6", "aspect_ratio": "21:9",
        "generate_audio_switch": True, "generate_multi_clip_switch": True, "thinking_type": "enabled"}
    # Try again keeps them.
    assert job.retry().video_request().as_json() == sent


def test_switches_that_are_off_are_not_sent(alice):
    job = Generation.objects.create(owner=alice, kind="text", prompt="p", model="v5", quality="540p",
                                    duration=5, credits=45)
    assert set(job.video_request().as_json()) == {"prompt", "duration", "quality", "model"}


# --- PixVerse's own price wins -----------------------------------------------------------


@pytest.mark.parametrize(("answer", "stored"), [(75, 75), ("75", 75), (None, 45), ("n/a", 45)])
def test_the_submit_answers_credit_figure_wins_over_the_price_list(alice, answer, stored):
    job = Generation.objects.create(owner=alice, kind="text", prompt="A wolf", model="v5", quality="360p",
                                    duration=5, credits=45)
    resp = {"video_id": "123456789"} | ({} if answer is None else {"credit": answer})
    with responses.RequestsMock() as api:
        api.post(f"{BASE}/video/text/generate", json=ok(resp))
        assert jobs.submit(job, job_client())
    job.refresh_from_db()
    assert (job.video_id, job.credits) == (123456789, stored)


# --- The sandbox refuses what the real API refuses -----------------------------------------


@pytest.fixture
def sandbox(db, sandbox_url):
    _account, key = SandboxAccount.issue("models", credits=5000, generation_seconds=0.3)
    # Unchecked: what the sandbox itself answers (the client refuses the same before sending).
    return PixVerseClient(key, base_url=sandbox_url, check=False)


@pytest.mark.parametrize("request_", [
    VideoRequest("p", 5, "540p", model="v6", style="anime"),
    VideoRequest("p", 5, "540p", model="c1", aspect_ratio="21:9"),
    VideoRequest("p", 12, "540p", model="v5.6"),
    VideoRequest("p", 5, "540p", model="v5", generate_audio_switch=True),
    VideoRequest("p", 5, "540p", model="c1", generate_multi_clip_switch=True),
    VideoRequest("p", 5, "540p", model="v6", camera_movement="zoom_in"),
])
def test_the_sandbox_refuses_each_models_combinations_with_400017(sandbox, request_):
    with pytest.raises(InvalidRequest) as refused:
        sandbox.text_to_video(request_, trace_id=new_trace())
    assert refused.value.err_code == 400017
    assert sandbox.balance().total == 5000


def test_the_sandbox_bills_v6_per_second_and_says_what_it_charged(sandbox):
    submission = sandbox.text_to_video(
        VideoRequest("A wolf", 12, "540p", model="v6", aspect_ratio="21:9", generate_audio_switch=True),
        trace_id=new_trace())
    assert submission.credits == 12 * 9
    assert sandbox.balance().total == 5000 - 108


def test_the_sandbox_takes_a_v6_prompt_of_5000_characters_and_refuses_one_more(sandbox):
    sandbox.text_to_video(VideoRequest("x" * 5000, 5, "360p", model="v6"), trace_id=new_trace())
    with pytest.raises(InvalidRequest) as refused:
        sandbox.text_to_video(VideoRequest("x" * 5001, 5, "360p", model="v6"), trace_id=new_trace())
    assert refused.value.err_code == 400018
    assert "5000" in refused.value.err_msg
