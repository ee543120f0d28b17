"""Content-addressed blob storage behind the ``BlobStore`` protocol."""
