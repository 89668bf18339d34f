"""`/layers/`: styled views of sources, shared by every signed-in user."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from api.deps import CurrentUser, ObjectId, SessionDep
from api.pagination import Page, PageQueryDep
from api.schemas.layers import LayerCreate, LayerRead, LayerUpdate
from api.services import layers

router = APIRouter(prefix="/layers", tags=["layers"])


@router.get("/")
async def list_layers(
    user: CurrentUser,
    session: SessionDep,
    pages: PageQueryDep,
    search: str | None = None,
    ordering: str | None = None,
) -> Page[LayerRead]:
    """Layers, searched over name and description, ordered, one page at a time."""
    return await layers.list_layers(session=session, pages=pages, term=search, ordering=ordering)


@router.post("/", status_code=status.HTTP_201_CREATED)
async def create_layer(body: LayerCreate, user: CurrentUser, session: SessionDep) -> LayerRead:
    """Create a layer."""
    fields = body.model_dump(exclude_unset=True)
    return await layers.create_layer(session=session, fields=fields)


@router.get("/{layer_id}/")
async def read_layer(layer_id: ObjectId, user: CurrentUser, session: SessionDep) -> LayerRead:
    """One layer."""
    return await layers.get_layer(session=session, layer_id=layer_id)


@router.put("/{layer_id}/")
async def replace_layer(
    layer_id: ObjectId,
    body: LayerCreate,
    user: CurrentUser,
    session: SessionDep,
) -> LayerRead:
    """Replace a layer (the required fields must all be given)."""
    changes = body.model_dump(exclude_unset=True)
    return await layers.update_layer(session=session, layer_id=layer_id, changes=changes)


@router.patch("/{layer_id}/")
async def patch_layer(
    layer_id: ObjectId,
    body: LayerUpdate,
    user: CurrentUser,
    session: SessionDep,
) -> LayerRead:
    """Change the fields given."""
    changes = body.model_dump(exclude_unset=True)
    return await layers.update_layer(session=session, layer_id=layer_id, changes=changes)


@router.delete("/{layer_id}/", status_code=status.HTTP_204_NO_CONTENT)
async def delete_layer(layer_id: ObjectId, user: CurrentUser, session: SessionDep) -> Response:
    """Delete a layer."""
    await layers.delete_layer(session=session, layer_id=layer_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
