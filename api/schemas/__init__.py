"""Request and response schemas (`XCreate`, `XUpdate`, `XRead`), one module per noun."""

from api.schemas.layers import LayerCreate, LayerRead, LayerUpdate
from api.schemas.profiles import ProfileRead, ProfileUpdate
from api.schemas.projects import ProjectCreate, ProjectRead, ProjectUpdate
from api.schemas.sources import SourceCreate, SourceRead, SourceUpdate

__all__ = [
    "LayerCreate",
    "LayerRead",
    "LayerUpdate",
    "ProfileRead",
    "ProfileUpdate",
    "ProjectCreate",
    "ProjectRead",
    "ProjectUpdate",
    "SourceCreate",
    "SourceRead",
    "SourceUpdate",
]
