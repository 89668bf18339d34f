"""The app config: label `core`, so the tables are `core_*` as in the live database."""

from django.apps import AppConfig


class CoreConfig(AppConfig):
    """`tests.legacy.core` under its Django-era label."""

    name = "tests.legacy.core"
    label = "core"
    default_auto_field = "django.db.models.AutoField"
