"""The list and GeoJSON pagination of the old API."""

from rest_framework.pagination import PageNumberPagination
from rest_framework_gis.pagination import GeoJsonPagination


class StandardPagination(PageNumberPagination):
    """50 a page, `?page_size=` up to 1000."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 1000


class FeaturePagination(GeoJsonPagination):
    """1000 features a page, `?page_size=` up to 10000."""

    page_size = 1000
    page_size_query_param = "page_size"
    max_page_size = 10000
