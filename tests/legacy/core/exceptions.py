"""DRF's exception handler as the Django-era DRF ran it: a missing object is "Not found."."""

from django.http import Http404
from rest_framework import exceptions
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc, context):
    """DRF before 3.15 dropped Http404's message ("No Source matches the given query.")."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    return drf_exception_handler(exc, context)
