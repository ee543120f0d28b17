"""``cargohold.settings``: TOML, ``CARGOHOLD_*`` variables, overrides and validation."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from cargohold.settings import (
    FilesystemStorage,
    LogSettings,
    S3Storage,
    ServerSettings,
    Settings,
    SettingsError,
    load,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    WriteConfig = Callable[[str], Path]


@pytest.fixture
def write_config(tmp_path: Path) -> WriteConfig:
    """Write a TOML file and return its path."""

    def write(text: str) -> Path:
        path = tmp_path / "cargohold.toml"
        path.write_text(text)
        return path

    return write


# --- defaults and derived values ------------------------------------------------------


def test_load_with_nothing_is_the_defaults() -> None:
    assert load() == Settings()
    assert load(None, {}, {}) == Settings()


def test_defaults() -> None:
    settings = Settings()
    assert settings.data_dir == Path("cargohold-data")
    assert settings.server == ServerSettings()
    assert (settings.server.host, settings.server.port) == ("127.0.0.1", 5000)
    assert settings.storage.backend == "filesystem"
    assert settings.log == LogSettings(level="info", format="console", access=False)
    assert settings.registry.max_manifest_bytes == 4 * 1024 * 1024


def test_derived_paths_default_under_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.storage_root == tmp_path / "storage"
    assert settings.database_url == f"sqlite:///{(tmp_path / 'cargohold.db').resolve()}"


def test_relative_data_dir_gives_an_absolute_database_url() -> None:
    url = Settings(data_dir=Path("relative")).database_url
    assert url.startswith("sqlite:////")
    assert url.endswith("/relative/cargohold.db")


def test_explicit_storage_root_and_database_url_win(tmp_path: Path) -> None:
    settings = load(
        overrides={
            "data_dir": tmp_path,
            "storage": {"root": "/srv/blobs"},
            "database": {"url": "postgresql://db/cargohold"},
        }
    )
    assert settings.storage_root == Path("/srv/blobs")
    assert settings.database_url == "postgresql://db/cargohold"


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.data_dir = Path("x")  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.server.port = 1  # type: ignore[misc]


# --- TOML -----------------------------------------------------------------------------

FULL = """
data_dir = "/var/lib/cargohold"

[server]
host = "0.0.0.0"
port = 8080
workers = 4
tls_cert = "/etc/cargohold/cert.pem"
tls_key = "/etc/cargohold/key.pem"
shutdown_timeout = 5

[storage]
backend = "filesystem"
root = "/srv/blobs"
io_threads = 2

[database]
url = "sqlite:////tmp/x.db"

[registry]
max_manifest_bytes = 1024
max_page_size = 50
upload_ttl_hours = 0.5
gc_grace_hours = 2

[log]
level = "debug"
format = "json"
access = true
"""


def test_toml_sets_every_section(write_config: WriteConfig) -> None:
    settings = load(write_config(FULL))
    assert settings.data_dir == Path("/var/lib/cargohold")
    assert settings.server == ServerSettings(
        host="0.0.0.0",  # noqa: S104 - a value under test, not a bind
        port=8080,
        workers=4,
        tls_cert=Path("/etc/cargohold/cert.pem"),
        tls_key=Path("/etc/cargohold/key.pem"),
        shutdown_timeout=5.0,
    )
    assert settings.storage == FilesystemStorage(root=Path("/srv/blobs"), io_threads=2)
    assert settings.database.url == "sqlite:////tmp/x.db"
    assert settings.registry.max_page_size == 50
    assert settings.registry.upload_ttl_hours == 0.5
    assert settings.log == LogSettings(level="debug", format="json", access=True)


def test_toml_values_get_their_declared_types(write_config: WriteConfig) -> None:
    settings = load(write_config(FULL))
    assert isinstance(settings.data_dir, Path)
    assert isinstance(settings.server.tls_cert, Path)
    assert isinstance(settings.server.shutdown_timeout, float)
    assert isinstance(settings.registry.gc_grace_hours, float)


def test_an_empty_file_is_the_defaults(write_config: WriteConfig) -> None:
    assert load(write_config("")) == Settings()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[server\n", "cannot read"),
        ("port = = 1", "cannot read"),
        ('data_dir = "a"\ndata_dir = "b"', "cannot read"),
    ],
)
def test_bad_toml(write_config: WriteConfig, text: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load(write_config(text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot read"):
        load(tmp_path / "absent.toml")


def test_a_directory_is_not_a_config_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot read"):
        load(tmp_path)


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[server]\nhost = "caf\xe9"\n')
    with pytest.raises(SettingsError, match="cannot read"):
        load(path)


# --- environment ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "read"),
    [
        ({"CARGOHOLD_SERVER_PORT": "8080"}, lambda s: s.server.port == 8080),
        ({"CARGOHOLD_SERVER_HOST": "::"}, lambda s: s.server.host == "::"),
        (
            {"CARGOHOLD_SERVER_SHUTDOWN_TIMEOUT": "2.5"},
            lambda s: s.server.shutdown_timeout == 2.5,
        ),
        (
            {"CARGOHOLD_SERVER_TLS_CERT": "/c.pem"},
            lambda s: s.server.tls_cert == Path("/c.pem"),
        ),
        ({"CARGOHOLD_SERVER_TLS_CERT": ""}, lambda s: s.server.tls_cert is None),
        ({"CARGOHOLD_DATA_DIR": "/data"}, lambda s: s.data_dir == Path("/data")),
        (
            {"CARGOHOLD_STORAGE_ROOT": "/blobs"},
            lambda s: s.storage_root == Path("/blobs"),
        ),
        ({"CARGOHOLD_STORAGE_IO_THREADS": "3"}, lambda s: s.storage.io_threads == 3),
        (
            {"CARGOHOLD_DATABASE_URL": "sqlite://"},
            lambda s: s.database_url == "sqlite://",
        ),
        (
            {"CARGOHOLD_REGISTRY_MAX_PAGE_SIZE": "10"},
            lambda s: s.registry.max_page_size == 10,
        ),
        ({"CARGOHOLD_LOG_LEVEL": "warning"}, lambda s: s.log.level == "warning"),
        ({"CARGOHOLD_LOG_FORMAT": "json"}, lambda s: s.log.format == "json"),
    ],
)
def test_environment_variables(
    environ: dict[str, str], read: Callable[[Settings], bool]
) -> None:
    assert read(load(environ=environ))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", True),
        ("true", True),
        ("True", True),
        ("TRUE", True),
        ("yes", True),
        ("Yes", True),
        ("0", False),
        ("false", False),
        ("False", False),
        ("no", False),
        ("NO", False),
    ],
)
def test_boolean_strings(value: str, expected: bool) -> None:
    assert load(environ={"CARGOHOLD_LOG_ACCESS": value}).log.access is expected


@pytest.mark.parametrize(
    "value", ["", "on", "off", "y", "n", "2", "-1", "truthy", " true"]
)
def test_bad_boolean_strings(value: str) -> None:
    with pytest.raises(
        SettingsError, match=r"log\.access: .* is not a (boolean|valid bool)"
    ):
        load(environ={"CARGOHOLD_LOG_ACCESS": value})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[log]\naccess = 'maybe'", "is not a boolean"),
        ("[server]\nport = true", "expected a number"),
    ],
)
def test_specific_messages_survive(
    write_config: WriteConfig, text: str, message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        load(write_config(text))


def test_unrelated_variables_are_ignored() -> None:
    environ = {
        "PATH": "/usr/bin",
        "HOME": "/root",
        "CARGOHOLD_INTEROP_TARGET": "reference",  # used by the test tiers, not settings
        "CARGOHOLD_TEST_POSTGRES_URL": "postgresql://x",
        "cargohold_server_port": "1",  # the prefix is upper case
        "XCARGOHOLD_SERVER_PORT": "1",
    }
    assert load(environ=environ) == Settings()


def test_unknown_key_in_a_known_section_fails() -> None:
    with pytest.raises(SettingsError, match=r"unknown setting server\.prot"):
        load(environ={"CARGOHOLD_SERVER_PROT": "8080"})


def test_a_section_named_as_a_value_fails() -> None:
    with pytest.raises(SettingsError, match=r"\[server\] must be a table"):
        load(environ={"CARGOHOLD_SERVER": "x"})


def test_environment_keeps_the_other_toml_keys_of_a_section(
    write_config: WriteConfig,
) -> None:
    path = write_config('[server]\nhost = "0.0.0.0"\nport = 1\n')
    settings = load(path, {"CARGOHOLD_SERVER_PORT": "2"})
    assert (settings.server.host, settings.server.port) == ("0.0.0.0", 2)  # noqa: S104


# --- precedence -----------------------------------------------------------------------

PRECEDENCE: list[tuple[bool, dict[str, str], dict[str, Any], int]] = [
    # (toml sets port 1?, environ, overrides, port)
    (False, {}, {}, 5000),
    (True, {}, {}, 1),
    (False, {"CARGOHOLD_SERVER_PORT": "2"}, {}, 2),
    (True, {"CARGOHOLD_SERVER_PORT": "2"}, {}, 2),
    (True, {}, {"server": {"port": 3}}, 3),
    (True, {"CARGOHOLD_SERVER_PORT": "2"}, {"server": {"port": 3}}, 3),
    (False, {"CARGOHOLD_SERVER_PORT": "2"}, {"server": {}}, 2),
    (True, {"CARGOHOLD_SERVER_PORT": "2"}, {"server": {"host": "h"}}, 2),
]


@pytest.mark.parametrize(("toml", "environ", "overrides", "port"), PRECEDENCE)
def test_precedence_defaults_toml_environment_overrides(
    write_config: WriteConfig,
    toml: bool,
    environ: dict[str, str],
    overrides: dict[str, Any],
    port: int,
) -> None:
    path = write_config("[server]\nport = 1\n") if toml else None
    assert load(path, environ, overrides).server.port == port


def test_override_data_dir_beats_toml_and_environment(
    write_config: WriteConfig,
) -> None:
    path = write_config('data_dir = "/from/toml"\n')
    environ = {"CARGOHOLD_DATA_DIR": "/from/env"}
    assert load(path, environ).data_dir == Path("/from/env")
    assert load(path, environ, {"data_dir": Path("/cli")}).data_dir == Path("/cli")


def test_overrides_are_coerced_like_the_rest() -> None:
    assert load(overrides={"server": {"port": "8080"}}).server.port == 8080


# --- unknown keys and bad values ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour = 1", "unknown setting colour"),
        ("[frontend]\nport = 1", "unknown setting frontend"),
        ("[server]\nprot = 1", r"unknown setting server\.prot"),
        (
            '[storage]\nbackend = "filesystem"\nbucket = "b"',
            r"unknown setting storage\.bucket",
        ),
        ("[log]\nlevel = 'info'\n[log.extra]\na = 1", r"unknown setting log\.extra"),
        ("server = 1", r"\[server\] must be a table"),
        ("log = 'debug'", r"\[log\] must be a table"),
    ],
)
def test_unknown_keys_fail(write_config: WriteConfig, text: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load(write_config(text))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[server]\nport = "http"', r"server\.port: 'http' is not a valid int"),
        ('[server]\nport = "8080.5"', r"server\.port: '8080\.5' is not a valid int"),
        ("[server]\nport = true", r"server\.port: .*True"),
        ("[server]\nworkers = [1]", r"server\.workers: \[1\] is not a valid int"),
        ("[server]\nshutdown_timeout = false", r"server\.shutdown_timeout: .*False"),
        (
            '[server]\nshutdown_timeout = "soon"',
            r"server\.shutdown_timeout: .* valid float",
        ),
        ("[server]\ntls_cert = 5", r"server\.tls_cert: expected a string"),
        ("[log]\naccess = 'maybe'", r"log\.access: 'maybe' is not a"),
        (
            "[log]\nlevel = 'verbose'",
            r"log\.level: 'verbose' is not one of debug, info",
        ),
        ("[log]\nlevel = 'DEBUG'", r"log\.level: 'DEBUG' is not one of"),
        ("[log]\nformat = 'xml'", r"log\.format: 'xml' is not one of console, json"),
        ("[log]\nlevel = 1", r"log\.level: 1 is not one of"),
        (
            "[storage]\nbackend = 'gcs'",
            r"storage\.backend: 'gcs' is not one of filesystem, s3",
        ),
        (
            "[registry]\nmax_page_size = 'lots'",
            r"registry\.max_page_size: .* valid int",
        ),
    ],
)
def test_bad_values_fail_naming_the_key(
    write_config: WriteConfig, text: str, message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        load(write_config(text))


def test_bad_environment_value_fails() -> None:
    with pytest.raises(
        SettingsError, match=r"server\.port: 'eighty' is not a valid int"
    ):
        load(environ={"CARGOHOLD_SERVER_PORT": "eighty"})


def test_settings_error_is_a_value_error() -> None:
    assert issubclass(SettingsError, ValueError)


def test_bad_data_dir_fails_as_a_settings_error(write_config: WriteConfig) -> None:
    with pytest.raises(SettingsError, match="data_dir"):
        load(write_config("data_dir = 5"))


def test_a_fractional_port_fails(write_config: WriteConfig) -> None:
    with pytest.raises(SettingsError, match=r"server\.port"):
        load(write_config("[server]\nport = 5000.7"))


@pytest.mark.parametrize("value", ["2", "[]", "1.5"])
def test_a_non_boolean_toml_value_fails(write_config: WriteConfig, value: str) -> None:
    with pytest.raises(SettingsError, match=r"log\.access"):
        load(write_config(f"[log]\naccess = {value}"))


# --- lists of strings -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "text", "expected"),
    [
        ({}, "", ("latest", "latest-dev")),
        ({}, '[auth]\nstarter_tags = ["stable", "v*"]', ("stable", "v*")),
        ({}, "[auth]\nstarter_tags = []", ()),
        (
            {"CARGOHOLD_AUTH_STARTER_TAGS": "stable, v* ,,edge"},
            "",
            ("stable", "v*", "edge"),
        ),
        ({"CARGOHOLD_AUTH_STARTER_TAGS": ""}, "", ()),
    ],
)
def test_list_settings(
    write_config: WriteConfig,
    environ: dict[str, str],
    text: str,
    expected: tuple[str, ...],
) -> None:
    assert load(write_config(text), environ).auth.starter_tags == expected


@pytest.mark.parametrize("value", ["[1, 2]", '["a", 1]', "5", "{ a = 'b' }"])
def test_list_settings_reject_other_values(
    write_config: WriteConfig, value: str
) -> None:
    with pytest.raises(
        SettingsError, match=r"auth\.starter_tags: expected a list of strings"
    ):
        load(write_config(f"[auth]\nstarter_tags = {value}"))


# --- database pool and replicas (issue #10) -------------------------------------------


def test_database_pool_from_the_environment() -> None:
    settings = load(
        None,
        {
            "CARGOHOLD_DATABASE_URL": "postgresql+psycopg://u@db/cargohold",
            "CARGOHOLD_DATABASE_POOL_SIZE": "12",
            "CARGOHOLD_DATABASE_MAX_OVERFLOW": "0",
            "CARGOHOLD_DATABASE_POOL_TIMEOUT_SECONDS": "2.5",
            "CARGOHOLD_SERVER_REPLICA_ID": "eu-1",
        },
    )
    assert settings.database.pool_size == 12
    assert settings.database.max_overflow == 0
    assert settings.database.pool_timeout_seconds == 2.5
    assert settings.server.replica_id == "eu-1"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"CARGOHOLD_DATABASE_POOL_SIZE": "0"}, "pool_size"),
        ({"CARGOHOLD_DATABASE_MAX_OVERFLOW": "-1"}, "max_overflow"),
        ({"CARGOHOLD_DATABASE_POOL_TIMEOUT_SECONDS": "0"}, "pool_timeout_seconds"),
        ({"CARGOHOLD_DATABASE_URL": "mysql://u@db/x"}, "'mysql' is not supported"),
        ({"CARGOHOLD_SERVER_REPLICA_ID": "a\nb"}, "replica_id"),
        ({"CARGOHOLD_SERVER_REPLICA_ID": "é"}, "replica_id"),
    ],
)
def test_bad_database_and_replica_settings(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        load(None, environ)


def test_a_missing_database_driver_is_named() -> None:
    from cargohold.metadata.database import Database, DriverMissing

    with pytest.raises(DriverMissing, match="'no_such_driver' driver"):
        Database("postgresql+no_such_driver://u@db/cargohold")


# --- [storage]: a tagged union -------------------------------------------------------


def test_s3_storage_from_toml(write_config: WriteConfig) -> None:
    settings = load(
        write_config(
            '[storage]\nbackend = "s3"\nbucket = "blobs"\n'
            'endpoint_url = "http://127.0.0.1:9000"\nredirect = true\n'
            'access_key_id = "id"\nsecret_access_key = "secret"\n'
        )
    )
    assert settings.storage == S3Storage(
        bucket="blobs",
        endpoint_url="http://127.0.0.1:9000",
        redirect=True,
        access_key_id="id",
        secret_access_key="secret",  # noqa: S106 - a value under test
    )
    assert settings.storage.part_size == 8 * 1024 * 1024
    assert settings.storage.presign_seconds == 300
    assert "secret" not in repr(settings)


def test_s3_storage_from_the_environment() -> None:
    settings = load(
        environ={
            "CARGOHOLD_STORAGE_BACKEND": "s3",
            "CARGOHOLD_STORAGE_BUCKET": "blobs",
            "CARGOHOLD_STORAGE_PREFIX": "registry",
            "CARGOHOLD_STORAGE_PART_SIZE": str(16 * 1024 * 1024),
        }
    )
    assert isinstance(settings.storage, S3Storage)
    assert (settings.storage.prefix, settings.storage.part_size) == (
        "registry",
        16 * 1024 * 1024,
    )


@pytest.mark.parametrize(
    ("storage", "message"),
    [
        ({"backend": "ftp"}, "storage.backend: 'ftp' is not one of filesystem, s3"),
        ({"backend": "s3"}, "storage.bucket: required"),
        ({"backend": "s3", "bucket": "No_Such"}, "is not an S3 bucket name"),
        (
            {"backend": "s3", "bucket": "b12", "root": "/x"},
            "unknown setting storage.root",
        ),
        ({"io_threads": 2, "bucket": "b12"}, "unknown setting storage.bucket"),
        (
            {"backend": "s3", "bucket": "b12", "endpoint_url": "s3.example"},
            "storage.endpoint_url: 's3.example' is not an http(s) URL",
        ),
        (
            {"backend": "s3", "bucket": "b12", "access_key_id": "x"},
            "set both or neither",
        ),
        ({"backend": "s3", "bucket": "b12", "part_size": 1024}, "storage.part_size"),
        (
            {"backend": "s3", "bucket": "b12", "presign_seconds": 0},
            "storage.presign_seconds",
        ),
        ({"backend": "s3", "bucket": "b12", "prefix": "/abs"}, "storage.prefix"),
        ({"backend": "s3", "bucket": "b12", "redirect": "maybe"}, "storage.redirect"),
    ],
)
def test_bad_storage_settings_fail_at_load(
    storage: dict[str, Any], message: str
) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        load(overrides={"storage": storage})


def test_storage_root_is_the_filesystem_default_under_s3(tmp_path: Path) -> None:
    settings = load(
        overrides={"data_dir": tmp_path, "storage": {"backend": "s3", "bucket": "b12"}}
    )
    assert settings.storage_root == tmp_path / "storage"
