"""Domain services: the spec's rules over the storage and metadata protocols.

No HTTP here.
"""
