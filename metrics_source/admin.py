"""The admin's registrations, one module per domain.

Django imports this module (admin autodiscovery looks for the app's ``admin``), so it only
imports the domains' admin modules, which register their models. Each of those builds on
metrics_source/runtime/admin_base.py and never on another domain's admin, so no admin module
imports this one."""

from metrics_source.access import admin as access_admin
from metrics_source.forwarding import admin as forwarding_admin
from metrics_source.ingest import admin as ingest_admin
from metrics_source.naming import admin as naming_admin

__all__ = ["access_admin", "forwarding_admin", "ingest_admin", "naming_admin"]
