"""The permissions that belong to no model: what the dashboard's pages and exports declare.

The admin's models and actions use Django's own ``view_/add_/change_/delete_`` permissions;
these three cover what the admin does not see. They live on ``DashboardAccess`` (a model
without a table) so Django creates them like any other permission."""

from __future__ import annotations

# Aggregate pages: overview, channels, campaigns. No person appears on them.
VIEW_DASHBOARD = "metrics_source.view_dashboard"
# Pages that show people and single deliveries: the deliveries list, a delivery's events,
# a person's deliveries.
VIEW_PERSONAL_DATA = "metrics_source.view_personal_data"
# Any page's tables as CSV (on top of seeing the page itself).
EXPORT_CSV = "metrics_source.export_csv"

DASHBOARD_PERMISSIONS = [
    ("view_dashboard", "Can view the aggregate dashboard pages"),
    ("view_personal_data", "Can view deliveries and people (personal data)"),
    ("export_csv", "Can download the dashboard's tables as CSV"),
]
