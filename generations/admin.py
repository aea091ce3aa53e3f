"""Staff views of the portal's data. API keys appear only as their last four characters."""

from datetime import timedelta

from auditlog.models import LogEntry
from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.contenttypes.models import ContentType
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.debug import sensitive_variables

from generations import audit, queue, roles
from generations.models import ApiCredential, Generation, Invitation, KeyGrant, TeamKey


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

    def get_queryset(self, request):
        return super().get_queryset(request).filter(user__isnull=False)


class TeamKeyForm(forms.ModelForm):
    """A team key's settings; the key itself is typed in, stored encrypted and never shown."""

    api_key = forms.CharField(
        label=_("PixVerse API key"), required=False, strip=True, max_length=200,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=_("Stored encrypted; only its last four characters are shown again. "
                    "When changing a key, leave it empty to keep the key it has."))

    class Meta:
        model = TeamKey
        fields = ["name", "api_key", "concurrency", "default_monthly_limit", "grant_new_members"]

    def clean(self):
        data = super().clean()
        if not self.instance.pk and not data.get("api_key"):
            self.add_error("api_key", _("A new team key needs its key."))
        if not data.get("name"):
            self.add_error("name", _("A team key needs a name members recognise."))
        return data


class KeyGrantInline(admin.TabularInline):
    model = KeyGrant
    extra = 1
    fields = ["member", "monthly_limit", "spent", "created"]
    readonly_fields = ["spent", "created"]
    verbose_name = _("member who may use this key")
    verbose_name_plural = _("members who may use this key")

    @admin.display(description=_("spent this month"))
    def spent(self, grant: KeyGrant) -> str:
        return str(grant.spent_this_month()) if grant.pk else "—"


@admin.register(TeamKey)
class TeamKeyAdmin(admin.ModelAdmin):
    """The team's PixVerse keys: who may spend from them and how much, their health and balance."""

    form = TeamKeyForm
    inlines = [KeyGrantInline]
    list_display = ["name", "masked", "health", "credits", "members", "default_monthly_limit", "updated"]
    search_fields = ["name", "last4"]
    readonly_fields = ["masked", "health", "credits", "created", "updated"]

    @admin.display(description=_("key"))
    def masked(self, key: TeamKey) -> str:
        return key.masked if key.pk else "—"

    @admin.display(description=_("health"))
    def health(self, key: TeamKey) -> str:
        if key.broken_at:
            return _("refused by PixVerse since %(when)s: %(error)s") % {
                "when": key.broken_at.strftime("%Y-%m-%d %H:%M"), "error": key.broken_error}
        return _("working") if key.verified_at or key.balance_read_at else _("not checked yet")

    @admin.display(description=_("credits"))
    def credits(self, key: TeamKey) -> str:
        balance = key.balance
        return "—" if balance is None else str(balance.total)

    @admin.display(description=_("members"))
    def members(self, key: TeamKey) -> int:
        return key.grants.count()

    @sensitive_variables("raw_key")
    def save_model(self, request, obj: TeamKey, form, change: bool) -> None:
        raw_key = form.cleaned_data.get("api_key")
        replaced = obj.masked if change and raw_key else None
        if raw_key:
            obj.set_key(raw_key)  # the balance is read in the background (want_balance below)
        super().save_model(request, obj, form, change)
        if replaced:
            audit.record(request.user, "key_replaced", obj, old=replaced, new=obj.masked)
        ApiCredential.want_balance(obj.key_hash)
        transaction.on_commit(queue.kick_scheduler)


class ApiCredentialInline(admin.StackedInline):
    model = ApiCredential
    fields = readonly_fields = ["masked", "verified_at", "updated"]
    can_delete = True
    extra = 0
    max_num = 1
    verbose_name_plural = _("PixVerse key")

    @admin.display(description=_("key"))
    def masked(self, credential: ApiCredential) -> str:
        return credential.masked

    def has_add_permission(self, request, obj=None) -> bool:
        return False


User = get_user_model()
admin.site.unregister(User)
admin.site.site_header = admin.site.site_title = _("PixVerse portal administration")


@admin.register(User)
class MemberAdmin(UserAdmin):
    """Django's user admin, with each member's PixVerse key state (never the key)."""

    inlines = [ApiCredentialInline]
    list_display = ["username", "email", "role", "is_active", "pixverse_key", "last_login"]
    list_select_related = ["pixverse_credential"]
    list_filter = ["groups", "is_active"]
    actions = ["make_admin", "make_member", "make_guest"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")

    @admin.display(description=_("role"))
    def role(self, user) -> str:
        role = roles.role_of(user)
        return role.label if role else "—"

    def _set_role(self, request, users, role: roles.Role) -> None:
        for user in users:
            roles.set_role(user, role)
        done = ngettext("%(n)d member is now %(role)s.", "%(n)d members are now %(role)s.", len(users))
        self.message_user(request, done % {"n": len(users), "role": role.label})

    @admin.action(description=_("Make admin"), permissions=["change"])
    def make_admin(self, request, queryset):
        self._set_role(request, list(queryset), roles.Role.ADMIN)

    @admin.action(description=_("Make member"), permissions=["change"])
    def make_member(self, request, queryset):
        self._set_role(request, list(queryset.exclude(pk=request.user.pk)), roles.Role.MEMBER)

    @admin.action(description=_("Make guest"), permissions=["change"])
    def make_guest(self, request, queryset):
        self._set_role(request, list(queryset.exclude(pk=request.user.pk)), roles.Role.GUEST)

    @admin.display(description=_("PixVerse key"))
    def pixverse_key(self, user) -> str:
        credential = getattr(user, "pixverse_credential", None)
        return credential.masked if credential else "—"


@admin.register(Generation)
class GenerationAdmin(admin.ModelAdmin):
    list_display = ["created", "owner", "kind", "status", "quality", "duration", "credits", "short_prompt"]
    list_filter = ["status", "kind", "quality", "model", "is_private"]
    search_fields = ["prompt", "=video_id", "=trace_id", "owner__username"]
    list_select_related = ["owner"]
    date_hierarchy = "created"
    actions = ["poll_now", "cancel", "retry"]
    # Jobs change only through their own methods (and the workers): no editing here.
    exclude = ["prompt_folded"]
    readonly_fields = [f.name for f in Generation._meta.fields if f.name != "prompt_folded"]

    @admin.display(description=_("prompt"))
    def short_prompt(self, generation: Generation) -> str:
        return generation.prompt[:60]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_manage_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("generations.manage_generation")

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("generations.retry_generation")

    @admin.action(description=_("Read the status now"), permissions=["manage"])
    def poll_now(self, request: HttpRequest, queryset: QuerySet) -> None:
        moved = [g for g in queryset if self._audited(request, "job_status_read", g, g.read_soon())]
        if moved:
            queue.kick_scheduler()
        self._report(request, len(moved), queryset.count(), _("running"))

    @admin.action(description=_("Cancel"), permissions=["manage"])
    def cancel(self, request: HttpRequest, queryset: QuerySet) -> None:
        done = sum(self._audited(request, "job_cancelled", g, g.cancel()) for g in queryset)
        self._report(request, done, queryset.count(), _("active"))

    @admin.action(description=_("Try again with the same settings"), permissions=["retry"])
    def retry(self, request: HttpRequest, queryset: QuerySet) -> None:
        retried = []
        for generation in queryset:
            if generation.can_retry:
                again = generation.retry()
                retried.append(again)
                audit.record(request.user, "job_retried", generation, done=True, new_job=str(again.code))
            else:
                audit.record(request.user, "job_retried", generation, done=False)
        if retried:
            queue.kick_scheduler()
        self._report(request, len(retried), queryset.count(), _("ended unsuccessfully"))

    @staticmethod
    def _audited(request: HttpRequest, action: str, generation: Generation, done: bool) -> bool:
        """The action on one job goes into the audit log, done or skipped (not in a state for it)."""
        audit.record(request.user, action, generation, done=done)
        return done

    def _report(self, request: HttpRequest, done: int, chosen: int, needed: str) -> None:
        self.message_user(request, ngettext("%(done)d of %(chosen)d job done.",
                                            "%(done)d of %(chosen)d jobs done.", chosen)
                          % {"done": done, "chosen": chosen})
        if done < chosen:
            skipped = _("The others were skipped: the action needs jobs that are %(needed)s.")
            self.message_user(request, skipped % {"needed": needed}, messages.WARNING)


class InvitationForm(forms.ModelForm):
    class Meta:
        model = Invitation
        fields = ["email", "role", "expires_at"]

    def clean_email(self):
        email = self.cleaned_data["email"]
        if not self.instance.pk and Invitation.objects.filter(
                email__iexact=email, accepted_at__isnull=True, expires_at__gt=timezone.now()).exists():
            # Also what a reload of the "sent" page gets: it posts the form again.
            raise forms.ValidationError(_("An invitation to this address is open already; use "
                                          "“Send again with a new link” on it instead."))
        return email


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    """Invite people by e-mail (with sign-up off, the way in): a one-time link, valid a few days."""

    form = InvitationForm
    list_display = ["email", "role", "state", "invited_by", "created", "expires_at", "accepted_by"]
    list_filter = ["role", "created"]
    search_fields = ["email"]
    fields = ["email", "role", "expires_at"]
    actions = ["send_again"]

    def save_model(self, request, obj: Invitation, form, change: bool) -> None:
        if not change:
            obj.invited_by = request.user
            obj.issued_link = self._send(request, obj)
        super().save_model(request, obj, form, change)

    def _send(self, request, invitation: Invitation) -> str:
        token = invitation.new_token()
        link = request.build_absolute_uri(reverse("accept-invitation", args=[token]))
        context = {"link": link, "invitation": invitation, "days": settings.PORTAL_INVITATION_DAYS,
                   "inviter": request.user.get_username()}
        send_mail(render_to_string("registration/invitation_subject.txt", context).strip(),
                  render_to_string("registration/invitation_email.txt", context),
                  None, [invitation.email])
        return link

    def response_add(self, request, obj: Invitation, post_url_continue=None):
        # The link, this once (it is in the mail too): for a site whose mail is not set up yet.
        response = TemplateResponse(request, "admin/generations/invitation_sent.html", {
            **self.admin_site.each_context(request), "title": _("Invitation sent"),
            "invitation": obj, "link": obj.issued_link, "opts": self.opts})
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description=_("Send again with a new link"), permissions=["change"])
    def send_again(self, request, queryset):
        sent = 0
        for invitation in queryset.filter(accepted_at__isnull=True):
            invitation.expires_at = timezone.now() + timedelta(days=settings.PORTAL_INVITATION_DAYS)
            self._send(request, invitation)
            invitation.save(update_fields=["token_hash", "expires_at"])
            sent += 1
        self.message_user(request, ngettext("%(n)d invitation sent again.", "%(n)d invitations sent again.",
                                            sent) % {"n": sent})


# --- The audit log (generations/audit.py): read-only, for staff who may view its entries ----------


class AuditModelFilter(admin.SimpleListFilter):
    title = _("model")
    parameter_name = "model"

    def lookups(self, request, model_admin):
        used = LogEntry.objects.values_list("content_type", flat=True).distinct()
        types = ContentType.objects.filter(pk__in=used)
        return sorted(((t.pk, capfirst(t.name)) for t in types), key=lambda choice: str(choice[1]))

    def queryset(self, request, queryset):
        return queryset.filter(content_type_id=self.value()) if self.value() else queryset


class AuditEventFilter(admin.SimpleListFilter):
    title = _("event")
    parameter_name = "event"

    def lookups(self, request, model_admin):
        return [(name, capfirst(event.label)) for name, event in audit.EVENTS.items()]

    def queryset(self, request, queryset):
        return queryset.filter(additional_data__event=self.value()) if self.value() else queryset


if admin.site.is_registered(LogEntry):
    admin.site.unregister(LogEntry)  # auditlog's own admin: ours says what happened in words


@admin.register(LogEntry)
class AuditLogAdmin(admin.ModelAdmin):
    """Who did what, and when. Nothing here can be added, changed or deleted, not even by a superuser."""

    list_display = ["timestamp", "who", "what", "target", "summary"]
    list_filter = [("actor", admin.RelatedOnlyFieldListFilter), "action", AuditEventFilter, AuditModelFilter,
                   "timestamp"]
    list_select_related = ["actor", "content_type"]
    search_fields = ["object_repr", "actor__username"]
    date_hierarchy = "timestamp"
    fields = readonly_fields = ["timestamp", "who", "what", "target", "summary", "remote_addr", "cid"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description=_("who"), ordering="actor__username")
    def who(self, entry: LogEntry) -> str:
        if entry.actor:
            return entry.actor.get_username()
        if entry.actor_email:  # the member was deleted since; auditlog kept their address
            return _("%(email)s (deleted since)") % {"email": entry.actor_email}
        return _("no one signed in (a worker, a command or a visitor)")

    @admin.display(description=_("what"))
    def what(self, entry: LogEntry) -> str:
        return capfirst(audit.event_label(entry))

    @admin.display(description=_("object"))
    def target(self, entry: LogEntry) -> str:
        return f"{capfirst(entry.content_type.name)}: {entry.object_repr}"

    @admin.display(description=_("changes"))
    def summary(self, entry: LogEntry) -> str:
        return audit.describe(entry)
