"""The HTTP layer: Starlette routes that turn requests into service calls and back."""
