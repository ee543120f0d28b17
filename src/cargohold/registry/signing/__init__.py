"""The registry's signatures on what it serves (issue #8).

* ``keys.py``: the signing keys (an ECDSA P-256 key for the cosign formats and DSSE
  attestations, an OpenPGP key for simple signing) behind ``KeyStore``.
* ``formats.py``: ``SignatureFormat``, one per way clients read signatures; the
  ``sign`` outbox job (``metadata/outbox.py``) runs every format for one manifest.
"""
