from datetime import UTC, datetime

from django.contrib import admin
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables

from generations.sandbox.models import (
    SandboxAccount,
    SandboxCharge,
    SandboxMedia,
    SandboxRequest,
    SandboxVideo,
)


@admin.register(SandboxAccount)
class SandboxAccountAdmin(admin.ModelAdmin):
    list_display = ["label", "key_last4", "credit_monthly", "credit_package",
                    "concurrency_limit", "dialect", "webhook_url", "created"]
    search_fields = ["label", "key_last4"]
    readonly_fields = ["account_id", "key_last4", "created"]

    @sensitive_variables()
    def save_model(self, request, obj: SandboxAccount, form, change: bool) -> None:
        if not change:
            # A new account gets its key here; the page after "Save" shows it, once.
            obj.issued_key = obj.new_key()
        super().save_model(request, obj, form, change)

    def response_add(self, request, obj: SandboxAccount, post_url_continue=None):
        # Shown in this answer only: never in a message (a cookie), a log or a later page.
        response = TemplateResponse(request, "admin/sandbox/key_issued.html", {
            **self.admin_site.each_context(request),
            "title": _("Sandbox key issued"),
            "account": obj,
            "raw_key": obj.issued_key,
            "opts": self.opts,
        })
        response["Cache-Control"] = "no-store"
        return response


@admin.register(SandboxVideo)
class SandboxVideoAdmin(admin.ModelAdmin):
    list_display = ["video_id", "account", "kind", "credits", "outcome", "created", "ready_at"]
    list_filter = ["outcome", "kind"]
    search_fields = ["video_id", "trace_id"]
    readonly_fields = [f.name for f in SandboxVideo._meta.fields]


@admin.register(SandboxMedia)
class SandboxMediaAdmin(admin.ModelAdmin):
    """Uploaded videos and audio, for extend, sound effect and lip sync."""

    list_display = ["media_id", "account", "media_type", "format", "duration", "created"]
    list_filter = ["media_type"]
    search_fields = ["media_id"]
    list_select_related = ["account"]
    readonly_fields = [f.name for f in SandboxMedia._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(SandboxRequest)
class SandboxRequestAdmin(admin.ModelAdmin):
    """What clients sent, newest first: gaps per key, reads per job, refusals (429)."""

    list_display = ["started", "account", "method", "path", "video_id", "http_status", "err_code",
                    "duration_ms"]
    list_filter = ["http_status", "account"]
    search_fields = ["path", "video_id"]
    list_select_related = ["account"]
    readonly_fields = [f.name for f in SandboxRequest._meta.fields]

    @admin.display(description=_("started"), ordering="started_at")
    def started(self, obj: SandboxRequest) -> str:
        return datetime.fromtimestamp(obj.started_at, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(SandboxCharge)
class SandboxChargeAdmin(admin.ModelAdmin):
    """Every charge and refund, newest first: a trace id billed twice shows here."""

    list_display = ["created", "account", "trace_id", "video", "credits"]
    list_filter = ["account"]
    search_fields = ["trace_id", "video__video_id"]
    list_select_related = ["account", "video"]
    readonly_fields = [f.name for f in SandboxCharge._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
