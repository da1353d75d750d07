"""[[forward]] tables: validation with errors that name the problem, and secrets only from env or 0600 files."""

from __future__ import annotations

from pathlib import Path

import pytest

from sealtrail.exporters.config import ForwardConfig, load_forward_configs, read_secret
from sealtrail.exporters.sinks import build_sink
from sealtrail.server.settings import load_settings

GOOD = """
[server]
port = 8181

[[forward]]
name = "es"
type = "elasticsearch"
url = "https://es.example:9200"
index = "sealtrail-audit"
api_key_env = "SEALTRAIL_ES_API_KEY"

[[forward]]
name = "siem"
type = "syslog"
address = "tls://siem.example:6514"
ca_file = "/etc/ssl/siem-ca.pem"

[[forward]]
name = "splunk"
type = "splunk_hec"
url = "https://splunk.example:8088"
token_file = "/etc/sealtrail/hec.token"
ack = true

[[forward]]
name = "lake"
type = "ocsf"
path = "/var/lib/sealtrail/ocsf.ndjson"
"""


def test_a_full_configuration_loads_for_forward_and_for_serve(tmp_path: Path) -> None:
    path = tmp_path / "sealtrail.toml"
    path.write_text(GOOD)
    configs = load_forward_configs(path)
    assert [(c.name, c.type) for c in configs] == [
        ("es", "elasticsearch"), ("siem", "syslog"), ("splunk", "splunk_hec"), ("lake", "ocsf"),
    ]  # fmt: skip
    assert configs[1].syslog_address() == ("tls", "siem.example", 6514)
    settings = load_settings(path)
    assert settings.port == 8181 and settings.forward == configs


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"name": "es", "type": "kafka"}, "type must be one of"),
        ({"name": "es", "type": "elasticsearch", "url": "https://x"}, "needs url and index"),
        ({"name": "es", "type": "elasticsearch", "url": "https://u:p@x", "index": "i"}, "not in the url"),
        ({"name": "es", "type": "elasticsearch", "url": "ftp://x", "index": "i"}, "http:// or https://"),
        ({"name": "h", "type": "splunk_hec", "url": "https://x"}, "needs token_env or token_file"),
        ({"name": "s", "type": "syslog", "address": "udp://x:514"}, "tcp://host:port or tls://host:port"),
        ({"name": "o", "type": "ocsf"}, "exactly one of url"),
        ({"name": "bad name", "type": "ocsf", "path": "x"}, "letters, digits"),
        ({"name": "o", "type": "ocsf", "path": "x", "batch_size": 0}, "batch_size"),
        ({"name": "o", "type": "ocsf", "path": "x", "api_key_env": "A", "api_key_file": "B"}, "not both"),
    ],
)
def test_invalid_tables_are_refused_with_a_clear_message(table: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ForwardConfig(**table)  # type: ignore[arg-type]


def test_unknown_keys_and_duplicate_names_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "sealtrail.toml"
    path.write_text('[[forward]]\nname = "o"\ntype = "ocsf"\npath = "x"\napi_key = "inline-secret"\n')
    with pytest.raises(ValueError, match=r"unknown setting forward\.api_key"):
        load_forward_configs(path)
    path.write_text('[[forward]]\nname = "o"\ntype = "ocsf"\npath = "x"\n' * 2)
    with pytest.raises(ValueError, match="two \\[\\[forward\\]\\] tables are named 'o'"):
        load_forward_configs(path)


def test_secrets_come_from_the_environment_or_an_owner_only_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEC_TOKEN", "from-env")
    assert read_secret("HEC_TOKEN", None, "forward 'h'") == "from-env"
    monkeypatch.delenv("HEC_TOKEN")
    with pytest.raises(ValueError, match="HEC_TOKEN is not set"):
        read_secret("HEC_TOKEN", None, "forward 'h'")
    secret = tmp_path / "hec.token"
    secret.write_text("from-file\n")
    secret.chmod(0o644)
    with pytest.raises(ValueError, match=r"readable by others .* chmod 600"):
        read_secret(None, str(secret), "forward 'h'")
    secret.chmod(0o600)
    assert read_secret(None, str(secret), "forward 'h'") == "from-file"


def test_building_a_sink_reads_its_secret_and_never_shows_it(monkeypatch: pytest.MonkeyPatch) -> None:
    config = ForwardConfig(
        name="es", type="elasticsearch", url="https://es.example:9200", index="i", api_key_env="ES_KEY"
    )
    with pytest.raises(ValueError, match="ES_KEY is not set"):
        build_sink(config)
    monkeypatch.setenv("ES_KEY", "c2VjcmV0OmtleQ==")
    sink = build_sink(config)
    try:
        assert "c2VjcmV0OmtleQ==" not in repr(config) + str(config)
    finally:
        sink.close()
