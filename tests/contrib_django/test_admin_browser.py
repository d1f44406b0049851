"""One real headless-browser pass through the admin: log in, requeue a dead letter, confirm.

Opt-in (``RELAY_TEST_BROWSER=1``; needs Debian's ``chromium`` and ``chromium-driver`` and
``pip install selenium``): the default suite does not depend on a browser. Run with::

    RELAY_TEST_BROWSER=1 DJANGO_SETTINGS_MODULE=relay_django_settings \\
        PYTHONPATH=tests/contrib_django .venv/bin/pytest \\
        tests/contrib_django/test_admin_browser.py -p relay.testing.plugin -q
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from test_admin import _audit, _pk, _rows, _state

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def browser() -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.implicitly_wait(5)
    try:
        yield driver
    finally:
        driver.quit()


def test_requeue_a_dead_letter_in_a_real_browser(live_server: Any, browser: Any) -> None:
    """Log in, tick a dead letter, choose requeue, see the confirmation page, confirm."""
    User.objects.create_superuser("olive", "olive@example.invalid", "pw")
    (insert_id,) = _rows(1, dead_reason="400: bad property")
    browser.get(f"{live_server.url}/admin/login/?next=/admin/relay/deadletter/")
    browser.find_element(By.NAME, "username").send_keys("olive")
    browser.find_element(By.NAME, "password").send_keys("pw")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    assert "400: bad property" in browser.find_element(By.ID, "dead-letter-groups").text
    browser.find_element(
        By.CSS_SELECTOR, f"input[name=_selected_action][value='{_pk(insert_id)}']"
    ).click()
    browser.find_element(
        By.CSS_SELECTOR, "select[name=action] option[value=requeue_dead_letters]"
    ).click()
    browser.find_element(By.CSS_SELECTOR, "button[name=index]").click()
    assert "Requeue dead letters: 1 event" in browser.find_element(By.TAG_NAME, "h1").text
    assert _state(insert_id) == ("dead", 0)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit][value^='Yes']").click()
    assert "Requeued 1 event(s)" in browser.find_element(By.CSS_SELECTOR, "ul.messagelist").text
    assert _state(insert_id) == ("pending", 0)
    assert _audit() == [("requeue", "django:olive", 1)]
