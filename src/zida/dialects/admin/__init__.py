"""Zida's own management API (``/admin/v1/…``, ``/healthz``): ``zida.dialects.admin.routes``."""
