"""Layers applied as one filesystem: compressions, whiteouts, opaque directories,
hostile names, caps; the detectors on what they find."""

from __future__ import annotations

import contextlib
import gzip
import io
import subprocess
from pathlib import Path

import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st

from cargohold.registry.sbom import detectors, gobuild
from cargohold.registry.sbom.detectors import Found
from cargohold.registry.sbom.facts import package_rows
from cargohold.registry.sbom.layers import LayerUnreadable, normalise, read_image
from tests.images import go_buildinfo, layer

LIMIT = 1 << 30

DPKG_STATUS = b"""Package: base-files
Status: install ok installed
Architecture: amd64
Version: 12.4+deb12u5

Package: old-thing
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0

Package: libfoo1
Status: install ok installed
Architecture: amd64
Source: foo (1.2-3)
Version: 1.2-3+b1
Description: a library
 with a continued line
"""

APK_INSTALLED = b"""C:Q1abc=
P:musl
V:1.2.4-r2
A:x86_64
L:MIT
o:musl

C:Q1def=
P:busybox-binsh
V:1.36.1-r5
A:x86_64
L:GPL-2.0-only
o:busybox
"""


def _names(found: list[Found]) -> set[tuple[str, str, str]]:
    return {(f.kind, f.name, f.version) for f in found if f.kind != detectors.OS}


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_each_compression_is_read(compression: str) -> None:
    data = layer({"var/lib/dpkg/status": DPKG_STATUS}, compression=compression)
    found = read_image([io.BytesIO(data)], limit=LIMIT)
    assert _names(found) == {
        ("deb", "base-files", "12.4+deb12u5"),
        ("deb", "libfoo1", "1.2-3+b1"),
    }
    libfoo = next(f for f in found if f.name == "libfoo1")
    assert libfoo.source == "foo"
    assert libfoo.arch == "amd64"


def test_a_whiteout_removes_what_a_lower_layer_had() -> None:
    lower = layer(
        {
            "usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA": (
                b"Metadata-Version: 2.1\nName: six\nVersion: 1.16.0\n\nbody"
            ),
            "lib/apk/db/installed": APK_INSTALLED,
        }
    )
    upper = layer({"usr/lib/python3/dist-packages/.wh.six-1.16.0.dist-info": b""})
    found = read_image([io.BytesIO(lower), io.BytesIO(upper)], limit=LIMIT)
    assert _names(found) == {
        ("apk", "musl", "1.2.4-r2"),
        ("apk", "busybox-binsh", "1.36.1-r5"),
    }


def test_an_opaque_directory_hides_the_lower_layers_but_not_its_own() -> None:
    lower = layer(
        {
            "app/node_modules/left-pad/package.json": (
                b'{"name":"left-pad","version":"1.3.0"}'
            ),
        }
    )
    upper = layer(
        {
            "app/node_modules/.wh..wh..opq": b"",
            "app/node_modules/@scope/thing/package.json": (
                b'{"name":"@scope/thing","version":"2.0.0","license":"MIT"}'
            ),
        }
    )
    found = read_image([io.BytesIO(lower), io.BytesIO(upper)], limit=LIMIT)
    assert _names(found) == {("npm", "@scope/thing", "2.0.0")}


def test_a_later_file_replaces_an_earlier_one() -> None:
    lower = layer({"lib/apk/db/installed": APK_INSTALLED})
    upper = layer({"lib/apk/db/installed": b"P:musl\nV:1.2.5-r0\n"})
    found = read_image([io.BytesIO(lower), io.BytesIO(upper)], limit=LIMIT)
    assert _names(found) == {("apk", "musl", "1.2.5-r0")}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("./var/lib/dpkg/status", "var/lib/dpkg/status"),
        ("/etc/os-release", "etc/os-release"),
        ("a/../b", "b"),
        ("../../etc/passwd", None),
        ("a/../../x", None),
        ("./", None),
    ],
)
def test_names_are_normalised_inside_the_root(name: str, expected: str | None) -> None:
    assert normalise(name) == expected


def test_a_path_escaping_the_root_is_ignored_and_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = layer({"../../lib/apk/db/installed": APK_INSTALLED}, compression="none")
    monkeypatch.chdir(tmp_path / "..")
    before = sorted(tmp_path.parent.iterdir())
    assert read_image([io.BytesIO(data)], limit=LIMIT) == []
    assert sorted(tmp_path.parent.iterdir()) == before


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"not a tar at all" * 100, "not a readable tar"),
        (b"\x1f\x8b\x08\x00garbage-gzip" * 10, "not a readable tar"),
        (b"\x28\xb5\x2f\xfd garbage-zstd" * 10, "not a readable tar"),
    ],
)
def test_a_corrupt_layer_is_refused_clearly(data: bytes, why: str) -> None:
    with pytest.raises(LayerUnreadable, match=why):
        read_image([io.BytesIO(data)], limit=LIMIT)


def test_an_image_past_the_limit_stops_being_read() -> None:
    big = layer({"blob": b"\x00" * 300_000, "lib/apk/db/installed": APK_INSTALLED})
    with pytest.raises(LayerUnreadable, match="larger than 100000 bytes"):
        read_image([io.BytesIO(big)], limit=100_000)


def test_symlinks_are_not_followed() -> None:
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("var/lib/dpkg/status")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/shadow"
        tar.addfile(info)
    assert read_image([io.BytesIO(buffer.getvalue())], limit=LIMIT) == []


@pytest.mark.parametrize(
    ("path", "content", "expected"),
    [
        (
            "usr/lib/python3.11/site-packages/Foo_Bar-2.0.dist-info/METADATA",
            (
                b"Metadata-Version: 2.4\nName: Foo_Bar\nVersion: 2.0\n"
                b"License-Expression: MIT\n\nlong description"
            ),
            ("PyPI", "Foo_Bar", "2.0", "MIT"),
        ),
        (
            "usr/lib/python3/dist-packages/old.egg-info/PKG-INFO",
            b"Metadata-Version: 1.1\nName: old\nVersion: 0.1\nLicense: BSD\n",
            ("PyPI", "old", "0.1", "BSD"),
        ),
        (
            "usr/lib/python3/dist-packages/single-1.0.egg-info",
            b"Metadata-Version: 1.0\nName: single\nVersion: 1.0\n",
            ("PyPI", "single", "1.0", None),
        ),
        (
            "srv/node_modules/a/node_modules/b/package.json",
            b'{"name":"b","version":"0.0.1","licenses":[{"type":"ISC"}]}',
            ("npm", "b", "0.0.1", "ISC"),
        ),
    ],
)
def test_detectors(
    path: str, content: bytes, expected: tuple[str, str, str, str | None]
) -> None:
    found = read_image([io.BytesIO(layer({path: content}))], limit=LIMIT)
    assert [(f.kind, f.name, f.version, f.license) for f in found] == [expected]


@pytest.mark.parametrize(
    "content",
    [
        b"[" * 100_000,  # nesting bomb
        b'{"name": 3, "version": "1"}',
        b'{"name": "../../evil", "version": "1"}',
        b"\xff\xfe not json",
    ],
)
def test_bad_package_json_finds_nothing(content: bytes) -> None:
    data = layer({"node_modules/x/package.json": content})
    assert read_image([io.BytesIO(data)], limit=LIMIT) == []


def test_files_inside_a_package_are_not_packages() -> None:
    data = layer(
        {"node_modules/x/lib/package.json": b'{"name":"inner","version":"1.0.0"}'}
    )
    assert read_image([io.BytesIO(data)], limit=LIMIT) == []


def test_go_build_info_with_modules_and_a_replacement() -> None:
    modinfo = (
        "path\texample.com/cmd/tool\n"
        "mod\texample.com\tv1.2.3\th1:abc=\n"
        "dep\tgolang.org/x/text\tv0.3.7\th1:def=\n"
        "dep\tgithub.com/old/dep\tv1.0.0\n"
        "=>\tgithub.com/new/dep\tv1.0.1\th1:ghi=\n"
        "build\t-compiler=gc"
    )
    binary = go_buildinfo("go1.22.4", modinfo)
    found = read_image([io.BytesIO(layer({"usr/local/bin/tool": binary}))], limit=LIMIT)
    assert _names(found) == {
        ("Go", "stdlib", "1.22.4"),
        ("Go", "example.com", "v1.2.3"),
        ("Go", "golang.org/x/text", "v0.3.7"),
        ("Go", "github.com/new/dep", "v1.0.1"),
    }
    rows = {r.name: r.purl for r in package_rows(found)}
    assert rows["golang.org/x/text"] == "pkg:golang/golang.org/x/text@v0.3.7"


@pytest.mark.parametrize("path", ["/usr/bin/skopeo", "/usr/bin/podman"])
def test_go_build_info_of_a_binary_on_this_machine(path: str) -> None:
    binary = Path(path)
    if not binary.exists():
        pytest.skip(f"{path} is not installed")
    with binary.open("rb") as handle:
        info = gobuild.read(handle, binary.stat().st_size)
    assert info is not None
    # Go writes its version into the binary's strings too: `strings` agrees.
    strings = subprocess.run(
        ["strings", "-n", "8", path], capture_output=True, check=True
    ).stdout
    assert info.go_version.encode() in strings
    assert info.go_version.startswith("go1.")
    assert info.path.startswith("github.com/containers/")


def test_a_file_that_is_not_elf_is_not_scanned() -> None:
    assert (
        gobuild.read(io.BytesIO(b"#!/bin/sh\n" + b"\xff Go buildinf:" * 400), 6000)
        is None
    )


def test_distribution_names_the_ecosystem_and_purl() -> None:
    os_release = b'ID=debian\nVERSION_ID="12"\n'
    data = layer({"etc/os-release": os_release, "var/lib/dpkg/status": DPKG_STATUS})
    rows = package_rows(read_image([io.BytesIO(data)], limit=LIMIT))
    assert {r.ecosystem for r in rows} == {"Debian"}
    base = next(r for r in rows if r.name == "base-files")
    assert (
        base.purl
        == "pkg:deb/debian/base-files@12.4%2Bdeb12u5?arch=amd64&distro=debian-12"
    )
    wolfi = layer(
        {"etc/os-release": b"ID=wolfi\n", "lib/apk/db/installed": APK_INSTALLED}
    )
    rows = package_rows(read_image([io.BytesIO(wolfi)], limit=LIMIT))
    assert {(r.ecosystem, r.purl.split("@")[0]) for r in rows} == {
        ("Wolfi", "pkg:apk/wolfi/musl"),
        ("Wolfi", "pkg:apk/wolfi/busybox-binsh"),
    }


def test_host_dpkg_status_lists_what_dpkg_query_lists() -> None:
    status = Path("/var/lib/dpkg/status")
    if not status.exists():
        pytest.skip("no dpkg on this machine")
    listed = subprocess.run(
        ["dpkg-query", "-W", "-f", "${db:Status-Status}\t${Package}\t${Version}\n"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    expected = {
        (name, version)
        for state, name, version in (line.split("\t") for line in listed.splitlines())
        if state == "installed"
    }
    data = layer({"var/lib/dpkg/status": status.read_bytes()}, compression="zstd")
    found = read_image([io.BytesIO(data)], limit=LIMIT)
    assert {(f.name, f.version) for f in found} == expected
    assert len(expected) > 50


def test_package_counts_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("cargohold.registry.sbom.layers.MAX_PACKAGES", 1)
    data = layer({"lib/apk/db/installed": APK_INSTALLED})
    with pytest.raises(LayerUnreadable, match="more than 1 packages"):
        read_image([io.BytesIO(data)], limit=LIMIT)


_VALID = layer(
    {
        "lib/apk/db/installed": APK_INSTALLED,
        "node_modules/x/package.json": b'{"name":"x","version":"1.0.0"}',
    },
    compression="none",
)


@given(st.binary(max_size=4096))
def test_any_bytes_are_read_or_refused_clearly(data: bytes) -> None:
    with contextlib.suppress(LayerUnreadable):
        read_image([io.BytesIO(data)], limit=LIMIT)


@given(
    st.sampled_from(["none", "gzip", "zstd"]),
    st.lists(
        st.tuples(st.integers(0, len(_VALID) - 1), st.integers(0, 255)), max_size=8
    ),
)
def test_damaged_layers_are_read_or_refused_clearly(
    compression: str, damage: list[tuple[int, int]]
) -> None:
    data = bytearray(_VALID)
    if compression == "gzip":
        data = bytearray(gzip.compress(bytes(data)))
    elif compression == "zstd":
        data = bytearray(zstandard.ZstdCompressor().compress(bytes(data)))
    for at, value in damage:
        data[at % len(data)] = value
    with contextlib.suppress(LayerUnreadable):
        read_image([io.BytesIO(bytes(data))], limit=LIMIT)
