"""OpenAPI paths of who pulled what and telling them: pull events, advisories and tag
history, the inbox and the outbox, webhooks (issue #7's operations)."""

from __future__ import annotations

from cargohold.api.management.openapi_ops import (
    ORG,
    PAGE,
    READ_ERRORS,
    W409,
    W,
    op,
    path_param,
)
from cargohold.api.management.schemas import JSON, list_of, ref


def webhook_paths(prefix: str, suffix: str, who: str) -> dict[str, JSON]:
    """The operations on one scope's webhooks (``suffix`` of the operation ids)."""
    params: tuple[JSON, ...] = (ORG,) if prefix.startswith("/orgs") else ()
    one = (*params, path_param("webhook_id", "webhook id"))
    item = prefix + "/{webhook_id}"

    def action(verb: str, summary: str, result: JSON) -> JSON:
        return {
            "post": op(
                f"{verb}_{suffix}",
                f"{summary} ({who})",
                success="200",
                result=result,
                params=one,
            )
        }

    return {
        prefix: {
            "get": op(
                f"list_{suffix}",
                f"webhooks, without secrets ({who})",
                success="200",
                result=list_of("Webhook"),
                params=params,
            ),
            "post": op(
                f"create_{suffix}",
                f"create a webhook; the answer is the only time its secret is shown "
                f"({who})",
                success="201",
                result=ref("WebhookWithSecret"),
                body="NewWebhook",
                params=params,
                errors=W,
            ),
        },
        item: {
            "get": op(
                f"get_{suffix}",
                f"one webhook ({who})",
                success="200",
                result=ref("Webhook"),
                params=one,
            ),
            "delete": op(
                f"delete_{suffix}",
                f"delete a webhook and its delivery log ({who})",
                success="204",
                params=one,
            ),
        },
        item + "/disable": action("disable", "stop delivering", ref("Webhook")),
        item + "/enable": action("enable", "deliver again", ref("Webhook")),
        item + "/rotate": action(
            "rotate",
            "a new secret, shown once; the previous one signs alongside it for "
            "webhooks.rotation_overlap_hours",
            ref("WebhookWithSecret"),
        ),
        item + "/test": action(
            "test",
            "deliver a ping event now and report how it went",
            ref("WebhookTest"),
        ),
        item + "/deliveries": {
            "get": op(
                f"deliveries_{suffix}",
                f"delivery attempts, newest first ({who})",
                success="200",
                result=list_of("WebhookDelivery"),
                params=(
                    *one,
                    {
                        "name": "before",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 0},
                        "description": "only attempts with a smaller id (next page)",
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": 1000,
                            "default": 100,
                        },
                    },
                ),
            )
        },
    }


_ADVISORY = path_param("advisory", "advisory id")


def advisory_paths() -> dict[str, JSON]:
    return {
        "/advisories": {
            "get": op(
                "list_advisories",
                "advisories (admins: all; others: those covering a repository "
                "they may pull)",
                success="200",
                result=ref("Advisories"),
            ),
            "post": op(
                "publish_advisory",
                "publish an advisory (revision 1) and tell who pulled what it "
                "covers (admin)",
                success="201",
                result=ref("Advisory"),
                body="AdvisoryDocument",
                errors=W409,
            ),
        },
        "/advisories/{advisory}": {
            "get": op(
                "get_advisory",
                "an advisory with the digests it covers now",
                success="200",
                result=ref("Advisory"),
                params=(_ADVISORY,),
            ),
            "patch": op(
                "update_advisory",
                "publish the next revision with these fields changed (admin)",
                success="200",
                result=ref("Advisory"),
                body="AdvisoryUpdate",
                params=(_ADVISORY,),
                errors=W409,
            ),
        },
        "/advisories/{advisory}/revisions": {
            "get": op(
                "list_revisions",
                "every revision, oldest first, with who published it",
                success="200",
                result=ref("AdvisoryRevisions"),
                params=(_ADVISORY,),
            )
        },
        "/advisories/{advisory}/affected": {
            "get": op(
                "list_affected",
                "identities that pulled a covered digest within "
                "advisories.affected_window_days (admin)",
                success="200",
                result=ref("AffectedIdentities"),
                params=(_ADVISORY,),
            )
        },
        "/repositories/{name}/tags/{tag}/history": {
            "get": op(
                "tag_history",
                "every move of a tag, newest first (who may pull the repository)",
                success="200",
                result=ref("TagHistory"),
                params=(
                    path_param("name", "repository name, slashes included"),
                    path_param("tag", "tag"),
                ),
            )
        },
        "/repositories/{name}/manifests/{reference}/sbom": {
            "get": {
                # Credentials optional: without them, what anonymous may pull.
                "security": [{}, {"basic": []}, {"bearer": []}],
                **op(
                    "get_sbom",
                    "the packages found in an image manifest, as an SPDX 2.3 or "
                    "CycloneDX 1.6 JSON document (who may pull the manifest; "
                    "anonymous callers too); 404 until it has been described, 409 "
                    "if it could not be read or is no image",
                    success="200",
                    result={"type": "object"},
                    params=(
                        path_param("name", "repository name, slashes included"),
                        path_param("reference", "manifest digest (or tag)"),
                        {
                            "name": "format",
                            "in": "query",
                            "schema": {
                                "type": "string",
                                "enum": ["spdx", "cyclonedx"],
                                "default": "spdx",
                            },
                            "description": "the document's format",
                        },
                    ),
                    errors=(*READ_ERRORS, "409"),
                ),
            }
        },
    }


def _query(name: str, description: str, schema: JSON | None = None) -> JSON:
    return {
        "name": name,
        "in": "query",
        "schema": schema or {"type": "string"},
        "description": description,
    }


_PULL_PARAMS = (
    _query("repository", "only this repository"),
    _query("digest", "only pulls served this manifest digest"),
    _query("tag", "only pulls that asked for this tag"),
    _query("identity", "only this identity, e.g. user:alice or token:<id>"),
    _query("since", "from this time on (ISO 8601 with a zone)", {
        "type": "string", "format": "date-time"}),
    _query("until", "before this time (ISO 8601 with a zone)", {
        "type": "string", "format": "date-time"}),
    _query("limit", "pulls per page", {
        "type": "integer", "minimum": 1, "maximum": 1000, "default": 100}),
    _query("next", "the cursor from the previous page's next"),
)  # fmt: skip


def delivery_paths() -> dict[str, JSON]:
    return {
        "/notices": {
            "get": op(
                "list_notices",
                "the caller's advisory notices, newest first",
                success="200",
                result=ref("Notices"),
                params=(
                    {
                        "name": "unread",
                        "in": "query",
                        "schema": {"type": "boolean", "default": False},
                        "description": "only notices not yet read",
                    },
                ),
            )
        },
        "/notices/read": {
            "post": op(
                "read_all_notices",
                "mark every notice of the caller read",
                success="200",
                result=ref("ReadCount"),
            )
        },
        "/notices/{notice_id}/read": {
            "post": op(
                "read_notice",
                "mark one of the caller's notices read (another's is 404)",
                success="200",
                result=ref("ReadCount"),
                params=(path_param("notice_id", "notice id"),),
            )
        },
        "/outbox": {
            "get": op(
                "list_outbox",
                "outbox messages by id, e.g. the dead letters (admin)",
                success="200",
                result=ref("OutboxMessages"),
                params=(
                    {
                        "name": "state",
                        "in": "query",
                        "schema": {"enum": ["pending", "dead", "done"]},
                        "description": "only messages in this state",
                    },
                    *PAGE,
                ),
            )
        },
        "/outbox/{message_id}/retry": {
            "post": op(
                "retry_outbox",
                "deliver a dead message again, now, with fresh attempts (admin)",
                success="200",
                result=ref("Retried"),
                params=(path_param("message_id", "outbox message id"),),
            )
        },
    }


def pull_paths() -> dict[str, JSON]:
    return {
        "/pulls": {
            "get": op(
                "list_pulls",
                "recorded manifest pulls, newest first (admin: all; an organization "
                "owner: its repositories')",
                success="200",
                result=ref("PullPage"),
                params=_PULL_PARAMS,
            )
        },
        "/me": {
            "get": op(
                "whoami",
                "the caller: identity, kind, email (users), organizations",
                success="200",
                result=ref("Profile"),
            )
        },
        "/me/pulls": {
            "get": op(
                "my_pulls",
                "the caller's own recorded pulls, newest first",
                success="200",
                result=ref("PullPage"),
                params=_PULL_PARAMS,
            )
        },
    }
