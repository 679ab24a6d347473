"""Worker settings: environment variables `CRSWATCH_*`, which `crswatch worker` options set.

`faust -A streams.app worker` reads the same variables, so both ways of starting a worker
agree. Secrets (the SASL password) are read from the environment or a file, never logged.
"""

from __future__ import annotations

import json
import os
import ssl
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alerts.config import Thresholds

STORES = {"memory": "memory://", "rocksdb": "rocksdb://"}
FLAVORS = ("kafka", "tansu")
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


class SettingsError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Settings:
    broker: str = "127.0.0.1:9092"  # comma-separated host:port bootstrap servers
    store: str = "memory"
    data_dir: str = "crswatch-data"
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    partitions: int = 4
    broker_flavor: str = "kafka"
    app_id: str = "crswatch"
    config: str | None = None  # thresholds file (TOML or JSON)
    # In-house default: how long a partition's messages wait for an input topic that is behind.
    max_idle_seconds: float = 2.0
    # In-house default: a changed patient's log is written to the changelog at most this often
    # (at once after an alert); the acks of the messages it covers wait for it.
    flush_seconds: float = 1.0
    # Raw FHIR also validated with fhir.resources (R4B models) and raw HL7 also parsed with
    # python-hl7, after the contract checks: full structure validation, at a fraction of the
    # throughput (bench/README.md). Off by default.
    strict_feeds: bool = False
    # IANA time zone of the raw HL7 v2 feed's times without a UTC offset (None: they are rejected).
    hl7_timezone: str | None = None
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "PLAIN"
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None

    def __post_init__(self) -> None:
        if self.store not in STORES:
            raise SettingsError(f"store must be one of {', '.join(STORES)}, not {self.store!r}")
        if self.broker_flavor not in FLAVORS:
            raise SettingsError(f"broker flavor must be one of {', '.join(FLAVORS)}, not {self.broker_flavor!r}")
        if self.security_protocol not in SECURITY_PROTOCOLS:
            raise SettingsError(f"security protocol must be one of {', '.join(SECURITY_PROTOCOLS)}")
        if self.sasl_mechanism not in SASL_MECHANISMS:
            raise SettingsError(f"SASL mechanism must be one of {', '.join(SASL_MECHANISMS)}")
        if self.security_protocol.startswith("SASL") and not (self.sasl_username and self.sasl_password):
            raise SettingsError("SASL needs CRSWATCH_SASL_USERNAME and CRSWATCH_SASL_PASSWORD")
        if self.partitions < 1 or not 0 < self.web_port < 65536:
            raise SettingsError("partitions must be >= 1 and the web port in 1..65535")
        if not (self.max_idle_seconds >= 0 and self.flush_seconds > 0):
            raise SettingsError("max idle seconds must be >= 0 and flush seconds > 0")
        if not self.broker.strip():
            raise SettingsError("no broker given")
        if self.hl7_timezone is not None:
            from streams.feeds.hl7v2 import zone

            try:
                zone(self.hl7_timezone)
            except ValueError as exc:
                raise SettingsError(f"HL7 time zone: {exc}") from None

    @property
    def broker_urls(self) -> list[str]:
        return [f"kafka://{h.strip()}" for h in self.broker.split(",") if h.strip()]

    @property
    def store_url(self) -> str:
        return STORES[self.store]

    def credentials(self) -> Any:
        """faust credentials for TLS and SASL, or None for PLAINTEXT."""
        import faust

        context = None
        if self.security_protocol in ("SSL", "SASL_SSL"):
            context = ssl.create_default_context(cafile=self.ssl_cafile)
            if self.ssl_certfile:
                context.load_cert_chain(self.ssl_certfile, self.ssl_keyfile)
        if self.security_protocol == "SSL":
            return faust.SSLCredentials(context)
        if self.security_protocol.startswith("SASL"):
            return faust.SASLCredentials(username=self.sasl_username, password=self.sasl_password,
                                         ssl_context=context, mechanism=self.sasl_mechanism)
        return None


# Settings field -> environment variable (documented in the README).
ENV = {
    "broker": "CRSWATCH_BROKER",
    "store": "CRSWATCH_STORE",
    "data_dir": "CRSWATCH_DATA_DIR",
    "web_host": "CRSWATCH_WEB_HOST",
    "web_port": "CRSWATCH_WEB_PORT",
    "partitions": "CRSWATCH_PARTITIONS",
    "broker_flavor": "CRSWATCH_BROKER_FLAVOR",
    "app_id": "CRSWATCH_APP_ID",
    "config": "CRSWATCH_CONFIG",
    "max_idle_seconds": "CRSWATCH_MAX_IDLE_SECONDS",
    "flush_seconds": "CRSWATCH_FLUSH_SECONDS",
    "strict_feeds": "CRSWATCH_STRICT_FEEDS",
    "hl7_timezone": "CRSWATCH_HL7_TIMEZONE",
    "security_protocol": "CRSWATCH_SECURITY_PROTOCOL",
    "sasl_mechanism": "CRSWATCH_SASL_MECHANISM",
    "sasl_username": "CRSWATCH_SASL_USERNAME",
    "sasl_password": "CRSWATCH_SASL_PASSWORD",
    "ssl_cafile": "CRSWATCH_SSL_CAFILE",
    "ssl_certfile": "CRSWATCH_SSL_CERTFILE",
    "ssl_keyfile": "CRSWATCH_SSL_KEYFILE",
}


def from_env(environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name, var in ENV.items():
        raw = env.get(var)
        if raw is None or raw == "":
            continue
        if name in ("web_port", "partitions"):
            try:
                values[name] = int(raw)
            except ValueError:
                raise SettingsError(f"{var} must be an integer, not {raw!r}") from None
        elif name == "strict_feeds":
            flag = raw.strip().lower()
            if flag not in ("1", "true", "yes", "0", "false", "no"):
                raise SettingsError(f"{var} must be true or false (1/0, yes/no), not {raw!r}")
            values[name] = flag in ("1", "true", "yes")
        elif name in ("max_idle_seconds", "flush_seconds"):
            try:
                values[name] = float(raw)
            except ValueError:
                raise SettingsError(f"{var} must be a number, not {raw!r}") from None
        else:
            values[name] = raw
    password_file = env.get("CRSWATCH_SASL_PASSWORD_FILE")
    if password_file and "sasl_password" not in values:
        values["sasl_password"] = Path(password_file).read_text(encoding="utf-8").strip()
    return Settings(**values)


def load_thresholds(path: str | Path | None) -> Thresholds:
    """The thresholds file (TOML, or JSON by any other suffix) as `Thresholds`; defaults without one.

    `crswatch replay --config` and the worker's `CRSWATCH_CONFIG` both read it here."""
    if not path:
        return Thresholds()
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    return Thresholds(**data)
