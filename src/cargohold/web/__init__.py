"""Server-rendered pages (Jinja2 templates and one stylesheet, package data).

Must not: load anything from another origin (no CDN, no inline styles or scripts),
or show anything private to a caller who may not see it.
"""
