"""What PixVerse offers: the V5 price list and the checks on generation parameters."""

import pytest

from generations.catalog import (
    CLASSIC_RATIOS,
    MODELS,
    PROMPT_MAX_LENGTH,
    SEED_MAX,
    STYLES,
    ParameterProblem,
    check_parameters,
    credit_cost,
)

MINIMAL = {"prompt": "A wolf in the snow", "quality": "360p", "duration": 5}
FULL = {
    "prompt": "A magical forest at dawn",
    "negative_prompt": "blurry, text",
    "quality": "720p",
    "duration": 5,
    "model": "v5",
    "aspect_ratio": "16:9",
    "motion_mode": "fast",
    "style": "anime",
    "seed": 42,
}


def fields(params: dict) -> list[str]:
    return [problem.field for problem in check_parameters(params)]


# Prices


@pytest.mark.parametrize(
    ("quality", "duration", "credits"),
    [
        ("360p", 5, 45),
        ("360p", 8, 90),
        ("540p", 5, 45),
        ("540p", 8, 90),
        ("720p", 5, 60),
        ("720p", 8, 120),
        ("1080p", 5, 120),
        ("1080p", 8, 240),
    ],
)
def test_it_prices_each_quality_and_duration_as_the_v5_price_list(quality, duration, credits):
    assert credit_cost(quality, duration) == credits
    assert credit_cost(quality, duration, "normal") == credits
    assert credit_cost(quality, duration, None) == credits


@pytest.mark.parametrize(
    ("quality", "credits"),
    [("360p", 90), ("540p", 90), ("720p", 120), ("1080p", 240)],
)
def test_fast_motion_doubles_the_price(quality, credits):
    assert credit_cost(quality, 5, "fast") == credits
    assert credit_cost(quality, 5, "fast") == 2 * credit_cost(quality, 5)


def test_it_refuses_to_price_an_unknown_quality():
    with pytest.raises(ValueError):
        credit_cost("4k", 5)


# Valid sets


def test_a_minimal_set_of_parameters_is_valid():
    assert check_parameters(MINIMAL) == []


def test_a_full_set_of_parameters_is_valid():
    assert check_parameters(FULL) == []


@pytest.mark.parametrize("model", MODELS)
def test_every_model_is_accepted(model):
    assert check_parameters({**MINIMAL, "model": model}) == []


@pytest.mark.parametrize("aspect_ratio", CLASSIC_RATIOS)
def test_every_aspect_ratio_of_the_default_model_is_accepted(aspect_ratio):
    assert check_parameters({**MINIMAL, "aspect_ratio": aspect_ratio}) == []


@pytest.mark.parametrize("style", STYLES)
def test_every_style_is_accepted(style):
    assert check_parameters({**MINIMAL, "style": style}) == []


@pytest.mark.parametrize(
    ("quality", "duration"),
    [("360p", 5), ("360p", 8), ("540p", 5), ("540p", 8), ("720p", 5), ("720p", 8), ("1080p", 5)],
)
def test_every_offered_quality_and_duration_is_accepted(quality, duration):
    assert check_parameters({**MINIMAL, "quality": quality, "duration": duration}) == []


@pytest.mark.parametrize("quality", ["360p", "540p", "720p"])
def test_fast_motion_is_accepted_for_5_seconds_below_1080p(quality):
    assert check_parameters({**MINIMAL, "quality": quality, "motion_mode": "fast"}) == []


# Bad values, one field at a time


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"prompt": None}, "prompt"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "   \n\t "}, "prompt"),
        ({"prompt": 42}, "prompt"),
        ({"prompt": "x" * (PROMPT_MAX_LENGTH + 1)}, "prompt"),
        ({"negative_prompt": "x" * (PROMPT_MAX_LENGTH + 1)}, "negative_prompt"),
        ({"negative_prompt": 42}, "negative_prompt"),
        ({"quality": None}, "quality"),
        ({"quality": "4k"}, "quality"),
        ({"quality": "720P"}, "quality"),
        ({"quality": 720}, "quality"),
        ({"duration": None}, "duration"),
        ({"duration": 6}, "duration"),
        ({"duration": "5"}, "duration"),
        ({"duration": True}, "duration"),
        ({"duration": False}, "duration"),
        ({"model": "v7"}, "model"),
        ({"model": "V5"}, "model"),
        ({"aspect_ratio": "21:9"}, "aspect_ratio"),
        ({"aspect_ratio": "16/9"}, "aspect_ratio"),
        ({"motion_mode": "slow"}, "motion_mode"),
        ({"motion_mode": "Fast"}, "motion_mode"),
        ({"style": "watercolour"}, "style"),
        ({"seed": -1}, "seed"),
        ({"seed": SEED_MAX + 1}, "seed"),
        ({"seed": "42"}, "seed"),
        ({"seed": 4.0}, "seed"),
        ({"seed": True}, "seed"),
        ({"seed": False}, "seed"),
    ],
    ids=repr,
)
def test_it_refuses_a_bad_value_on_its_own_field(change, field):
    problems = check_parameters({**MINIMAL, **change})

    assert [problem.field for problem in problems] == [field]


def test_a_missing_prompt_quality_and_duration_are_each_reported():
    assert sorted(fields({})) == ["duration", "prompt", "quality"]


def test_it_reports_every_problem_not_only_the_first():
    params = {**FULL, "prompt": "", "quality": "4k", "model": "v9", "seed": -5}

    assert sorted(fields(params)) == ["model", "prompt", "quality", "seed"]


# Combinations


def test_fast_motion_is_refused_for_8_seconds():
    problems = check_parameters({**MINIMAL, "duration": 8, "motion_mode": "fast"})

    assert [problem.field for problem in problems] == ["motion_mode"]


def test_fast_motion_is_refused_at_1080p():
    problems = check_parameters({**MINIMAL, "quality": "1080p", "motion_mode": "fast"})

    assert [problem.field for problem in problems] == ["motion_mode"]


def test_1080p_is_refused_for_8_seconds_on_the_duration():
    problems = check_parameters({**MINIMAL, "quality": "1080p", "duration": 8})

    assert [problem.field for problem in problems] == ["duration"]


def test_fast_motion_at_1080p_for_8_seconds_is_refused_for_each_reason():
    problems = check_parameters({**MINIMAL, "quality": "1080p", "duration": 8, "motion_mode": "fast"})

    assert sorted(problem.field for problem in problems) == ["duration", "motion_mode", "motion_mode"]
    assert len({problem.message for problem in problems}) == 3


# Boundaries


@pytest.mark.parametrize("seed", [0, 1, SEED_MAX - 1, SEED_MAX])
def test_seeds_from_0_to_the_maximum_are_accepted(seed):
    assert SEED_MAX == 2_147_483_647
    assert check_parameters({**MINIMAL, "seed": seed}) == []


@pytest.mark.parametrize("seed", [-1, 2_147_483_648])
def test_seeds_just_outside_the_range_are_refused(seed):
    assert fields({**MINIMAL, "seed": seed}) == ["seed"]


def test_a_prompt_of_exactly_2048_characters_is_accepted():
    assert PROMPT_MAX_LENGTH == 2048
    assert check_parameters({**MINIMAL, "prompt": "x" * 2048}) == []


def test_a_prompt_of_2049_characters_is_refused():
    assert fields({**MINIMAL, "prompt": "x" * 2049}) == ["prompt"]


def test_a_negative_prompt_of_exactly_2048_characters_is_accepted():
    assert check_parameters({**MINIMAL, "negative_prompt": "x" * 2048}) == []


def test_a_negative_prompt_of_2049_characters_is_refused():
    assert fields({**MINIMAL, "negative_prompt": "x" * 2049}) == ["negative_prompt"]


def test_an_empty_negative_prompt_is_accepted():
    assert check_parameters({**MINIMAL, "negative_prompt": ""}) == []


def test_a_whitespace_only_prompt_is_refused():
    assert fields({**MINIMAL, "prompt": "    "}) == ["prompt"]


def test_a_prompt_with_surrounding_whitespace_is_accepted():
    assert check_parameters({**MINIMAL, "prompt": "  A wolf  "}) == []


def test_optional_parameters_may_be_none():
    params = {
        **MINIMAL,
        "negative_prompt": None,
        "model": None,
        "aspect_ratio": None,
        "motion_mode": None,
        "style": None,
        "seed": None,
    }

    assert check_parameters(params) == []


# Messages


def test_every_problem_is_a_plain_sentence():
    params = {
        "prompt": "",
        "negative_prompt": "x" * 3000,
        "quality": "1080p",
        "duration": 8,
        "model": "v9",
        "aspect_ratio": "2:1",
        "motion_mode": "fast",
        "style": "noir",
        "seed": -1,
    }

    problems = check_parameters(params)

    assert len(problems) == 9
    for problem in problems:
        assert isinstance(problem, ParameterProblem)
        assert problem.message
        assert not problem.message[0].islower()
        assert problem.message.endswith(".")


def test_a_duration_given_as_a_float_is_refused():
    problems = check_parameters({"prompt": "p", "quality": "360p", "duration": 5.0})
    assert [p.field for p in problems] == ["duration"]


def test_a_negative_prompt_that_is_not_text_says_so():
    problems = check_parameters({"prompt": "p", "quality": "360p", "duration": 5, "negative_prompt": 42})
    assert [(p.field, p.message) for p in problems] == [
        ("negative_prompt", "The negative prompt must be text of at most 2048 characters.")]


def test_there_is_no_price_for_an_unknown_duration():
    with pytest.raises(ValueError):
        credit_cost("360p", 6)
