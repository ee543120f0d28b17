"""Server-rendered pages (Jinja2 templates, one stylesheet and one small script,
package data).

Must not: load anything from another origin (no CDN, no inline styles or scripts),
need JavaScript to work,
or show anything private to a caller who may not see it.
"""
