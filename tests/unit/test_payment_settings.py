"""Payment settings: the provider's address, the webhook target, a hidden secret."""

from __future__ import annotations

from infra.settings import Settings


def test_settings_listing_hides_the_webhook_secret_when_described() -> None:
    settings = Settings.from_env({"TICKETING_WEBHOOK_SECRET": "s3cr3t-value"})

    listed = {name: (value, default) for name, value, default, _ in settings.describe()}

    assert listed["TICKETING_WEBHOOK_SECRET"] == ("(hidden)", "(hidden)")
    assert "s3cr3t-value" not in repr(settings.describe())
    assert settings.webhook_secret == "s3cr3t-value"


def test_provider_and_webhook_addresses_follow_the_ports_when_moved() -> None:
    settings = Settings.from_env(
        {"TICKETING_PROVIDER_PORT": "38090", "TICKETING_GATEWAY_PORT": "38080"}
    )

    assert settings.provider_url == "http://127.0.0.1:38090"
    assert settings.webhook_target == "http://127.0.0.1:38080/v1/payments/webhook"


def test_webhook_target_is_the_setting_when_one_is_given() -> None:
    settings = Settings.from_env({"TICKETING_WEBHOOK_URL": "http://127.0.0.1:9/hook"})

    assert settings.webhook_target == "http://127.0.0.1:9/hook"


def test_secrets_at_their_published_default_are_named_and_never_printed() -> None:
    defaults = Settings.from_env({})
    chosen = Settings.from_env(
        {
            "TICKETING_GATEWAY_SIGNING_KEYS": "k2:a-secret-of-our-own-0123",
            "TICKETING_GATEWAY_QUEUE_SECRET": "another-secret-of-our-own",
            "TICKETING_WEBHOOK_SECRET": "the-provider-gave-us-this",
        }
    )
    printed = {name: value for name, value, _, _ in defaults.describe()}

    assert "TICKETING_GATEWAY_SIGNING_KEYS" in defaults.default_secrets()
    assert "TICKETING_WEBHOOK_SECRET" in defaults.default_secrets()
    assert chosen.default_secrets() == []
    assert printed["TICKETING_GATEWAY_SIGNING_KEYS"] == "(hidden)"
