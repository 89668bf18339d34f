"""Who may change a project: its owner, or a superuser."""

from rest_framework.permissions import SAFE_METHODS, BasePermission


class IsOwnerOrReadOnly(BasePermission):
    """Anyone who sees a project may read it; only its owner or a superuser changes it."""

    def has_object_permission(self, request, view, obj) -> bool:
        if request.method in SAFE_METHODS:
            return True
        return bool(request.user.is_superuser or obj.owner_id == request.user.id)
