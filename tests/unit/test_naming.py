"""The event-name rule."""

import pytest

from relay._errors import EventNameError
from relay._event.naming import check_event_name


@pytest.mark.parametrize(
    "name",
    [
        "svc.surveys.survey_delivered",
        "svc.surveys.survey_delivered.error",
        "svc.map.action_plan_created",
        "svc.hris_csv.upload.analysis_completed",
        "svc.v2.item_3_done",
    ],
)
def test_names_following_the_rule_are_accepted(name: str) -> None:
    """Three or more lowercase snake_case segments, optionally ending in .error, pass."""
    assert check_event_name(name) == name


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("svc.surveys", "needs at least 3 segments"),
        ("svc.surveys.error", "needs at least 3 segments"),
        ("svc.Surveys.survey_delivered", "segment 'Surveys' is not lowercase snake_case"),
        ("svc.surveys.survey-delivered", "segment 'survey-delivered' is not lowercase"),
        ("svc..survey_delivered", "segment '' is not lowercase snake_case"),
        ("svc.surveys.survey__delivered", "is not lowercase snake_case"),
        ("svc.surveys.cron_survey_delivered", "mentions cron"),
        ("svc.cronjobs.survey_delivered", "mentions cron"),
        ("", "non-empty string"),
        ("svc.surveys.survey_delivered\n", "is not lowercase snake_case"),
        ("svc.x." + "a" * 260, "at most 255"),
    ],
)
def test_names_breaking_the_rule_are_refused_with_the_reason(name: str, message: str) -> None:
    """A bad name is refused with an error that says what is wrong."""
    with pytest.raises(EventNameError, match=message):
        check_event_name(name)


def test_cron_inside_an_unrelated_word_is_not_a_cron_mention() -> None:
    """'microns' contains the letters c-r-o-n but is not about cron runs."""
    assert check_event_name("svc.lab.microns_measured")
