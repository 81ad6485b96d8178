"""AppConfig.from_env: defaults, warn-and-default tuning, fail-fast URLs, masked secrets."""

from __future__ import annotations

import pytest

from backend.config import AppConfig, ConfigError


class TestFromEnv:
    def test_defaults_match_the_documented_ones(self) -> None:
        """An empty environment gives the README's defaults and LML unconfigured."""
        config = AppConfig.from_env({})
        assert (config.lml_max_concurrent, config.lml_rate_per_min, config.lml_queue_wait_ms) == (5, 50, 5000)
        assert (config.lml_breaker_threshold, config.lml_breaker_open_ms) == (5, 30000)
        assert (config.lml_lookup_timeout_ms, config.lml_release_timeout_ms) == (5000, 10000)
        assert (config.warm_pass_budget_ms, config.warm_per_row_pause_budget_ms) == (1_800_000, 600_000)
        assert (config.warm_live_activity_lookback_s, config.warm_live_activity_pause_ms) == (60, 30_000)
        assert config.warm_db_retry_ms == 300_000 and config.warm_enabled
        assert not config.lml_configured and config.database_url is None and config.warnings == ()

    @pytest.mark.parametrize(
        ("raw", "fragment"),
        [
            pytest.param("abc", "not an integer", id="text"),
            pytest.param("", "is empty", id="empty"),
            pytest.param("0", "must be >= 1", id="zero"),
            pytest.param("-3", "must be >= 1", id="negative"),
        ],
    )
    def test_bad_tuning_value_warns_naming_it_and_uses_default(self, raw: str, fragment: str) -> None:
        """A bad tuning variable never fails boot; the warning names the variable."""
        config = AppConfig.from_env({"LML_CLIENT_MAX_CONCURRENT": raw})
        assert config.lml_max_concurrent == 5
        assert len(config.warnings) == 1
        assert "LML_CLIENT_MAX_CONCURRENT" in config.warnings[0] and fragment in config.warnings[0]

    def test_lookback_zero_is_allowed_and_disables_probe(self) -> None:
        """WARM_LIVE_ACTIVITY_LOOKBACK_SECONDS=0 is valid (it disables the probe)."""
        config = AppConfig.from_env({"WARM_LIVE_ACTIVITY_LOOKBACK_SECONDS": "0"})
        assert config.warm_live_activity_lookback_s == 0 and config.warnings == ()

    def test_empty_lookback_warns_instead_of_silently_disabling(self) -> None:
        """Unlike upstream, an empty lookback variable warns and keeps the default 60."""
        config = AppConfig.from_env({"WARM_LIVE_ACTIVITY_LOOKBACK_SECONDS": ""})
        assert config.warm_live_activity_lookback_s == 60 and config.warnings

    @pytest.mark.parametrize(
        "url",
        [
            pytest.param("mysql://x@localhost/db", id="wrong-scheme"),
            pytest.param("postgresql://", id="no-host"),
            pytest.param("postgresql://u@localhost:notaport/db", id="bad-port"),
            pytest.param("localhost:5432", id="not-a-url"),
        ],
    )
    def test_malformed_database_url_is_a_clear_error(self, url: str) -> None:
        """A malformed DATABASE_URL fails fast and names the key."""
        with pytest.raises(ConfigError, match="DATABASE_URL"):
            AppConfig.from_env({"DATABASE_URL": url})

    def test_socket_database_url_is_accepted(self) -> None:
        """The embedded server's socket URL is valid."""
        url = "postgresql://postgres:@/postgres?host=/tmp/x"
        assert AppConfig.from_env({"DATABASE_URL": url}).database_url == url

    def test_malformed_lml_url_is_a_clear_error(self) -> None:
        """LIBRARY_METADATA_URL must be http(s)."""
        with pytest.raises(ConfigError, match="LIBRARY_METADATA_URL"):
            AppConfig.from_env({"LIBRARY_METADATA_URL": "lml.internal:8001"})

    def test_secrets_never_show_in_repr(self) -> None:
        """The API key and DSN are masked in repr."""
        config = AppConfig.from_env({"LML_API_KEY": "hunter2", "SENTRY_DSN": "https://k@sentry.example/1"})
        assert "hunter2" not in repr(config) and "k@sentry" not in repr(config)
        assert config.lml_api_key is not None and config.lml_api_key.reveal() == "hunter2"
