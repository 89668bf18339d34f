"""`/user-profile/`: the signed-in user's own profile."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CurrentUser, SessionDep
from api.schemas.profiles import ProfileRead, ProfileUpdate
from api.services.profiles import get_profile, update_profile

router = APIRouter(prefix="/user-profile", tags=["user-profile"])


@router.get("/")
async def read_profile(user: CurrentUser, session: SessionDep) -> ProfileRead:
    """The signed-in user's profile."""
    return await get_profile(session=session, user=user)


@router.put("/")
async def replace_profile(
    body: ProfileUpdate, user: CurrentUser, session: SessionDep
) -> ProfileRead:
    """Change the profile (no field is required, as in Django)."""
    return await update_profile(
        session=session, user=user, changes=body.model_dump(exclude_unset=True)
    )


@router.patch("/")
async def patch_profile(body: ProfileUpdate, user: CurrentUser, session: SessionDep) -> ProfileRead:
    """Change the fields given."""
    return await update_profile(
        session=session, user=user, changes=body.model_dump(exclude_unset=True)
    )
