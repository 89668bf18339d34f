"""The resources as the old API read and wrote them."""

from django.conf import settings
from django.contrib.gis.db.models import Extent
from django.db import transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework_gis.serializers import GeoFeatureModelSerializer

from tests.legacy.core.models import Geometry, Layer, Project, ProjectLayer, Source, UserProfile


class SourceSerializer(serializers.ModelSerializer):
    """A source with its feature count and extent, computed per source."""

    feature_count = serializers.SerializerMethodField()
    bbox = serializers.SerializerMethodField()

    class Meta:
        model = Source
        fields = (
            "id",
            "sid",
            "name",
            "description",
            "source_type",
            "attributes",
            "feature_count",
            "bbox",
            "created_at",
            "updated_at",
        )
        extra_kwargs = {"sid": {"required": False}}  # noqa: RUF012 (DRF reads it)

    @extend_schema_field(OpenApiTypes.INT)
    def get_feature_count(self, obj: Source) -> int:
        """How many features the source has."""
        return obj.geometries.count()

    @extend_schema_field(
        {"type": "array", "items": {"type": "number"}, "nullable": True, "minItems": 4}
    )
    def get_bbox(self, obj: Source) -> list[float] | None:
        """[minx, miny, maxx, maxy] of the source's features, or null."""
        extent = obj.geometries.aggregate(extent=Extent("geom"))["extent"]
        return list(extent) if extent else None


class LayerSerializer(serializers.ModelSerializer):
    """A layer with the URL template of its tiles."""

    tile_url = serializers.SerializerMethodField()

    class Meta:
        model = Layer
        fields = (
            "id",
            "name",
            "description",
            "source",
            "layer_type",
            "style",
            "is_visible",
            "tile_url",
            "created_at",
            "updated_at",
        )

    @extend_schema_field(OpenApiTypes.STR)
    def get_tile_url(self, obj: Layer) -> str:
        """Where Martin serves the source's vector tiles."""
        base = settings.MARTIN_URL.rstrip("/")
        return f"{base}/core_geometry_by_source/{{z}}/{{x}}/{{y}}?source_id={obj.source_id}"


class ProjectSerializer(serializers.ModelSerializer):
    """A project: owner, map view, and its layers in order."""

    owner = serializers.PrimaryKeyRelatedField(read_only=True)
    layers = serializers.PrimaryKeyRelatedField(
        many=True, queryset=Layer.objects.all(), required=False
    )

    class Meta:
        model = Project
        fields = (
            "id",
            "name",
            "description",
            "owner",
            "is_public",
            "center",
            "zoom",
            "layers",
            "created_at",
            "updated_at",
        )

    def to_representation(self, instance: Project) -> dict[str, object]:
        """The layers as ids in their project order."""
        data = super().to_representation(instance)
        data["layers"] = [link.layer_id for link in instance.project_layers.all()]
        return data

    def validate_layers(self, layers: list[Layer]) -> list[Layer]:
        """A layer appears once in a project."""
        seen: set[int] = set()
        for layer in layers:
            if layer.pk in seen:
                raise serializers.ValidationError(f'Duplicate layer "{layer.pk}".')
            seen.add(layer.pk)
        return layers

    def _set_layers(self, project: Project, layers: list[Layer]) -> None:
        project.project_layers.all().delete()
        ProjectLayer.objects.bulk_create(
            ProjectLayer(project=project, layer=layer, position=i) for i, layer in enumerate(layers)
        )

    @transaction.atomic
    def create(self, validated_data: dict[str, object]) -> Project:
        """Insert the project, then its ordered layers."""
        layers = validated_data.pop("layers", [])
        project = Project.objects.create(**validated_data)
        self._set_layers(project, layers)
        return project

    @transaction.atomic
    def update(self, instance: Project, validated_data: dict[str, object]) -> Project:
        """Change the fields given; a given `layers` replaces the order."""
        layers = validated_data.pop("layers", None)
        project = super().update(instance, validated_data)
        if layers is not None:
            self._set_layers(project, layers)
        return project


class UserProfileSerializer(serializers.ModelSerializer):
    """A profile with its user's names and email."""

    username = serializers.CharField(source="user.username", read_only=True)
    email = serializers.EmailField(source="user.email", required=False, allow_blank=True)
    first_name = serializers.CharField(
        source="user.first_name", required=False, allow_blank=True, max_length=150
    )
    last_name = serializers.CharField(
        source="user.last_name", required=False, allow_blank=True, max_length=150
    )

    class Meta:
        model = UserProfile
        fields = (
            "id",
            "username",
            "email",
            "first_name",
            "last_name",
            "organization",
            "preferences",
        )

    @transaction.atomic
    def update(self, instance: UserProfile, validated_data: dict[str, object]) -> UserProfile:
        """The user's fields on auth_user, the rest on the profile."""
        user_fields = validated_data.pop("user", {})
        for field, value in user_fields.items():
            setattr(instance.user, field, value)
        instance.user.save()
        return super().update(instance, validated_data)


class FeatureSerializer(GeoFeatureModelSerializer):
    """A feature: its metadata as properties, with its type and source."""

    class Meta:
        model = Geometry
        geo_field = "geom"
        id_field = "gid"
        fields = ("gid", "geom", "metadata", "geometry_type", "source")

    def to_representation(self, instance: Geometry) -> dict[str, object]:
        """The metadata's keys at the top of `properties`."""
        feature = super().to_representation(instance)
        properties = feature["properties"]
        metadata = properties.pop("metadata", None)
        feature["properties"] = {**(metadata if isinstance(metadata, dict) else {}), **properties}
        return feature
