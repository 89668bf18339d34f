"""The Django-era `core` app: the models, serializers and views the frontend knew."""
