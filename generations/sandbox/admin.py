from datetime import UTC, datetime

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from generations.sandbox.models import SandboxAccount, SandboxCharge, SandboxRequest, SandboxVideo


@admin.register(SandboxAccount)
class SandboxAccountAdmin(admin.ModelAdmin):
    list_display = ["label", "key_last4", "credit_monthly", "credit_package",
                    "concurrency_limit", "dialect", "created"]
    search_fields = ["label", "key_last4"]
    readonly_fields = ["account_id", "key_last4", "created"]


@admin.register(SandboxVideo)
class SandboxVideoAdmin(admin.ModelAdmin):
    list_display = ["video_id", "account", "kind", "credits", "outcome", "created", "ready_at"]
    list_filter = ["outcome", "kind"]
    search_fields = ["video_id", "trace_id"]
    readonly_fields = [f.name for f in SandboxVideo._meta.fields]


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
