"""The Django-era models: the tables of CONTRACT.md, as Django's own migrations make them."""

import secrets

from django.conf import settings
from django.contrib.gis.db import models

SOURCE_TYPES = (
    ("shapefile", "Shapefile"),
    ("csv", "CSV"),
    ("geojson", "GeoJSON"),
    ("raster", "Raster"),
    ("analysis", "Analysis"),
)
LAYER_TYPES = (("vector", "Vector"), ("raster", "Raster"))


def new_sid() -> str:
    """A fresh public id, as the old backend made them."""
    return f"src_{secrets.token_hex(8)}"


class Source(models.Model):
    """An imported dataset."""

    sid = models.CharField(max_length=255, unique=True, db_index=True, default=new_sid)
    name = models.CharField(max_length=255, db_index=True)
    description = models.TextField(null=True, blank=True)
    source_type = models.CharField(max_length=50, choices=SOURCE_TYPES, db_index=True)
    attributes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name


class Geometry(models.Model):
    """One feature of a source."""

    gid = models.AutoField(primary_key=True)
    geom = models.GeometryField(srid=4326)
    metadata = models.JSONField(default=dict, blank=True)
    geometry_type = models.CharField(max_length=50, db_index=True)
    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="geometries")

    def __str__(self) -> str:
        return f"{self.geometry_type} {self.gid}"


class Layer(models.Model):
    """A styled view of a source."""

    name = models.CharField(max_length=255)
    description = models.TextField(null=True, blank=True)
    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="layers")
    layer_type = models.CharField(max_length=50, choices=LAYER_TYPES, default="vector")
    style = models.JSONField(default=dict, blank=True)
    is_visible = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name


class Project(models.Model):
    """An owner's map of ordered layers."""

    name = models.CharField(max_length=255)
    description = models.TextField(null=True, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="projects"
    )
    is_public = models.BooleanField(default=False)
    center = models.PointField(srid=4326, null=True, blank=True)
    zoom = models.FloatField(null=True, blank=True)
    layers = models.ManyToManyField(
        Layer, through="ProjectLayer", related_name="projects", blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name


class ProjectLayer(models.Model):
    """A layer's place in a project."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="project_layers")
    layer = models.ForeignKey(Layer, on_delete=models.CASCADE, related_name="project_layers")
    position = models.IntegerField(default=0)

    class Meta:
        db_table = "core_project_layers"
        unique_together = (("project", "layer"),)
        ordering = ("position",)


class UserProfile(models.Model):
    """A user's organization and preferences."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile"
    )
    organization = models.CharField(max_length=255, default="", blank=True)
    preferences = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"profile of {self.user_id}"
