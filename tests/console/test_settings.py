from console.settings import database_from_url


def test_a_postgres_url_becomes_a_health_checked_persistent_connection():
    db = database_from_url("postgres://fleet:s%40cret@db.internal:6432/fleet_prod?sslmode=require")
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["NAME"], db["USER"], db["PASSWORD"], db["HOST"], db["PORT"]) == (
        "fleet_prod", "fleet", "s@cret", "db.internal", "6432"
    )
    assert db["OPTIONS"] == {"sslmode": "require"}
    assert db["CONN_MAX_AGE"] > 0 and db["CONN_HEALTH_CHECKS"] is True


def test_a_sqlite_url_names_the_file():
    assert database_from_url("sqlite:///tmp/x.sqlite3") == {"ENGINE": "django.db.backends.sqlite3", "NAME": "/tmp/x.sqlite3"}
