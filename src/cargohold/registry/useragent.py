"""Which client pulled: a ``User-Agent`` header parsed into tool, version and platform.

Pure (no I/O, no settings). Registry clients write their agent in a few shapes:

* ``docker/24.0.7 go/go1.20.10 … os/linux arch/amd64 UpstreamClient(…)`` (docker; cri-o
  writes ``cri-o/1.28.2 go/… os/linux arch/amd64`` the same way);
* ``skopeo/1.9.3``, ``Buildah/1.28.2``, ``Helm/3.13.2``, ``oras/1.1.0``,
  ``containerd/v1.7.11``: a product and its version;
* ``containers/5.23.1 (github.com/containers/image)``: the default of the
  containers/image library, which podman sends (it sets no agent of its own);
* ``cosign/v2.2.2 (linux; amd64)``: the platform in parentheses.

Anything else is ``other`` with an empty version. Versions lose a leading ``v``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

UNKNOWN = "other"
_MAX = 64  # the width of the columns the parts are stored in

# Product token (as written) -> the tool name recorded.
_TOOLS = {
    "docker": "docker",
    "podman": "podman",
    "libpod": "podman",
    "skopeo": "skopeo",
    "buildah": "buildah",
    "containers": "containers-image",
    "containerd": "containerd",
    "ctr": "containerd",
    "cri-o": "cri-o",
    "oras": "oras",
    "oras-go": "oras",
    "helm": "helm",
    "cosign": "cosign",
    "crane": "crane",
    "go-containerregistry": "go-containerregistry",
    "go-http-client": "go-http-client",
    "curl": "curl",
    "wget": "wget",
    "python-httpx": "python-httpx",
    "python-requests": "python-requests",
    "artifactory": "artifactory",
    "nexus": "nexus",
    "kaniko": "kaniko",
    "regclient": "regclient",
    "regctl": "regclient",
    "kubelet": "kubelet",
}
_PRODUCT = re.compile(r"([A-Za-z][A-Za-z0-9._+-]*)(?:/([^\s/()]+))?")
_OS_ARCH = re.compile(r"\bos/([a-z0-9]+)\b.*?\barch/([a-z0-9_]+)\b", re.IGNORECASE)
_PAREN_PLATFORM = re.compile(r"\(\s*([a-z0-9]+)\s*;\s*([a-z0-9_]+)\s*\)", re.IGNORECASE)
_GOOS = frozenset(
    {"linux", "darwin", "windows", "freebsd", "netbsd", "openbsd", "solaris", "illumos"}
)


@dataclass(frozen=True, slots=True)
class UserAgent:
    tool: str  # a name from _TOOLS' values, or "other"
    version: str  # "" when the agent does not say
    platform: str  # "linux/amd64" when the agent says; else ""


def _version(text: str | None) -> str:
    if not text:
        return ""
    version = text.removeprefix("v").removeprefix("V")
    return version[:_MAX] if version[:1].isdigit() else ""


def _platform(agent: str) -> str:
    match = _OS_ARCH.search(agent)
    if match is None:
        match = _PAREN_PLATFORM.search(agent)
        if match is None or match.group(1).lower() not in _GOOS:
            return ""
    return f"{match.group(1).lower()}/{match.group(2).lower()}"[:_MAX]


def parse_user_agent(agent: str) -> UserAgent:
    """The tool, version and platform ``agent`` names (``other`` when unknown)."""
    first = _PRODUCT.match(agent.strip())
    if first is None:
        return UserAgent(UNKNOWN, "", "")
    product, version = first.group(1), first.group(2)
    tool = _TOOLS.get(product.lower())
    if tool is None:
        return UserAgent(UNKNOWN, "", _platform(agent))
    return UserAgent(tool, _version(version), _platform(agent))
