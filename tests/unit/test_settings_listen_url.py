"""`listen_url`: the cache listener's own connection, masked like `url`."""

from darasa_db import DatabaseSettings


def test_listen_url_is_normalised_and_its_password_masked():
    settings = DatabaseSettings(
        url="postgres://app:secret@pgbouncer/app", listen_url="postgres://app:secret@db:5432/app"
    )

    assert settings.listen_url == "postgresql://app:secret@db:5432/app"
    assert "secret" not in repr(settings)
    assert "postgresql://app:***@db:5432/app" in repr(settings)


def test_listen_url_defaults_to_none():
    assert DatabaseSettings(url="postgresql://app@db/app").listen_url is None
