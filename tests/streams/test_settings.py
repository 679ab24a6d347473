from __future__ import annotations

from pathlib import Path

import pytest

from streams.settings import ENV, Settings, SettingsError, from_env


def test_environment_variables_set_every_field() -> None:
    s = from_env({"CRSWATCH_BROKER": "k1:9092, k2:9092", "CRSWATCH_STORE": "rocksdb", "CRSWATCH_WEB_PORT": "7000",
                  "CRSWATCH_PARTITIONS": "8", "CRSWATCH_BROKER_FLAVOR": "tansu", "CRSWATCH_MAX_IDLE_SECONDS": "0.5",
                  "CRSWATCH_FLUSH_SECONDS": "5", "CRSWATCH_STRICT_FEEDS": "yes"})
    assert s.broker_urls == ["kafka://k1:9092", "kafka://k2:9092"]
    assert s.store_url == "rocksdb://" and s.web_port == 7000 and s.partitions == 8 and s.max_idle_seconds == 0.5
    assert s.flush_seconds == 5.0 and s.strict_feeds
    assert not from_env({}).strict_feeds and not from_env({"CRSWATCH_STRICT_FEEDS": "0"}).strict_feeds
    assert set(ENV) == set(Settings.__dataclass_fields__)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CRSWATCH_STORE": "redis"}, "store"),
        ({"CRSWATCH_BROKER_FLAVOR": "pulsar"}, "flavor"),
        ({"CRSWATCH_WEB_PORT": "x"}, "integer"),
        ({"CRSWATCH_SECURITY_PROTOCOL": "SASL_SSL"}, "SASL needs"),
        ({"CRSWATCH_PARTITIONS": "0"}, "partitions"),
        ({"CRSWATCH_FLUSH_SECONDS": "soon"}, "number"),
        ({"CRSWATCH_FLUSH_SECONDS": "0"}, "flush seconds"),
        ({"CRSWATCH_STRICT_FEEDS": "maybe"}, "true or false"),
    ],
)
def test_bad_settings_are_refused_with_the_reason(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        from_env(env)


def test_sasl_password_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    s = from_env({"CRSWATCH_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "CRSWATCH_SASL_USERNAME": "crswatch",
                  "CRSWATCH_SASL_PASSWORD_FILE": str(secret)})
    creds = s.credentials()
    assert creds.username == "crswatch" and creds.password == "s3cret"
