"""AppConfig.from_env: defaults, warn-and-default tuning, fail-fast URLs and names, masked secrets."""

from __future__ import annotations

import logging

import pytest

from backend.config import AppConfig, ConfigError, Secret

AUTH_ENV = {
    "BETTER_AUTH_ISSUER": "https://auth.wxyc.org",
    "BETTER_AUTH_AUDIENCE": "https://api.wxyc.org",
    "BETTER_AUTH_JWKS_URL": "https://auth.wxyc.org/api/auth/jwks",
}


def only_warning(config: AppConfig) -> str:
    assert len(config.warnings) == 1, config.warnings
    return config.warnings[0]


class TestDefaults:
    def test_defaults_match_the_documented_ones(self) -> None:
        """An empty environment gives the README's defaults, LML unconfigured and no warnings."""
        config = AppConfig.from_env({})
        assert (config.lml_max_concurrent, config.lml_rate_per_min, config.lml_queue_wait_ms) == (5, 50, 5000)
        assert (config.lml_live_reserve, config.lml_breaker_threshold, config.lml_breaker_open_ms) == (3, 5, 30000)
        assert (config.lml_lookup_timeout_ms, config.lml_release_timeout_ms) == (5000, 10000)
        assert (config.warm_pass_budget_ms, config.warm_per_row_pause_budget_ms) == (1_800_000, 600_000)
        assert (config.warm_live_activity_lookback_s, config.warm_live_activity_pause_ms) == (60, 30_000)
        assert config.warm_enabled and config.migrate_on_start
        assert (config.station_schema, config.service_schema) == ("wxyc_schema", "rotation_picker")
        assert (config.log_level, config.log_format, config.sentry_environment) == ("INFO", "text", "development")
        assert (config.sentry_dsn, config.sentry_traces_sample_rate, config.cors_origins) == (None, 0.0, ())
        assert not config.auth.configured and not config.auth.dev_bypass_active
        assert not config.lml_configured and config.database_url is None and config.warnings == ()


class TestTuningValues:
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
        warning = only_warning(config)
        assert "LML_CLIENT_MAX_CONCURRENT" in warning and fragment in warning

    def test_lookback_zero_is_allowed_and_disables_probe(self) -> None:
        """WARM_LIVE_ACTIVITY_LOOKBACK_SECONDS=0 is valid (it disables the probe)."""
        config = AppConfig.from_env({"WARM_LIVE_ACTIVITY_LOOKBACK_SECONDS": "0"})
        assert config.warm_live_activity_lookback_s == 0 and config.warnings == ()

    def test_empty_lookback_warns_instead_of_silently_disabling(self) -> None:
        """Unlike upstream, an empty lookback variable warns and keeps the default 60."""
        config = AppConfig.from_env({"WARM_LIVE_ACTIVITY_LOOKBACK_SECONDS": ""})
        assert config.warm_live_activity_lookback_s == 60
        assert "WARM_LIVE_ACTIVITY_LOOKBACK_SECONDS" in only_warning(config)

    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            pytest.param("yes", True, id="yes"),
            pytest.param(" 0 ", False, id="zero-padded"),
            pytest.param("OFF", False, id="off-upper"),
        ],
    )
    def test_booleans_accept_the_usual_spellings(self, raw: str, expected: bool) -> None:
        """Boolean settings read 1/0, true/false, yes/no and on/off in any case."""
        config = AppConfig.from_env({"WARM_ENABLED": raw})
        assert config.warm_enabled is expected and config.warnings == ()

    def test_unreadable_boolean_warns_and_uses_default(self) -> None:
        """A boolean that is none of the known spellings warns naming the key and keeps the default."""
        config = AppConfig.from_env({"WARM_ENABLED": "sometimes"})
        assert config.warm_enabled is True
        assert "WARM_ENABLED" in only_warning(config)


class TestLogging:
    @pytest.mark.parametrize(
        ("raw", "level"),
        [pytest.param("debug", "DEBUG", id="lower"), pytest.param(" Warning ", "WARNING", id="padded")],
    )
    def test_log_level_is_case_insensitive(self, raw: str, level: str) -> None:
        """LOG_LEVEL accepts the standard level names in any case."""
        config = AppConfig.from_env({"LOG_LEVEL": raw})
        assert config.log_level == level and config.warnings == ()
        assert config.log_level_number == getattr(logging, level)

    @pytest.mark.parametrize(
        "raw",
        [
            pytest.param("verbose", id="unknown-word"),
            pytest.param("basic_format", id="logging-attribute-not-a-level"),
            pytest.param("15", id="number"),
        ],
    )
    def test_unknown_log_level_warns_and_uses_info(self, raw: str) -> None:
        """An unknown LOG_LEVEL (even a non-level attribute of logging) warns naming the key and uses INFO."""
        config = AppConfig.from_env({"LOG_LEVEL": raw})
        assert config.log_level == "INFO"
        assert config.log_level_number == logging.INFO
        assert "LOG_LEVEL" in only_warning(config)

    @pytest.mark.parametrize(
        ("raw", "expected"),
        [pytest.param("json", "json", id="json"), pytest.param(" TEXT ", "text", id="text-upper")],
    )
    def test_log_format(self, raw: str, expected: str) -> None:
        """LOG_FORMAT is text or json, in any case."""
        config = AppConfig.from_env({"LOG_FORMAT": raw})
        assert config.log_format == expected and config.warnings == ()

    def test_unknown_log_format_warns_and_uses_text(self) -> None:
        """An unknown LOG_FORMAT warns naming the key and falls back to text."""
        config = AppConfig.from_env({"LOG_FORMAT": "xml"})
        assert config.log_format == "text"
        assert "LOG_FORMAT" in only_warning(config)


class TestSentry:
    def test_valid_dsn_is_kept_as_a_secret(self) -> None:
        """A well-formed DSN is stored masked."""
        config = AppConfig.from_env({"SENTRY_DSN": "https://key@sentry.example/1"})
        assert config.sentry_dsn == Secret("https://key@sentry.example/1")

    @pytest.mark.parametrize(
        "dsn",
        [
            pytest.param("nonsense", id="not-a-url"),
            pytest.param("https://sentry.example/1", id="no-key"),
            pytest.param("https://key@sentry.example/", id="no-project"),
            pytest.param("ftp://key@sentry.example/1", id="wrong-scheme"),
        ],
    )
    def test_malformed_dsn_is_a_clear_error(self, dsn: str) -> None:
        """A malformed SENTRY_DSN fails fast, names the key and does not echo the value."""
        with pytest.raises(ConfigError, match="SENTRY_DSN") as info:
            AppConfig.from_env({"SENTRY_DSN": dsn})
        assert dsn not in str(info.value)

    def test_blank_environment_warns_and_keeps_development(self) -> None:
        """A blank SENTRY_ENVIRONMENT warns naming the key and keeps ``development``."""
        config = AppConfig.from_env({"SENTRY_ENVIRONMENT": "   "})
        assert config.sentry_environment == "development"
        assert "SENTRY_ENVIRONMENT" in only_warning(config)

    def test_environment_is_trimmed(self) -> None:
        """A set SENTRY_ENVIRONMENT is used, trimmed."""
        assert AppConfig.from_env({"SENTRY_ENVIRONMENT": " production "}).sentry_environment == "production"

    @pytest.mark.parametrize(
        ("raw", "rate"),
        [
            pytest.param("0", 0.0, id="zero"),
            pytest.param("0.25", 0.25, id="quarter"),
            pytest.param("1", 1.0, id="one"),
        ],
    )
    def test_traces_sample_rate_accepts_zero_to_one(self, raw: str, rate: float) -> None:
        """SENTRY_TRACES_SAMPLE_RATE takes any number from 0 to 1."""
        config = AppConfig.from_env({"SENTRY_TRACES_SAMPLE_RATE": raw})
        assert config.sentry_traces_sample_rate == rate and config.warnings == ()

    @pytest.mark.parametrize(
        "raw",
        [
            pytest.param("1.5", id="above-one"),
            pytest.param("-0.1", id="negative"),
            pytest.param("half", id="text"),
            pytest.param("nan", id="nan"),
        ],
    )
    def test_traces_sample_rate_out_of_range_warns_and_uses_zero(self, raw: str) -> None:
        """A sample rate outside 0..1 (or not a number) warns naming the key and keeps 0."""
        config = AppConfig.from_env({"SENTRY_TRACES_SAMPLE_RATE": raw})
        assert config.sentry_traces_sample_rate == 0.0
        assert "SENTRY_TRACES_SAMPLE_RATE" in only_warning(config)


class TestSchemaNames:
    def test_lower_case_identifiers_are_accepted(self) -> None:
        """Both schema names accept plain lower-case SQL identifiers (trimmed)."""
        config = AppConfig.from_env({"WXYC_SCHEMA_NAME": " station_2 ", "ROTATION_PICKER_SCHEMA_NAME": "_picker"})
        assert (config.station_schema, config.service_schema) == ("station_2", "_picker")
        assert (config.schemas.station, config.schemas.service) == ("station_2", "_picker")

    @pytest.mark.parametrize(
        "key",
        [
            pytest.param("WXYC_SCHEMA_NAME", id="station"),
            pytest.param("ROTATION_PICKER_SCHEMA_NAME", id="service"),
        ],
    )
    @pytest.mark.parametrize(
        "name",
        [
            pytest.param("Wxyc", id="upper-case"),
            pytest.param("2wxyc", id="leading-digit"),
            pytest.param("wxyc-schema", id="hyphen"),
            pytest.param("wxyc;drop", id="semicolon"),
            pytest.param('"wxyc"', id="quoted"),
            pytest.param("a" * 64, id="too-long"),
        ],
    )
    def test_other_names_are_rejected(self, key: str, name: str) -> None:
        """Anything but a lower-case identifier of at most 63 characters is a ConfigError naming the key."""
        with pytest.raises(ConfigError, match=key):
            AppConfig.from_env({key: name})

    @pytest.mark.parametrize(
        "name",
        [
            pytest.param("user", id="reserved-user"),
            pytest.param("order", id="reserved-order"),
            pytest.param("pg_picker", id="pg-prefix"),
        ],
    )
    def test_names_that_cannot_be_used_unquoted_are_rejected(self, name: str) -> None:
        """A schema name PostgreSQL refuses unquoted (a reserved word, the pg_ prefix) is a ConfigError."""
        with pytest.raises(ConfigError, match="ROTATION_PICKER_SCHEMA_NAME"):
            AppConfig.from_env({"ROTATION_PICKER_SCHEMA_NAME": name})

    @pytest.mark.parametrize(
        "env",
        [
            pytest.param({"WXYC_SCHEMA_NAME": "shared", "ROTATION_PICKER_SCHEMA_NAME": "shared"}, id="both-set"),
            pytest.param({"WXYC_SCHEMA_NAME": "rotation_picker"}, id="station-takes-service-default"),
        ],
    )
    def test_names_must_differ(self, env: dict[str, str]) -> None:
        """The service's schema can never be the station's."""
        with pytest.raises(ConfigError, match="must differ"):
            AppConfig.from_env(env)


class TestCorsOrigins:
    def test_comma_separated_origins_are_normalised(self) -> None:
        """FRONTEND_SOURCE lists origins; blanks are skipped, trailing slashes dropped and case lowered."""
        config = AppConfig.from_env({"FRONTEND_SOURCE": "https://DJ.wxyc.org/, ,http://localhost:3000"})
        assert config.cors_origins == ("https://dj.wxyc.org", "http://localhost:3000")

    @pytest.mark.parametrize(
        "origin",
        [
            pytest.param("https://dj.wxyc.org/app", id="path"),
            pytest.param("https://dj.wxyc.org?x=1", id="query"),
            pytest.param("ftp://dj.wxyc.org", id="not-http"),
            pytest.param("dj.wxyc.org", id="no-scheme"),
            pytest.param("https://", id="no-host"),
        ],
    )
    def test_anything_but_an_origin_is_rejected(self, origin: str) -> None:
        """A path, a query, another scheme or a bare host name is a ConfigError naming FRONTEND_SOURCE."""
        with pytest.raises(ConfigError, match="FRONTEND_SOURCE"):
            AppConfig.from_env({"FRONTEND_SOURCE": f"https://ok.wxyc.org,{origin}"})


class TestAuth:
    def test_all_three_better_auth_settings_configure_auth(self) -> None:
        """Issuer, audience and JWKS URL together configure token verification."""
        auth = AppConfig.from_env(AUTH_ENV).auth
        assert auth.configured
        assert (auth.issuer, auth.audience, auth.jwks_url) == (
            AUTH_ENV["BETTER_AUTH_ISSUER"],
            AUTH_ENV["BETTER_AUTH_AUDIENCE"],
            AUTH_ENV["BETTER_AUTH_JWKS_URL"],
        )

    @pytest.mark.parametrize("missing", [pytest.param(name, id=name.lower()) for name in AUTH_ENV])
    def test_partial_settings_are_an_error(self, missing: str) -> None:
        """Setting only some of the BETTER_AUTH_* keys is a ConfigError naming the missing one."""
        env = {k: v for k, v in AUTH_ENV.items() if k != missing}
        with pytest.raises(ConfigError, match=missing):
            AppConfig.from_env(env)

    def test_malformed_jwks_url_is_an_error(self) -> None:
        """BETTER_AUTH_JWKS_URL must be an http(s) URL."""
        with pytest.raises(ConfigError, match="BETTER_AUTH_JWKS_URL"):
            AppConfig.from_env({**AUTH_ENV, "BETTER_AUTH_JWKS_URL": "auth.wxyc.org/jwks"})

    @pytest.mark.parametrize(
        "app_env",
        [
            pytest.param(None, id="unset"),
            pytest.param("production", id="production"),
            pytest.param("staging", id="staging"),
        ],
    )
    def test_dev_bypass_outside_development_is_ignored_with_a_warning(self, app_env: str | None) -> None:
        """AUTH_DEV_BYPASS without APP_ENV=development|test is ignored, and the warning says so."""
        env = {"AUTH_DEV_BYPASS": "true"} | ({} if app_env is None else {"APP_ENV": app_env})
        config = AppConfig.from_env(env)
        assert not config.auth.dev_bypass and not config.auth.dev_bypass_active
        assert "AUTH_DEV_BYPASS ignored" in only_warning(config)

    @pytest.mark.parametrize(
        "app_env", [pytest.param("development", id="development"), pytest.param("TEST", id="test-upper")]
    )
    def test_dev_bypass_in_development_is_active(self, app_env: str) -> None:
        """With APP_ENV=development or test the bypass takes effect, without a warning."""
        config = AppConfig.from_env({"AUTH_DEV_BYPASS": "1", "APP_ENV": app_env})
        assert config.auth.dev_bypass_active
        assert config.warnings == ()


class TestUrlsAndSecrets:
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

    def test_lml_url_configures_tier_three(self) -> None:
        """A valid LIBRARY_METADATA_URL makes LML configured."""
        assert AppConfig.from_env({"LIBRARY_METADATA_URL": "http://lml.internal:8001"}).lml_configured

    def test_secrets_never_show_in_repr(self) -> None:
        """The API key, the metrics token and the DSN are masked in repr."""
        env = {"LML_API_KEY": "hunter2", "METRICS_TOKEN": "tok3n", "SENTRY_DSN": "https://k@sentry.example/1"}
        config = AppConfig.from_env(env)
        assert "hunter2" not in repr(config) and "tok3n" not in repr(config) and "k@sentry" not in repr(config)
        assert config.lml_api_key is not None and config.lml_api_key.reveal() == "hunter2"
        assert config.metrics_token is not None and config.metrics_token.reveal() == "tok3n"


class TestMetrics:
    def test_metrics_are_on_and_open_by_default(self) -> None:
        """Without settings /metrics is enabled and needs no token."""
        config = AppConfig.from_env({})
        assert config.metrics_enabled and config.metrics_token is None

    def test_metrics_can_be_turned_off(self) -> None:
        """METRICS_ENABLED=false turns the endpoint off."""
        assert not AppConfig.from_env({"METRICS_ENABLED": "false"}).metrics_enabled

    def test_blank_metrics_token_means_none(self) -> None:
        """A blank METRICS_TOKEN leaves the endpoint without a token."""
        assert AppConfig.from_env({"METRICS_TOKEN": "  "}).metrics_token is None
