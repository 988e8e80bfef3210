import pytest

from tests.factories import make_personas


@pytest.fixture
def personas(db):
    return make_personas()


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
