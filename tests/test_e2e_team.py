"""End to end, in Chromium (issue 12): staff add a team key with a monthly limit for new
members and invite someone; the invited person joins through the link and makes videos
on the team key until the limit refuses the next one, next to the field."""

import re

import pytest
from playwright.sync_api import expect

from tests.processes import django_shell
from tests.test_end_to_end import browser, portal, sign_in  # noqa: F401  (fixtures)

pytestmark = pytest.mark.slow


def test_staff_invite_a_member_who_spends_from_a_team_key_up_to_the_limit(portal, browser):
    base, env = portal
    team_key = django_shell(env, """
from django.contrib.auth.models import User
from generations.sandbox.models import SandboxAccount
User.objects.create_superuser("olive", "olive@example.com", "e2e-long-password")
_, key = SandboxAccount.issue("studio", credits=5000)
print(key)
""")
    staff = browser.new_context(viewport={"width": 1366, "height": 900})
    admin = staff.new_page()
    sign_in(admin, base, "olive")

    # A team key of the studio's.
    admin.goto(f"{base}/admin/generations/teamkey/add/")
    admin.fill("#id_name", "Studio key")
    admin.fill("#id_api_key", team_key)
    admin.click("input[name=_save]")
    admin.wait_for_selector("text=Studio key")
    assert team_key not in admin.content()

    # The invitation; its link is shown once (and mailed).
    admin.goto(f"{base}/admin/generations/invitation/add/")
    admin.fill("#id_email", "pia@example.com")
    admin.select_option("#id_role", "member")
    admin.click("input[name=_save]")
    link = admin.locator("#invitation-link").input_value()
    assert re.match(rf"{re.escape(base)}/accounts/invitation/[\w-]+/$", link)

    member = browser.new_context(viewport={"width": 1366, "height": 900})
    page = member.new_page()
    page.goto(link)
    expect(page.locator("main")).to_contain_text("pia@example.com")
    page.fill("#id_username", "pia")
    page.fill("#id_password1", "e2e-long-password")
    page.fill("#id_password2", "e2e-long-password")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/")
    expect(page.locator(".messages")).to_contain_text("Welcome to the team, pia.")

    # Staff give her the team key, with 100 credits a month.
    admin.goto(f"{base}/admin/generations/teamkey/")
    admin.get_by_role("link", name="Studio key").click()
    admin.select_option("#id_grants-0-member", label="pia")
    admin.fill("#id_grants-0-monthly_limit", "100")
    admin.click("input[name=_save]")
    admin.wait_for_selector("text=was changed successfully")

    # The team key is hers to use, with its limit.
    page.reload()
    expect(page.locator("#id_key")).to_contain_text("Studio key")
    estimate = page.locator("#text-form .estimate")
    expect(estimate).to_contain_text("100 of 100 credits left this month on Studio key")

    for n in (1, 2):
        page.fill("#id_prompt", f"A paper crane, take {n}")
        page.locator("#text-form button[type=submit]").click()
        page.locator("#job-list .job-card", has_text=f"A paper crane, take {n}").wait_for()
    page.locator("#id_quality").select_option("540p")  # the estimate is asked again
    expect(page.locator("#text-form .estimate")).to_contain_text("10 of 100 credits left")
    expect(page.locator("#text-form .estimate")).to_contain_text("This video would go over your limit.")
    page.fill("#id_prompt", "A paper crane, take 3")
    page.locator("#text-form button[type=submit]").click()
    error = page.locator("#text-form .field:has(#id_key) .errorlist")
    expect(error).to_contain_text("This video costs 45 credits; 10 of your 100 credits are left this month "
                                  "on Studio key.")
    assert page.locator("#id_prompt").input_value() == "A paper crane, take 3"  # nothing lost
    assert page.locator("#job-list .job-card", has_text="take 3").count() == 0
    # Both videos play, paid by the team key.
    page.locator("#job-list .job-card.status-done", has_text="take 1").wait_for(timeout=60_000)
    page.locator("#job-list .job-card .prompt a", has_text="take 1").click()
    expect(page.locator(".facts")).to_contain_text("Studio key ••••")
    staff.close()
    member.close()
