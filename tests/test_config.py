"""Configuration precedence: defaults < .env < environment < test mapping; the built-in
SECRET_KEY only on the embedded default; typed settings that name a bad variable and its form,
and never show a secret."""

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from stashhog import config, create_app
from stashhog.config import (
    InsecureConfiguration,
    SettingsError,
    load_config,
    normalise_database_url,
)
from stashhog.container import procfile_commands
from stashhog.launcher import create_secret_key_file
from stashhog.settings_docs import markdown_table

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


# -- the typed settings (stashhog.settings) --


def refusal(environ: dict[str, str]) -> str:
    with pytest.raises(SettingsError) as refused:
        load_config(environ=environ)
    return str(refused.value)


def test_a_bad_number_names_its_variable_and_the_form_it_expects():
    message = refusal({"STASHHOG_STOP_TIMEOUT": "x"})
    assert "STASHHOG_STOP_TIMEOUT: expected a number of seconds" in message
    assert "got 'x'" in message
    assert "PORT: expected a port number" in refusal({"PORT": "http"})
    assert "STASHHOG_LEASE_TTL" in refusal({"STASHHOG_LEASE_TTL": "0"})  # above 0


def test_every_bad_setting_is_reported_in_one_error():
    message = refusal({"STASHHOG_PROXY_HOPS": "one", "STASHHOG_LOGIN_RATE_LIMIT": "lots"})
    assert message.startswith("invalid settings: ")
    assert "STASHHOG_PROXY_HOPS: expected a whole number" in message
    assert "STASHHOG_LOGIN_RATE_LIMIT: expected a rate such as '10 per minute'" in message


@pytest.mark.parametrize(
    "word, value",
    [("true", True), ("1", True), ("Yes", True), ("on", True)]
    + [("false", False), ("0", False), ("NO", False), (" off ", False)],
)
def test_booleans_take_the_usual_words(word, value):
    settings = load_config(environ={"STASHHOG_SESSION_COOKIE_SECURE": word})
    assert settings["SESSION_COOKIE_SECURE"] is value


@pytest.mark.parametrize("word", ["maybe", "tru", "2", "enabled"])
def test_a_boolean_outside_the_words_is_refused_not_taken_as_false(word):
    message = refusal({"STASHHOG_SESSION_COOKIE_SECURE": word})
    assert "STASHHOG_SESSION_COOKIE_SECURE: expected true or false" in message


def test_lists_are_comma_separated_and_empty_variables_count_as_unset():
    settings = load_config(environ={"STASHHOG_TRUSTED_HOSTS": " a.org, b.org,,", "REDIS_URL": ""})
    assert settings["TRUSTED_HOSTS"] == ["a.org", "b.org"]
    assert settings["REDIS_URL"] == "redis://127.0.0.1:6379/0"


def test_dot_env_is_read_and_the_environment_wins(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# a comment\nSTASHHOG_STOP_TIMEOUT=4\nREDIS_URL=redis://from-file:6379/1\nOTHER=x\n"
    )
    settings = load_config(environ={"REDIS_URL": "redis://env:6379/2"}, env_file=env_file)
    assert settings["STOP_TIMEOUT"] == 4.0
    assert settings["REDIS_URL"] == "redis://env:6379/2"
    # The processes' own path: the process environment over ENV_FILE.
    monkeypatch.setattr(config, "ENV_FILE", env_file)
    monkeypatch.delenv("STASHHOG_STOP_TIMEOUT", raising=False)
    monkeypatch.setenv("REDIS_URL", "redis://process:6379/3")
    settings = load_config()
    assert (settings["STOP_TIMEOUT"], settings["REDIS_URL"]) == (4.0, "redis://process:6379/3")
    assert config.environment()["STASHHOG_STOP_TIMEOUT"] == "4"  # what the launcher's children see
    assert config.environment()["REDIS_URL"] == "redis://process:6379/3"
    # A given mapping is all there is: a test is never changed by someone's .env.
    assert load_config(environ={})["STOP_TIMEOUT"] == 10.0


def test_a_bad_value_in_dot_env_names_its_variable(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("STASHHOG_MAX_WEBSOCKETS=lots\n")
    with pytest.raises(SettingsError, match="STASHHOG_MAX_WEBSOCKETS: expected a whole number"):
        load_config(environ={}, env_file=env_file)


def test_secrets_are_never_shown_in_errors_or_the_model():
    message = refusal(
        {
            "FLOWER_BASIC_AUTH": "hunter2-without-a-user",
            "REDIS_URL": "http://user:hunter2@127.0.0.1:6379/0",
            "DATABASE_URL": "not a url:hunter2@",
        }
    )
    assert "FLOWER_BASIC_AUTH: expected user:password" in message
    assert "REDIS_URL: expected a Redis URL" in message
    assert "got 'http://***@127.0.0.1:6379/0'" in message
    assert "DATABASE_URL: expected a database URL" in message
    assert "hunter2" not in message
    model = config.settings_model(
        {
            "SECRET_KEY": "hunter2-key",
            "DATABASE_URL": "postgresql://u:hunter2@127.0.0.1/db",
            "REDIS_URL": "redis://:hunter2@127.0.0.1:6379/0",
            "FLOWER_BASIC_AUTH": "flower:hunter2",
        }
    )
    assert "hunter2" not in repr(model) and "hunter2" not in str(model)
    assert load_config(environ={"SECRET_KEY": "hunter2-key"})["SECRET_KEY"] == "hunter2-key"


def test_process_settings_are_checked_but_stay_out_of_the_flask_config():
    settings = load_config(environ={"PORT": "8000", "FLOWER_BASIC_AUTH": "f:p"})
    assert "PORT" not in settings and "FLOWER_BASIC_AUTH" not in settings
    assert config.settings_model({"PORT": "8000"}).PORT == 8000


@pytest.mark.parametrize("process", ["flask", "web"])
def test_a_bad_setting_stops_a_process_with_one_line_and_no_traceback(process):
    """The flask CLI, and gunicorn as the Procfile runs it: halted on the first worker's
    failure (exit 4, App failed to load) rather than starting workers again and again."""
    env = {name: value for name, value in os.environ.items() if name != "DATABASE_URL"}
    env.update(STASHHOG_STOP_TIMEOUT="x", PATH=f"{Path(sys.executable).parent}:{env['PATH']}")
    if process == "flask":
        argv = [sys.executable, "-m", "flask", "--app", "app", "db", "current"]
    else:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            env["PORT"] = str(sock.getsockname()[1])
        argv = ["/bin/sh", "-c", f"exec {procfile_commands()['web']}"]
    result = subprocess.run(
        argv, cwd=config.ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == config.BAD_CONFIGURATION_EXIT
    assert "Traceback" not in result.stderr
    line = (
        "stashhog: invalid setting: STASHHOG_STOP_TIMEOUT: expected a number of seconds above 0,"
        " e.g. 2.5, got 'x'"
    )
    assert result.stderr.splitlines().count(line) == 1, result.stderr


def readme_table(readme: str) -> str:
    """The README's table of variables: from its header row to the first line that is not a
    row."""
    lines = readme.splitlines()
    start = lines.index("| variable | default | meaning |")
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return "\n".join(lines[start:end])


def test_the_readme_table_is_the_one_the_settings_model_prints():
    """Every variable documented, none stale: the table is generated from the model."""
    assert readme_table((config.ROOT / "README.md").read_text()) == markdown_table(), (
        "README.md's Configuration table is not current: replace it with the output of"
        " `.venv/bin/python -m stashhog.settings_docs`"
    )
