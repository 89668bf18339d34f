"""Data access for the routes: keyword-only functions, one module per noun."""

from api.services import layers, listing, profiles, projects, sources, wfs

__all__ = ["layers", "listing", "profiles", "projects", "sources", "wfs"]
