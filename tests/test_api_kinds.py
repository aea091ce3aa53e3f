"""generations/api_kinds.py: each kind's required fields, checks and prices."""

import pytest

from generations import api_kinds


@pytest.mark.parametrize(("seconds", "credits"), [(0.4, 4), (1, 4), (1.01, 8), (12.5, 52)])
def test_lip_sync_costs_4_credits_a_started_second_of_audio(seconds, credits):
    assert api_kinds.lip_sync_cost(audio_seconds=seconds) == credits


@pytest.mark.parametrize(("text", "credits"), [("a", 4), ("a" * 15, 4), ("a" * 16, 8),
                                               # Bytes, not characters: 13 characters, 25 bytes.
                                               ("привет привет", 8)])
def test_lip_sync_by_tts_costs_4_credits_per_15_bytes_of_text(text, credits):
    assert api_kinds.lip_sync_cost(tts_content=text) == credits


def test_a_lip_sync_needs_something_to_price():
    with pytest.raises(ValueError):
        api_kinds.lip_sync_cost()


@pytest.mark.parametrize(("seconds", "credits"), [(5, 10), (5.02, 20), (8, 20), (10, 20), (1, 10)])
def test_a_sound_effect_costs_10_credits_per_started_5_seconds(seconds, credits):
    assert api_kinds.sound_effect_cost(seconds) == credits


def test_missing_fields_are_reported_by_group():
    assert [p.field for p in api_kinds.missing("lip_sync", {})] == [
        "source_video_id", "audio_media_id"]
    assert api_kinds.missing("lip_sync", {"video_media_id": 1, "lip_sync_tts_speaker_id": "A"}) == []
    assert api_kinds.missing("fusion", {"image_references": []})[0].field == "image_references"


def test_a_missing_field_is_reported_once():
    fields = [p.field for p in api_kinds.problems("transition", {"first_frame_img": 1,
                                                                 "last_frame_img": 2,
                                                                 "model": "v5", "duration": 5,
                                                                 "quality": "540p"})]
    assert fields == ["prompt"]


def test_ids_must_be_whole_numbers():
    body = {"prompt": "p", "first_frame_img": "12", "last_frame_img": True, "model": "v5",
            "duration": 5, "quality": "540p"}
    assert [p.field for p in api_kinds.problems("transition", body)] == [
        "first_frame_img", "last_frame_img"]


def test_c1_cannot_extend(monkeypatch):
    # Whatever the catalog knows of c1: extend refuses it itself.
    monkeypatch.setattr(api_kinds.catalog, "check_parameters", lambda params: [])
    body = {"prompt": "p", "model": "c1", "duration": 5, "quality": "540p", "source_video_id": 1}
    assert [p.field for p in api_kinds.check_extend(body)] == ["model"]


def test_every_kind_has_a_path_under_video():
    assert all(kind.path.startswith("/video/") and kind.path.endswith("/generate")
               for kind in api_kinds.KINDS.values())
