"""Property tests through the whole app (in-process): arbitrary paths, headers, query
parameters and bodies never get a 5xx.

Each test shares one app across its examples (state piles up on purpose: no sequence of
requests may break the registry). The ``make_client`` watch would also fail the test at
teardown; asserting per request lets hypothesis shrink to the smallest failing request.
"""

from __future__ import annotations

import base64
import string
from urllib.parse import quote

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.apptypes import MakeClient
from tests.integration.helpers import (
    OCI_INDEX,
    OCI_MANIFEST,
    digest_of,
    push_blob,
    push_image,
)

REPO = "prop/app"
LAYER = b"property-layer" * 100

# Header values a client can send: visible ASCII and spaces (httpx refuses the rest).
header_text = st.text(alphabet=string.printable.strip() + " ", max_size=60)
segment = st.one_of(
    st.sampled_from(
        [REPO, "prop", "a/b/c", "_catalog", "..", "%2e%2e", "UPPER", "x" * 300]
    ),
    st.text(max_size=30).map(lambda t: quote(t, safe="/")),
)
reference = st.one_of(
    st.sampled_from(["latest", "v1", digest_of(LAYER), "sha256:" + "0" * 64, ""]),
    st.text(max_size=80).map(lambda t: quote(t, safe=":")),
)
paths = st.one_of(
    st.builds(
        "/v2/{}/{}/{}".format,
        segment,
        st.sampled_from(["manifests", "blobs", "referrers", "blobs/uploads", "tags"]),
        reference,
    ),
    st.builds("/v2/{}/tags/list".format, segment),
    st.builds("/v2/{}/blobs/uploads/".format, segment),
    st.just("/v2/_catalog"),
    st.text(max_size=60).map(lambda t: "/" + quote(t, safe="/?&=")),
)
headers = st.dictionaries(
    st.sampled_from(
        [
            "Content-Type",
            "Content-Range",
            "Range",
            "Accept",
            "Authorization",
            "If-None-Match",
            "Docker-Content-Digest",
            "OCI-Subject",
        ]
    ),
    st.one_of(
        header_text,
        st.sampled_from(
            [OCI_MANIFEST, OCI_INDEX, "bytes=0-1", "0-0", "bytes=-1", "Bearer x"]
        ),
    ),
    max_size=4,
)
params = st.dictionaries(
    st.sampled_from(["digest", "n", "last", "mount", "from", "artifactType"]),
    st.one_of(
        st.text(max_size=40), st.sampled_from([digest_of(LAYER), "1", "-1", REPO])
    ),
    max_size=3,
)
bodies = st.one_of(
    st.binary(max_size=200),
    st.just(LAYER),
    st.sampled_from(
        [f'{{"mediaType":"x","digest":"{digest_of(LAYER)}","size":1400}}', "1"]
    ).map(
        lambda config: (
            f'{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{config},'
            '"layers":[]}'
        ).encode()
    ),
)
methods = st.sampled_from(["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS"])


@pytest.fixture
async def populated(make_client: MakeClient) -> httpx.AsyncClient:
    """Auth off, one image and one loose layer pushed: every route has something."""
    client = await make_client()
    await push_image(client, REPO, "latest")
    await push_blob(client, REPO, LAYER)
    return client


@given(method=methods, path=paths, headers=headers, params=params, body=bodies)
async def test_no_request_gets_a_5xx(
    populated: httpx.AsyncClient,
    method: str,
    path: str,
    headers: dict[str, str],
    params: dict[str, str],
    body: bytes,
) -> None:
    response = await populated.request(
        method, path, headers=headers, params=params, content=body
    )
    assert response.status_code < 500, (method, path, headers, params, response.text)


credentials = st.one_of(
    header_text.map(lambda t: f"Bearer {t}"),
    st.tuples(st.text(max_size=20), st.text(max_size=20)).map(
        lambda pair: (
            "Basic " + base64.b64encode(f"{pair[0]}:{pair[1]}".encode()).decode()
        )
    ),
    header_text.map(lambda t: f"Basic {t}"),
    header_text,
)


# Each Basic login verifies a password hash (slow on purpose): fewer examples.
@settings(max_examples=15)
@given(
    authorization=credentials,
    path=st.sampled_from(["/v2/", f"/v2/{REPO}/tags/list", "/token", "/token?scope=x"]),
)
async def test_no_credential_gets_a_5xx(
    make_client: MakeClient, authorization: str, path: str
) -> None:
    client = await make_client(auth={"mode": "token"})
    response = await client.get(path, headers={"Authorization": authorization})
    assert response.status_code < 500, (authorization, path, response.text)


@pytest.mark.parametrize("value", ["items=0-1", "bytes=abc", "bytes=5-1", "bytes=-5-"])
async def test_an_unusable_range_is_ignored(
    populated: httpx.AsyncClient, value: str
) -> None:
    # RFC 9110 14.2: an unknown unit or invalid range set is ignored: 200, whole blob.
    response = await populated.get(
        f"/v2/{REPO}/blobs/{digest_of(LAYER)}", headers={"Range": value}
    )
    assert response.status_code == 200, response.text
    assert response.content == LAYER


content_ranges = st.one_of(
    header_text,
    st.tuples(st.integers(0, 300), st.integers(-5, 300)).map(
        lambda pair: f"{pair[0]}-{pair[0] + pair[1]}"
    ),
)


@given(
    chunks=st.lists(
        st.tuples(st.none() | content_ranges, st.binary(max_size=100)),
        min_size=1,
        max_size=4,
    )
)
async def test_chunked_uploads_never_get_a_5xx_and_their_range_holds(
    populated: httpx.AsyncClient, chunks: list[tuple[str | None, bytes]]
) -> None:
    started = await populated.post(f"/v2/{REPO}/blobs/uploads/")
    assert started.status_code == 202
    location = started.headers["Location"]
    size = 0
    for content_range, body in chunks:
        headers = {"Content-Type": "application/octet-stream"}
        if content_range is not None:
            headers["Content-Range"] = content_range
        response = await populated.patch(location, headers=headers, content=body)
        assert response.status_code < 500, (content_range, body, response.text)
        if response.status_code == 202:
            size += len(body)
            assert response.headers["Range"] == f"0-{max(size - 1, 0)}"
    status = await populated.get(location)
    assert status.status_code == 204
    assert status.headers["Range"] == f"0-{max(size - 1, 0)}"  # "0-0" when empty
