"""Worker settings: environment variables `CRSWATCH_*`, which `crswatch worker` options set.

`faust -A streams.app worker` reads the same variables, so both ways of starting a worker
agree. Secrets (the SASL password) are read from the environment or a file, never logged.
"""

from __future__ import annotations

import difflib
import json
import os
import socket
import ssl
import textwrap
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from alerts.config import Thresholds

STORES = {"memory": "memory://", "rocksdb": "rocksdb://"}
FLAVORS = ("auto", "kafka", "tansu")
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
    # auto: Tansu (the test broker) when its cluster id says so, else Apache Kafka (detect_flavor)
    broker_flavor: str = "auto"
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
    # faust's own web apps (/table/, /router/, /graph/, stats) list tables and partition owners; off
    # unless an operator turns them on for debugging (docs/privacy.md).
    faust_web_apps: bool = False
    # IN-HOUSE DEFAULT: retention of the topics that keep raw input (PHI included): the dead-letter
    # topic and the raw feeds fhir-in and hl7-in. Set when crswatch creates the topic (docs/privacy.md).
    dead_letter_retention_hours: float = 168.0
    raw_feed_retention_hours: float = 168.0
    # IANA time zone of the raw HL7 v2 feed's times without a UTC offset (None: they are rejected).
    hl7_timezone: str | None = None
    # The fold agent takes each fetch of the input topics as one batch (streams/worker/batching.py);
    # false: faust's per-message stream, kept for comparison (bench/stream.py).
    batch: bool = True
    # IN-HOUSE DEFAULT: most records one fetch (one batch) holds, so that a batch is folded, its outputs
    # sent and its logs written in a bounded time and a rebalance never waits on a huge one.
    batch_max: int = 1000
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
        if self.batch_max < 1:
            raise SettingsError("batch max must be >= 1")
        if self.partitions < 1 or not 0 < self.web_port < 65536:
            raise SettingsError("partitions must be >= 1 and the web port in 1..65535")
        if not (self.dead_letter_retention_hours > 0 and self.raw_feed_retention_hours > 0):
            raise SettingsError("retention hours must be > 0")
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


# Settings field -> environment variable (documented in docs/operations.md).
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
    "faust_web_apps": "CRSWATCH_FAUST_WEB_APPS",
    "dead_letter_retention_hours": "CRSWATCH_DEAD_LETTER_RETENTION_HOURS",
    "raw_feed_retention_hours": "CRSWATCH_RAW_FEED_RETENTION_HOURS",
    "hl7_timezone": "CRSWATCH_HL7_TIMEZONE",
    "batch": "CRSWATCH_BATCH",
    "batch_max": "CRSWATCH_BATCH_MAX",
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
        if name in ("web_port", "partitions", "batch_max"):
            try:
                values[name] = int(raw)
            except ValueError:
                raise SettingsError(f"{var} must be an integer, not {raw!r}") from None
        elif name in ("strict_feeds", "faust_web_apps", "batch"):
            flag = raw.strip().lower()
            if flag not in ("1", "true", "yes", "0", "false", "no"):
                raise SettingsError(f"{var} must be true or false (1/0, yes/no), not {raw!r}")
            values[name] = flag in ("1", "true", "yes")
        elif name in ("max_idle_seconds", "flush_seconds", "dead_letter_retention_hours", "raw_feed_retention_hours"):
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


class ConfigError(SettingsError):
    """A thresholds file that cannot be used: one line naming the file, the key and what is accepted."""


def load_thresholds(path: str | Path | None) -> Thresholds:
    """The thresholds file (TOML, or JSON by any other suffix) as `Thresholds`; defaults without one.

    `crswatch replay --config` and the worker's `CRSWATCH_CONFIG` both read it here. Every problem is
    a ConfigError whose message is one line (examples/site.toml lists every key)."""
    if not path:
        return Thresholds()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the thresholds file ({exc.strerror}); "
                          "examples/site.toml lists every key with its default") from None
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        kind = "TOML" if path.suffix == ".toml" else "JSON"
        raise ConfigError(f"{path}: not valid {kind}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the thresholds file must be a table of key = value")
    try:
        return Thresholds(**data)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        key = ".".join(str(x) for x in first["loc"]) or "?"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        fields = Thresholds.model_fields
        if first["type"] == "extra_forbidden":
            close = difflib.get_close_matches(key, list(fields), n=3)
            hint = f"did you mean {' or '.join(close)}?" if close else f"accepted keys: {', '.join(fields)}"
            raise ConfigError(f"{path}: unknown key {key!r}; {hint}{more}") from None
        name = str(first["loc"][0]) if first["loc"] else ""
        default = fields[name].default if name in fields else None
        raise ConfigError(f"{path}: {key} = {first.get('input')!r} is not accepted: {first['msg']} "
                          f"(default {default!r}, unit {threshold_unit(name)}){more}") from None


# Units of the thresholds, by the ending of the field name (alerts.config names carry their unit).
_UNIT_SUFFIXES = (
    ("_ug_kg_min", "ug/kg/min"), ("_10e9_l", "10^9/L"), ("_ng_ml", "ng/mL"), ("_mg_dl", "mg/dL"),
    ("_g_dl", "g/dL"), ("_u_l", "U/L"), ("_l_min", "L/min"), ("_hours", "h"), ("_minutes", "min"),
    ("_seconds", "s"), ("_mmhg", "mm[Hg]"), ("_mm_hg", "mm[Hg]"), ("_c", "degC"), ("_days", "d"),
)


def threshold_unit(name: str) -> str:
    for suffix, unit in _UNIT_SUFFIXES:
        if name.endswith(suffix):
            return unit
    for part, unit in (("ratio", "ratio"), ("fold", "ratio"), ("grade", "grade"), ("below", "mm[Hg]")):
        if part in name:
            return unit
    field = Thresholds.model_fields.get(name)
    return "list" if field is not None and field.annotation not in (int, float) else "count"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def thresholds_toml() -> str:
    """Every threshold of alerts.config.Thresholds with its default, source and unit, as a TOML file
    that loads to the defaults (examples/site.toml is this text; a test keeps them equal)."""
    lines = [
        "# crswatch thresholds: every key with its default, source and unit (`crswatch config` prints this).",
        "# Copy the file, keep the keys you change, pass it as `crswatch replay --config FILE` or CRSWATCH_CONFIG.",
        "# 'IN-HOUSE DEFAULT' marks a number no published source gives: set it for your site.",
        "",
    ]
    for name, field in Thresholds.model_fields.items():
        lines.append("")
        lines.extend(textwrap.wrap(field.description or "", width=100, initial_indent="# ",
                                   subsequent_indent="# "))
        lines.append(f"# unit: {threshold_unit(name)}")
        lines.append(f"{name} = {_toml_value(field.default)}")
    return "\n".join(lines) + "\n"


def topic_configs(settings: Settings) -> dict[str, dict[str, str]]:
    """Kafka topic configs crswatch sets when it creates a topic: retention of raw input (PHI)."""
    from streams.topics import DEAD_LETTER, FHIR_IN, HL7_IN

    raw = str(int(settings.raw_feed_retention_hours * 3_600_000))
    return {
        DEAD_LETTER: {"retention.ms": str(int(settings.dead_letter_retention_hours * 3_600_000))},
        FHIR_IN: {"retention.ms": raw},
        HL7_IN: {"retention.ms": raw},
    }


def check_broker(broker: str, timeout: float = 3.0) -> None:
    """Fail fast, in one line, when no bootstrap server of `broker` accepts a TCP connection: the Kafka
    clients would otherwise retry in silence for tens of seconds."""
    problems = []
    for server in (s.strip() for s in broker.split(",") if s.strip()):
        host, _, port = server.rpartition(":")
        try:
            socket.create_connection((host or server, int(port or 9092)), timeout=timeout).close()
            return
        except (OSError, ValueError) as exc:
            problems.append(f"{server}: {getattr(exc, 'strerror', None) or exc}")
    raise SettingsError(f"cannot reach the Kafka broker ({'; '.join(problems) or 'no address given'}): "
                        "check --broker / CRSWATCH_BROKER and that the broker is running and listening there")


def detect_flavor(settings: Settings, timeout: float = 3.0) -> tuple[str, str]:
    """(flavor, why) for `broker_flavor = auto`: Tansu names its cluster `tansu_cluster` by default, and
    its deviations (docs/development.md) need the workarounds, or start-up is slow (a group join waits
    half the session timeout) and changelog recovery can come back stale. Anything else is Kafka."""
    if settings.broker_flavor != "auto":
        return settings.broker_flavor, "set"
    if settings.security_protocol != "PLAINTEXT":
        return "kafka", "auto: a secured broker is taken for Apache Kafka"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from kafka import KafkaAdminClient  # type: ignore[import-untyped,unused-ignore]

    try:
        admin = KafkaAdminClient(bootstrap_servers=settings.broker, client_id="crswatch-flavor",
                                 request_timeout_ms=int(timeout * 1000))
        try:
            cluster = str(admin.describe_cluster().get("cluster_id") or "")
        finally:
            admin.close()
    except Exception as exc:  # an old broker without DescribeCluster, or none reachable: the worker says so later
        return "kafka", f"auto: cluster id not read ({type(exc).__name__}), taken for Apache Kafka"
    if cluster.startswith("tansu"):
        return "tansu", f"auto: cluster id {cluster!r} is Tansu's"
    return "kafka", f"auto: cluster id {cluster!r}"
