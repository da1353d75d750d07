"""Sinks: where forwarders deliver (Elasticsearch/OpenSearch, Splunk HEC, syslog, OCSF JSON)."""

from __future__ import annotations

import base64
import ssl
from pathlib import Path

from ..config import ForwardConfig, read_secret
from ..syslog import SyslogFormat
from .base import DeadLetter, DeliveryError, PermanentError, Sink
from .elasticsearch import ElasticsearchSink
from .http import make_client
from .ocsf_json import OcsfFileSink, OcsfHttpSink
from .splunk_hec import SplunkHecSink
from .syslog_tcp import SyslogSink

__all__ = [
    "DeadLetter",
    "DeliveryError",
    "ElasticsearchSink",
    "OcsfFileSink",
    "OcsfHttpSink",
    "PermanentError",
    "Sink",
    "SplunkHecSink",
    "SyslogSink",
    "build_sink",
]


def _verify(config: ForwardConfig) -> bool | str:
    if not config.verify:
        return False
    return config.ca_file or True


def _tls_context(config: ForwardConfig) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=config.ca_file)
    if not config.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if config.cert_file:
        context.load_cert_chain(config.cert_file, config.key_file)
    return context


def build_sink(config: ForwardConfig) -> Sink:
    """The sink a [[forward]] table describes, with its secrets read now (ValueError if one is missing)."""
    what = f"forward {config.name!r}"
    if config.type in ("elasticsearch", "opensearch"):
        assert config.url is not None and config.index is not None
        headers: dict[str, str] = {}
        api_key = read_secret(config.api_key_env, config.api_key_file, what)
        password = read_secret(config.password_env, config.password_file, what)
        if api_key:
            headers["Authorization"] = f"ApiKey {api_key}"
        elif config.username and password is not None:
            basic = base64.b64encode(f"{config.username}:{password}".encode()).decode()
            headers["Authorization"] = f"Basic {basic}"
        client = make_client(verify=_verify(config), timeout=config.timeout, headers=headers)
        return ElasticsearchSink(client, config.url, config.index)
    if config.type == "splunk_hec":
        assert config.url is not None
        token = read_secret(config.token_env, config.token_file, what)
        client = make_client(
            verify=_verify(config), timeout=config.timeout, headers={"Authorization": f"Splunk {token}"}
        )
        return SplunkHecSink(
            client,
            config.url,
            fmt=config.format,
            index=config.index,
            sourcetype=config.sourcetype,
            ack=config.ack,
            ack_timeout=config.ack_timeout,
        )
    if config.type == "syslog":
        scheme, host, port = config.syslog_address()
        fmt = SyslogFormat(app_name=config.app_name, facility=config.facility, sd_id=config.sd_id)
        if config.hostname:
            fmt = SyslogFormat(config.hostname, config.app_name, config.facility, config.sd_id)
        tls = _tls_context(config) if scheme == "tls" else None
        return SyslogSink(host, port, fmt=fmt, tls=tls, server_name=config.server_name, timeout=config.timeout)
    if config.path:
        return OcsfFileSink(Path(config.path))
    assert config.url is not None
    token = read_secret(config.token_env, config.token_file, what)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return OcsfHttpSink(make_client(verify=_verify(config), timeout=config.timeout, headers=headers), config.url)
