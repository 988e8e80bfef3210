import re

from playwright.sync_api import expect

from tests.browser.conftest import sign_in
from tests.factories import DeviceFactory


def test_a_member_signs_in_and_sees_the_products_device_count(transactional_db, personas, page):
    DeviceFactory.create_batch(7, product=personas.product)
    DeviceFactory.create_batch(2, product=personas.other_product)

    sign_in(page, personas.viewer.username)

    expect(page).to_have_url(re.compile(r"/products/acme/$"))
    expect(page.locator("#device-count")).to_have_text("7")
    expect(page.get_by_role("heading", name="Acme")).to_be_visible()


def test_a_wrong_password_is_refused_on_the_form(transactional_db, personas, page):
    sign_in_page = page.goto("/login/")
    assert sign_in_page.status == 200
    page.get_by_label("Username").fill(personas.viewer.username)
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("correct username and password")
    expect(page).to_have_url(re.compile(r"/login/$"))
