"""Client-side credentials: ``cargohold login``/``logout``, a Docker credential helper.

Owns the files real clients read (the containers ``auth.json`` of podman, skopeo and
buildah; docker's ``config.json``) and the helper's own store. Must not import the
server side (``api``, ``registry``, ``metadata``): these run on a user's machine.

- ``authfile``: locating, reading, merging and atomically writing the auth files.
- ``helper``: the ``docker-credential-cargohold`` protocol, and calling other helpers.
- ``login``: verifying credentials against a registry's token auth; the click commands.
"""
