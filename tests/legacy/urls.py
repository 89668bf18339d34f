"""The old URLs: the REST API under /api/v1/, dj-rest-auth under /rest-auth/, the schema."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import SimpleRouter

from tests.legacy.core import views

router = SimpleRouter()
router.register("sources", views.SourceViewSet, basename="source")
router.register("layers", views.LayerViewSet, basename="layer")
router.register("projects", views.ProjectViewSet, basename="project")

urlpatterns = [
    path("api/v1/", include(router.urls)),
    path("api/v1/wfs/", views.FeatureList.as_view(), name="wfs"),
    path("api/v1/user-profile/", views.UserProfileView.as_view(), name="user-profile"),
    path("rest-auth/", include("dj_rest_auth.urls")),
    path("rest-auth/registration/", include("dj_rest_auth.registration.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
]
