"""Configuration precedence: defaults < environment < test mapping."""

from stashhog import create_app
from stashhog.config import load_config, normalise_database_url


def test_defaults_use_embedded_sqlite_and_local_redis():
    settings = load_config(environ={})
    assert settings["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///")
    assert settings["REDIS_URL"] == "redis://127.0.0.1:6379/0"


def test_environment_overrides_defaults():
    settings = load_config(
        environ={"DATABASE_URL": "postgresql://u@h/db", "STASHHOG_STOP_TIMEOUT": "3.5"}
    )
    assert settings["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg2://u@h/db"
    assert settings["STOP_TIMEOUT"] == 3.5


def test_test_mapping_overrides_environment():
    settings = load_config(
        environ={"REDIS_URL": "redis://env:6379/0"}, overrides={"REDIS_URL": "redis://t:1/2"}
    )
    assert settings["REDIS_URL"] == "redis://t:1/2"


def test_bare_postgres_urls_are_normalised_to_psycopg2():
    assert normalise_database_url("postgres://a@b/c") == "postgresql+psycopg2://a@b/c"
    assert normalise_database_url("postgresql://a@b/c") == "postgresql+psycopg2://a@b/c"
    assert normalise_database_url("postgresql+psycopg2://a@b/c") == "postgresql+psycopg2://a@b/c"


def test_factory_applies_test_config(tmp_path):
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.db", "TESTING": True})
    assert app.testing
    assert app.config["SQLALCHEMY_DATABASE_URI"].endswith("x.db")
    assert "celery" in app.extensions and "redis" in app.extensions
