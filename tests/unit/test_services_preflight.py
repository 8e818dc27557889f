"""Start-up failures name their cause: a taken port, no Java, no mvn, a bad pom."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra import services
from infra.settings import Settings, SettingsError


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port that something is listening on."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield int(listener.getsockname()[1])


def test_preflight_names_the_port_and_its_setting_when_a_port_is_taken(
    taken_port: int,
) -> None:
    settings = dataclasses.replace(Settings(), kafka_port=taken_port)

    with pytest.raises(services.ServiceError) as raised:
        services.check_ports(settings, [services.KAFKA])

    assert f"127.0.0.1:{taken_port} is already in use" in str(raised.value)
    assert "TICKETING_KAFKA_PORT" in str(raised.value)


def test_preflight_lists_what_it_checked_when_no_java_17_is_found(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake_java = tmp_path / "java"
    fake_java.write_text("#!/bin/sh\necho 'openjdk version \"8.0.1\"' >&2\n")
    fake_java.chmod(0o755)
    monkeypatch.setattr(services, "_java_candidates", lambda s: [str(fake_java)])

    with pytest.raises(services.ServiceError) as raised:
        services.find_java(Settings(java=str(fake_java)))

    assert "no Java 17" in str(raised.value)
    assert str(fake_java) in str(raised.value)
    assert "TICKETING_JAVA" in str(raised.value)


def test_fetch_says_mvn_is_missing_when_it_is_not_on_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")

    with pytest.raises(services.ServiceError, match="mvn not found"):
        services.find_mvn()


def test_fetch_shows_mvn_output_when_the_download_fails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake_mvn = tmp_path / "mvn"
    fake_mvn.write_text(
        "#!/bin/sh\necho '[ERROR] Could not resolve org.example:missing:1' >&2\n"
        "exit 1\n"
    )
    fake_mvn.chmod(0o755)
    monkeypatch.setattr(services, "CACHE_DIR", tmp_path / "cache")

    with pytest.raises(services.ServiceError) as raised:
        services.fetch_jars(services.KAFKA, str(fake_mvn))

    assert "fetching jars with mvn failed (exit 1" in str(raised.value)
    assert "Could not resolve org.example:missing:1" in str(raised.value)


def test_settings_refuse_start_when_a_variable_is_unknown_or_invalid() -> None:
    with pytest.raises(SettingsError, match="TICKETING_KAFKA_PROT"):
        Settings.from_env({"TICKETING_KAFKA_PROT": "9092"})
    with pytest.raises(SettingsError, match="TICKETING_KAFKA_PORT='ninety'"):
        Settings.from_env({"TICKETING_KAFKA_PORT": "ninety"})


def test_settings_listing_shows_the_value_in_effect_when_a_variable_is_set() -> None:
    settings = Settings.from_env({"TICKETING_KAFKA_PORT": "19092"})

    listed = {name: (value, default) for name, value, default, _ in settings.describe()}

    assert listed["TICKETING_KAFKA_PORT"] == ("19092", "9092")
