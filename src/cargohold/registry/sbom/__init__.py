"""What is inside an image: its layers read (``layers``), packages found
(``detectors``, ``gobuild``), its facts (``facts``), the ``describe`` job and the SBOM
reads (``service``), and the SPDX and CycloneDX documents (``documents``).

Reading an image never writes anything from it anywhere: tar members are parsed in
memory within size caps, never extracted, so a hostile tar, a huge file or a path
escaping the root can cost time (bounded by ``sbom.max_image_bytes``), never harm.
"""
