"""The console script stops on a bad setting with one clear line, not a traceback."""

from __future__ import annotations

import pytest

from infra.cli import main
from infra.settings import Settings, SettingsError


@pytest.mark.parametrize(
    ("keys", "says"),
    [
        ("nonsense", "look like id:secret"),
        ("k:short", "key 'k' is shorter than 16 bytes"),
        ("BAD ID:0123456789abcdef0", "use [a-z0-9_-]"),
    ],
)
def test_a_bad_signing_key_setting_stops_the_gateway_with_one_line(
    keys: str,
    says: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TICKETING_GATEWAY_SIGNING_KEYS", keys)

    code = main(["gateway"])

    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert code == 2
    assert last.startswith("ticketing: TICKETING_GATEWAY_SIGNING_KEYS: ")
    assert says in last
    assert "Traceback" not in err
    assert "0123456789abcdef0" not in err


@pytest.mark.parametrize("variable", ["TICKETING_GATEWAY_PORT", "TICKETING_KAFKA_PORT"])
def test_a_port_beyond_65535_is_refused_by_name(variable: str) -> None:
    with pytest.raises(SettingsError, match=f"{variable}='70000' is not a port"):
        Settings.from_env({variable: "70000"})


def test_port_zero_and_the_highest_port_are_ports() -> None:
    settings = Settings.from_env(
        {"TICKETING_GATEWAY_PORT": "0", "TICKETING_KAFKA_PORT": "65535"}
    )

    assert (settings.gateway_port, settings.kafka_port) == (0, 65535)
