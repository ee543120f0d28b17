"""``AccessService.pullable_policies`` (the catalog's bulk filter) answers exactly what
``policy.decide`` answers for PULL, repository by repository."""

from __future__ import annotations

from typing import cast

from hypothesis import given
from hypothesis import strategies as st

from cargohold.auth import policy
from cargohold.auth.policy import Grant, Principal, RepositoryPolicy
from cargohold.metadata.accounts import AccountStore
from cargohold.registry.access import AccessService
from cargohold.settings import AuthSettings

NAMES = ["acme/app", "acme/app-dev", "acme/deep/x", "beta/x", "solo", "acme[1]/y"]
GLOBS = ["acme/*", "acme/app", "*", "beta/?", "acme/app-*", "*/x", "acme[1]/*", "zz"]
ROLES = [*policy.ROLES, "nobody"]

# The bulk filter reads nothing from the store.
ACCESS = AccessService(cast("AccountStore", None), AuthSettings())

grants = st.lists(
    st.builds(
        Grant,
        st.sampled_from(GLOBS),
        st.sampled_from(ROLES),
        st.one_of(st.none(), st.just(("v*",))),
    ),
    max_size=4,
)
policies = st.lists(
    st.builds(
        RepositoryPolicy,
        st.sampled_from(NAMES),
        st.booleans(),
        st.sampled_from([(), ("latest",)]),
    ),
    max_size=8,
)


@given(grants=grants, repositories=policies, admin=st.booleans(), anon=st.booleans())
def test_bulk_filter_matches_decide(
    grants: list[Grant],
    repositories: list[RepositoryPolicy],
    admin: bool,
    anon: bool,
) -> None:
    principal = (
        policy.ANONYMOUS if anon else Principal("user", "user:u", is_admin=admin)
    )
    held = [] if anon else grants
    wanted = frozenset({policy.PULL})
    expected = [
        p for p in repositories if not policy.decide(principal, held, p, wanted).empty
    ]
    assert ACCESS.pullable_policies(principal, held, repositories) == expected
