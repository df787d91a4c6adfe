"""The files under deploy/ against the daemon they deploy: they parse, their
probes hit the daemon's real endpoints with the right meaning, every flag they
pass is a real `kokorod serve` flag, every metric an alert reads is one
kokorod/metrics.py defines, and HAProxy, nginx and systemd accept them when
those tools are installed."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from support.fleet import HAPROXY_CFG, haproxy_binary, render_haproxy_config
from kokorod.cli import build_parser
from kokorod.config import ServerConfig
from kokorod.metrics import Metrics

yaml = pytest.importorskip("yaml")

DEPLOY = Path(__file__).resolve().parent.parent.parent / "deploy"
NGINX_CONF = DEPLOY / "nginx" / "kokorod.conf"
UNIT = DEPLOY / "systemd" / "kokorod@.service"
PROMETHEUS = DEPLOY / "prometheus"
KUBERNETES = DEPLOY / "kubernetes"


def serve_args(argv: list[str]) -> Any:
    """``kokorod serve`` parses these (an unknown or malformed flag fails the test)."""
    return build_parser().parse_args(["serve", *argv])


def route_status(path: str) -> int:
    """What a daemon that is still loading answers on ``path``."""
    from kokorod.daemon.core import Daemon
    from kokorod.daemon.front_door import Head, SimpleHeaders

    response = Daemon(ServerConfig()).plain_route("GET", Head(path, SimpleHeaders([("Host", "127.0.0.1")])))
    assert response is not None
    return response.status


def test_probe_endpoints_mean_ready_and_alive() -> None:
    # Readiness fails while loading (no traffic yet); liveness passes (no restart loop).
    assert route_status("/readyz") == 503
    assert route_status("/healthz") == 200


# -- HAProxy ------------------------------------------------------------------


def haproxy_directives() -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in HAPROXY_CFG.read_text().splitlines())
    return [" ".join(line.split()) for line in lines if line]


def test_haproxy_config_has_the_fleet_settings() -> None:
    d = haproxy_directives()
    assert "balance leastconn" in d
    assert "option httpchk" in d and "http-check expect status 200" in d
    check = next(x for x in d if x.startswith("http-check send"))
    assert re.search(r"\buri /readyz\b", check) and route_status("/readyz") == 503
    retry = next(x for x in d if x.startswith("retry-on")).split()[1:]
    assert {"conn-failure", "503"} <= set(retry)
    assert "option redispatch 1" in d and any(x.startswith("retries ") for x in d)
    tunnel = next(x for x in d if x.startswith("timeout tunnel")).split()[-1]
    # The tunnel timeout must outlast the daemon's own idle timeout and pings.
    assert tunnel.endswith("h") and float(tunnel[:-1]) * 3600 > ServerConfig.idle_timeout_s
    assert not any("shutdown-sessions" in x for x in d)  # a draining daemon keeps its conversations
    assert sum(x.startswith("server ") for x in d) >= 2


def test_rendered_haproxy_config_changes_only_addresses(tmp_path: Path) -> None:
    shipped = HAPROXY_CFG.read_text()
    rendered = render_haproxy_config(shipped, listen_port=18080, server_ports=[18001, 18002, 18003],
                                     stats_socket=tmp_path / "s.sock")
    assert "127.0.0.1:18080" in rendered and rendered.count("127.0.0.1:1800") == 3
    kept = [line for line in shipped.splitlines() if not re.match(r"\s*(bind|server|stats socket)\s", line)]
    assert all(line in rendered.splitlines() for line in kept)


@pytest.mark.skipif(haproxy_binary() is None, reason="haproxy not installed (apt-get install haproxy)")
def test_haproxy_accepts_the_config(tmp_path: Path) -> None:
    for path in (HAPROXY_CFG, tmp_path / "rendered.cfg"):
        if path != HAPROXY_CFG:
            path.write_text(render_haproxy_config(HAPROXY_CFG.read_text(), listen_port=18080,
                                                  server_ports=[18001, 18002], stats_socket=tmp_path / "s.sock"))
        result = subprocess.run([str(haproxy_binary()), "-c", "-f", str(path)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


# -- nginx --------------------------------------------------------------------


def test_nginx_config_has_the_fleet_settings() -> None:
    text = NGINX_CONF.read_text()
    for needle in ("least_conn;", "proxy_http_version 1.1;", "proxy_set_header Upgrade $http_upgrade;",
                   "proxy_next_upstream error timeout http_503;", "proxy_buffering off;"):
        assert needle in text, needle
    read_timeout = re.search(r"proxy_read_timeout (\d+)h;", text)
    assert read_timeout and int(read_timeout.group(1)) * 3600 > ServerConfig.idle_timeout_s


@pytest.mark.skipif(shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists(),
                    reason="nginx not installed (apt-get install nginx)")
def test_nginx_accepts_the_config(tmp_path: Path) -> None:
    # nginx.conf's own top level, with every writable path inside tmp_path.
    temp_paths = " ".join(f"{k}_temp_path {tmp_path / k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path / 'nginx.pid'};\nerror_log {tmp_path / 'error.log'};\nevents {{}}\n"
        f"http {{\n  access_log off;\n  {temp_paths}\n  include {NGINX_CONF};\n}}\n")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    result = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# -- systemd ------------------------------------------------------------------


def unit_entries() -> dict[str, list[str]]:
    """Key -> every value given (systemd allows repeated keys)."""
    entries: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            entries.setdefault(key, []).append(value)
    return entries


def test_systemd_template_runs_one_daemon_per_port() -> None:
    e = unit_entries()
    (exec_start,) = e["ExecStart"]
    argv = shlex.split(exec_start.replace("%i", "8766").replace("$KOKOROD_ARGS", ""))
    assert argv[0].endswith("/kokorod") and argv[1] == "serve"
    args = serve_args(argv[2:])
    assert args.port == 8766 and args.host == "127.0.0.1"
    assert any(v.startswith("KOKOROD_TOKEN_FILE=") for v in e["Environment"])  # the proxy faces the network
    assert "%i" in "".join(e["EnvironmentFile"])  # per-instance flags
    assert e["KillSignal"] == ["SIGTERM"]
    # SIGKILL must not cut the default drain short.
    assert float(e["TimeoutStopSec"][0]) >= ServerConfig.drain_timeout_s + 10


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    instance = tmp_path / "kokorod@8765.service"
    instance.write_text(UNIT.read_text())
    result = subprocess.run(["systemd-analyze", "verify", str(instance)], capture_output=True, text=True)
    # The only complaint allowed: /opt/kokorod is not installed on this machine.
    complaints = [line for line in (result.stdout + result.stderr).splitlines()
                  if line.strip() and "/opt/kokorod/.venv/bin/kokorod" not in line]
    assert not complaints, complaints


# -- Prometheus ---------------------------------------------------------------


def defined_metrics() -> dict[str, set[str]]:
    """Every series name kokorod exposes -> its label names."""
    families: dict[str, set[str]] = {}
    for family in Metrics().registry.collect():
        labels: set[str] = set()
        for sample in family.samples:
            labels |= set(sample.labels)
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
        for suffix in suffixes.get(family.type, ("",)):
            families[family.name + suffix] = labels
    # Labelled metrics have no samples until first used: their labels from the source.
    source = (Path(__file__).resolve().parent.parent.parent / "kokorod" / "metrics.py").read_text()
    for name, label_list in re.findall(r'\("(kokorod_\w+)", "[^"]*", \[([^\]]*)\]', source):
        labels = set(re.findall(r'"(\w+)"', label_list))
        for series in [s for s in families if s == name or s.startswith(name + "_")]:
            families[series] |= labels
    return families


def test_alert_rules_read_metrics_that_exist() -> None:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    defined = defined_metrics()
    seen: set[str] = set()
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert rule["alert"] and rule["expr"] and "summary" in rule["annotations"]
            expr = rule["expr"]
            for name in re.findall(r"\b(kokorod_\w+)", expr):
                assert name in defined, f"{rule['alert']}: {name} is not a kokorod metric"
                seen.add(name)
            for name, matchers in re.findall(r"\b(kokorod_\w+)\{([^}]*)\}", expr):
                for label in re.findall(r"(\w+)\s*=~?", matchers):
                    assert label in defined[name], f"{rule['alert']}: {name} has no label {label}"
    # What the issue asks to alert on: underruns, saturation, engine errors.
    assert {"kokorod_underruns_total", "kokorod_engine_errors_total", "kokorod_active_streams",
            "kokorod_capacity_streams"} <= seen


def test_prometheus_scrapes_each_daemon_with_its_token() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    assert all((PROMETHEUS / f).exists() for f in config["rule_files"])
    for job in config["scrape_configs"]:
        assert job["metrics_path"] == "/metrics"
        assert job["authorization"]["type"] == "Bearer" and job["authorization"]["credentials_file"]


# -- Kubernetes ---------------------------------------------------------------


def manifests() -> dict[str, dict[str, Any]]:
    docs: dict[str, dict[str, Any]] = {}
    for path in sorted(KUBERNETES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            docs[doc["kind"]] = doc
    return docs


def test_kubernetes_probes_and_drain_match_the_daemon() -> None:
    m = manifests()
    assert {"Deployment", "Service", "HorizontalPodAutoscaler"} <= set(m)
    deployment = m["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = serve_args(container["args"][1:])
    assert container["args"][0] == "serve"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["http"] == args.port and args.host == "0.0.0.0" and args.token_file  # off loopback: a token
    readiness, liveness = container["readinessProbe"]["httpGet"], container["livenessProbe"]["httpGet"]
    assert readiness["port"] == liveness["port"] == "http"
    assert route_status(readiness["path"]) == 503 and route_status(liveness["path"]) == 200
    # The grace period covers the preStop wait, the daemon's drain and its teardown.
    pre_stop_s = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod["terminationGracePeriodSeconds"] >= pre_stop_s + args.drain_timeout_s + 10
    labels = deployment["spec"]["selector"]["matchLabels"]
    assert labels.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    service = m["Service"]
    assert service["spec"]["selector"] == labels
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= set(ports) | set(ports.values())
    target = m["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert target["kind"] == "Deployment" and target["name"] == deployment["metadata"]["name"]
