"""``parse_user_agent`` on agents real clients send (captured, or from their code)."""

from __future__ import annotations

import pytest

from cargohold.registry.useragent import UserAgent, parse_user_agent

AGENTS = [
    # docker (moby's dockerversion.DockerUserAgent)
    (
        (
            "docker/24.0.7 go/go1.20.10 git-commit/311b9ff kernel/6.5.0-14-generic "
            r"os/linux arch/amd64 UpstreamClient(Docker-Client/24.0.7 \(linux\))"
        ),
        UserAgent("docker", "24.0.7", "linux/amd64"),
    ),
    (
        (
            "docker/20.10.21 go/go1.18.7 git-commit/3056208 kernel/5.15.49-linuxkit "
            r"os/linux arch/arm64 UpstreamClient(Docker-Client/20.10.21 \(darwin\))"
        ),
        UserAgent("docker", "20.10.21", "linux/arm64"),
    ),
    # captured from skopeo 1.9.3, buildah 1.28.2, podman 4.3 and curl on Debian 12
    ("skopeo/1.9.3", UserAgent("skopeo", "1.9.3", "")),
    ("Buildah/1.28.2", UserAgent("buildah", "1.28.2", "")),
    (
        "containers/5.23.1 (github.com/containers/image)",
        UserAgent("containers-image", "5.23.1", ""),
    ),
    ("curl/7.88.1", UserAgent("curl", "7.88.1", "")),
    # containerd / ctr, cri-o
    ("containerd/v1.7.11", UserAgent("containerd", "1.7.11", "")),
    ("containerd/1.6.20~ds1", UserAgent("containerd", "1.6.20~ds1", "")),
    (
        "cri-o/1.28.2 go/go1.20.10 os/linux arch/amd64",
        UserAgent("cri-o", "1.28.2", "linux/amd64"),
    ),
    # oras, helm, cosign, crane / go-containerregistry
    ("oras/1.1.0", UserAgent("oras", "1.1.0", "")),
    ("oras-go", UserAgent("oras", "", "")),
    ("Helm/3.13.2", UserAgent("helm", "3.13.2", "")),
    ("cosign/v2.2.2 (linux; amd64)", UserAgent("cosign", "2.2.2", "linux/amd64")),
    (
        "crane/v0.16.1 go-containerregistry/v0.16.1",
        UserAgent("crane", "0.16.1", ""),
    ),
    ("go-containerregistry/v0.19.0", UserAgent("go-containerregistry", "0.19.0", "")),
    ("Go-http-client/1.1", UserAgent("go-http-client", "1.1", "")),
    ("python-httpx/0.27.0", UserAgent("python-httpx", "0.27.0", "")),
    ("python-requests/2.31.0", UserAgent("python-requests", "2.31.0", "")),
    ("Artifactory/7.71.5 77105900", UserAgent("artifactory", "7.71.5", "")),
    (
        "Nexus/3.61.0-02 (OSS; Linux; 5.15.0; amd64; 17.0.8)",
        UserAgent("nexus", "3.61.0-02", ""),
    ),
    # unknown, empty, garbage
    ("Mozilla/5.0 (X11; Linux x86_64)", UserAgent("other", "", "")),
    ("", UserAgent("other", "", "")),
    ("   ", UserAgent("other", "", "")),
    ("((((", UserAgent("other", "", "")),
    ("docker/not-a-version", UserAgent("docker", "", "")),
]


@pytest.mark.parametrize(("agent", "expected"), AGENTS)
def test_parses_what_clients_send(agent: str, expected: UserAgent) -> None:
    assert parse_user_agent(agent) == expected


def test_parts_fit_their_columns() -> None:
    agent = parse_user_agent("docker/" + "1" * 300 + " os/linux arch/" + "x" * 300)
    assert len(agent.version) <= 64
    assert len(agent.platform) <= 64
