"""Staff views of the portal's data. API keys appear only as their last four characters."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from generations.models import ApiCredential


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
