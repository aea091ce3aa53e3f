"""Staff views of the portal's data. API keys appear only as their last four characters."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from generations.models import ApiCredential, Generation


@admin.register(ApiCredential)
class ApiCredentialAdmin(admin.ModelAdmin):
    list_display = ["user", "masked", "verified_at", "updated"]
    search_fields = ["user__username", "last4"]
    # encrypted_key is not editable and so never in a form; last4 is all staff see.
    readonly_fields = ["user", "masked", "verified_at", "created", "updated"]
    fields = readonly_fields

    @admin.display(description=_("key"))
    def masked(self, credential: ApiCredential) -> str:
        return credential.masked

    def has_add_permission(self, request) -> bool:
        # A key is added by its owner, who proves it with a balance call.
        return False


@admin.register(Generation)
class GenerationAdmin(admin.ModelAdmin):
    list_display = ["created", "owner", "kind", "status", "quality", "duration", "credits", "short_prompt"]
    list_filter = ["status", "kind", "quality", "model"]
    search_fields = ["prompt", "=video_id", "=trace_id", "owner__username"]
    list_select_related = ["owner"]
    date_hierarchy = "created"
    # Jobs change only through their own methods (and the workers): no editing here.
    readonly_fields = [f.name for f in Generation._meta.fields]

    @admin.display(description=_("prompt"))
    def short_prompt(self, generation: Generation) -> str:
        return generation.prompt[:60]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
