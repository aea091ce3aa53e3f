from django.contrib import admin

from generations.sandbox.models import SandboxAccount, SandboxVideo


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
