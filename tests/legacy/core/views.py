"""The old API's views: DRF viewsets, the WFS list and the user profile."""

from django.db.models import Q
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics, viewsets
from rest_framework.permissions import IsAuthenticated
from rest_framework_gis.filters import InBBoxFilter

from tests.legacy.core.models import Geometry, Layer, Project, Source, UserProfile
from tests.legacy.core.pagination import FeaturePagination
from tests.legacy.core.permissions import IsOwnerOrReadOnly
from tests.legacy.core.serializers import (
    FeatureSerializer,
    LayerSerializer,
    ProjectSerializer,
    SourceSerializer,
    UserProfileSerializer,
)


class SourceViewSet(viewsets.ModelViewSet):
    """Sources, shared by every signed-in user."""

    queryset = Source.objects.all()
    serializer_class = SourceSerializer
    search_fields = ("name", "description")
    ordering_fields = ("id", "sid", "name", "source_type", "created_at", "updated_at")
    ordering = ("id",)


class LayerViewSet(viewsets.ModelViewSet):
    """Layers, shared by every signed-in user."""

    queryset = Layer.objects.all()
    serializer_class = LayerSerializer
    search_fields = ("name", "description")
    ordering_fields = (
        "id",
        "name",
        "source",
        "layer_type",
        "is_visible",
        "created_at",
        "updated_at",
    )
    ordering = ("id",)


class ProjectViewSet(viewsets.ModelViewSet):
    """The user's projects and the public ones; only the owner (or a superuser) changes one."""

    queryset = Project.objects.all()
    serializer_class = ProjectSerializer
    permission_classes = (IsAuthenticated, IsOwnerOrReadOnly)
    search_fields = ("name", "description")
    ordering_fields = ("id", "name", "is_public", "zoom", "created_at", "updated_at")
    ordering = ("id",)

    def get_queryset(self):
        """What the user may see: everything for a superuser, else own and public projects."""
        projects = self.queryset.prefetch_related("project_layers")
        user = self.request.user
        if user.is_superuser:
            return projects.all()
        return projects.filter(Q(owner=user) | Q(is_public=True))

    def perform_create(self, serializer: ProjectSerializer) -> None:
        """The signed-in user owns what they create."""
        serializer.save(owner=self.request.user)


class BBoxFilter(InBBoxFilter):
    """djangorestframework-gis's `in_bbox`, also read from `bbox`."""

    def get_filter_bbox(self, request):
        """The box of `in_bbox`, else of `bbox`."""
        if self.bbox_param not in request.query_params and "bbox" in request.query_params:
            self.bbox_param = "bbox"
        return super().get_filter_bbox(request)


@extend_schema_view(
    get=extend_schema(
        parameters=[
            OpenApiParameter("source", str, description="source id or sid"),
            OpenApiParameter("geometry_type", str, description="Point, MultiPolygon, ..."),
            OpenApiParameter("bbox", str, description="the same as in_bbox"),
        ]
    )
)
class FeatureList(generics.ListAPIView):
    """core_geometry as a paginated GeoJSON FeatureCollection."""

    serializer_class = FeatureSerializer
    pagination_class = FeaturePagination
    filter_backends = (BBoxFilter,)
    bbox_filter_field = "geom"
    bbox_filter_include_overlapping = True

    def get_queryset(self):
        """Features of a source (id or sid) and of a geometry type, by gid."""
        features = Geometry.objects.order_by("gid")
        source = self.request.query_params.get("source")
        if source:
            match = Q(source__sid=source)
            if source.isdigit():
                match |= Q(source_id=int(source))
            features = features.filter(match)
        geometry_type = self.request.query_params.get("geometry_type")
        if geometry_type:
            features = features.filter(geometry_type=geometry_type)
        return features


class UserProfileView(generics.RetrieveUpdateAPIView):
    """The signed-in user's own profile."""

    serializer_class = UserProfileSerializer

    def get_object(self) -> UserProfile:
        """The user's profile, made on first use."""
        profile, _ = UserProfile.objects.select_related("user").get_or_create(
            user=self.request.user
        )
        return profile
