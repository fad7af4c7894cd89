"""Names in the admin: edited one by one, or imported from a CSV (kind,id,name)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from metrics_source.access.audit import audit_record
from metrics_source.access.models import AuditAction
from metrics_source.naming.models import MessageName
from metrics_source.naming.services import MAX_IMPORT_BYTES, names_import
from metrics_source.runtime.admin_base import AuditedAdmin


class NamesFileForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="UTF-8, with the header kind,id,name; kind is campaign, broadcast, "
        "newsletter, transactional, action or journey. An empty name removes that name.",
    )


@admin.register(MessageName)
class MessageNameAdmin(AuditedAdmin):
    list_display = ["kind", "object_id", "name", "updated_at"]
    list_filter = ["kind"]
    search_fields = ["name", "=object_id"]
    list_display_links = ["name"]
    ordering = ["kind", "object_id"]

    def get_urls(self) -> list[Any]:
        urls = super().get_urls()
        return [
            path(
                "import/",
                self.admin_site.admin_view(self.import_view),
                name="metrics_source_messagename_import",
            ),
            *urls,
        ]

    def import_view(self, request: HttpRequest) -> HttpResponse:
        # Importing adds and changes names: both permissions, as each row may do either.
        if not (self.has_add_permission(request) and self.has_change_permission(request)):
            raise PermissionDenied
        form = NamesFileForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                if upload.size > MAX_IMPORT_BYTES:
                    raise ValueError(f"the file is larger than {MAX_IMPORT_BYTES // 2**20} MB")
                result = names_import(upload.read())
            except ValueError as refused:
                form.add_error("file", str(refused))
            else:
                audit_record(
                    action=AuditAction.NAMES_IMPORTED,
                    request=request,
                    target_type="message names",
                    detail={
                        "created": result.created,
                        "updated": result.updated,
                        "removed": result.removed,
                        "refused_rows": len(result.errors),
                    },
                )
                self.message_user(
                    request,
                    f"Names imported: {result.created} new, {result.updated} changed, "
                    f"{result.removed} removed.",
                    messages.SUCCESS,
                )
                for error in result.errors[:20]:
                    self.message_user(request, f"Not imported: {error}.", messages.ERROR)
                if len(result.errors) > 20:
                    self.message_user(
                        request, f"… and {len(result.errors) - 20} more rows.", messages.ERROR
                    )
                return HttpResponseRedirect(reverse("admin:metrics_source_messagename_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Import names from a CSV",
            "form": form,
        }
        return TemplateResponse(request, "admin/metrics_source/messagename/import.html", context)
