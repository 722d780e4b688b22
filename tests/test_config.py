"""Configuration precedence: defaults < environment < test mapping; the built-in SECRET_KEY
only on the embedded default."""

import stat

import pytest

from stashhog import config, create_app
from stashhog.config import InsecureConfiguration, load_config, normalise_database_url
from stashhog.launcher import create_secret_key_file

POSTGRESQL = "postgresql://postgres@127.0.0.1:5432/test"


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
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.db",
            "TESTING": True,
            "SECRET_KEY": "k",
        }
    )
    assert app.testing
    assert app.config["SQLALCHEMY_DATABASE_URI"].endswith("x.db")
    assert "celery" in app.extensions and "redis" in app.extensions


def test_the_built_in_secret_key_is_refused_outside_the_embedded_default(tmp_path):
    for database in (POSTGRESQL, f"sqlite:///{tmp_path}/elsewhere.db"):
        with pytest.raises(InsecureConfiguration, match="SECRET_KEY") as refused:
            create_app({"SQLALCHEMY_DATABASE_URI": database, "TESTING": True})
        assert str(config.SECRET_KEY_FILE) in str(refused.value)
    with pytest.raises(InsecureConfiguration):
        create_app({"SQLALCHEMY_DATABASE_URI": POSTGRESQL, "SECRET_KEY": config.DEV_SECRET_KEY})


def test_the_built_in_secret_key_is_allowed_on_the_embedded_default():
    settings = load_config(environ={})
    assert settings["SECRET_KEY"] == config.DEV_SECRET_KEY
    config.require_secret_key(settings)  # no refusal


def test_secret_key_comes_from_instance_file_unless_the_environment_sets_one(tmp_path, monkeypatch):
    key_file = tmp_path / "secret_key"
    key_file.write_text("from-the-file\n")
    monkeypatch.setattr(config, "SECRET_KEY_FILE", key_file)
    from_file = load_config(environ={"DATABASE_URL": POSTGRESQL})
    assert from_file["SECRET_KEY"] == "from-the-file"
    config.require_secret_key(from_file)
    from_env = load_config(environ={"DATABASE_URL": POSTGRESQL, "SECRET_KEY": "from-env"})
    assert from_env["SECRET_KEY"] == "from-env"
    mapping = load_config(environ={"SECRET_KEY": "from-env"}, overrides={"SECRET_KEY": "t"})
    assert mapping["SECRET_KEY"] == "t"


def test_launcher_creates_a_private_random_secret_key_once(tmp_path):
    key_file = tmp_path / "instance" / "secret_key"
    assert create_secret_key_file(key_file)
    key = key_file.read_text().strip()
    assert len(key) >= 40 and key != config.DEV_SECRET_KEY
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert not create_secret_key_file(key_file)
    assert key_file.read_text().strip() == key
    assert create_secret_key_file(tmp_path / "other") and (tmp_path / "other").read_text() != key
