"""The portal's pages: the dashboard, job cards, the team history, a job's
details, the member's key, sign-up.

Views are short functions. Jobs are reached only through two helpers:
_get_visible_generation (the team's shared jobs and one's own; anything
else is a 404) for seeing, and _get_own_generation for changing.
"""

import contextlib
import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth import get_user_model, login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_cache_control
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import condition, require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import reswap, retarget, trigger_client_event

from generations import cards, media, queue
from generations.forms import (
    ApiKeyForm,
    HistoryFilterForm,
    ImageToVideoForm,
    SignUpForm,
    TextToVideoForm,
    ThrottledAuthenticationForm,
)
from generations.jobs import balance_cache_key
from generations.models import ApiCredential, Generation
from generations.paging import page_of
from generations.pixverse import Balance, InvalidKey, PixVerseError, RateLimited
from generations.usage import team_usage

logger = logging.getLogger(__name__)

BALANCE_TTL = 60  # seconds; jobs clear it when they finish
WEB_MAX_WAIT = 5.0  # seconds a page waits for a rate-limit slot before saying "busy"
RECENT_JOBS = 24


def _get_visible_generation(request: HttpRequest, code) -> Generation:
    """A job this member may see (the team's shared ones and their own); else 404."""
    return get_object_or_404(Generation.objects.visible_to(request.user), code=code)


def _get_own_generation(request: HttpRequest, code) -> Generation:
    """A job of this member's own, for changing it; anyone else's is a 404."""
    return get_object_or_404(Generation, code=code, owner=request.user)


def _credential(request: HttpRequest) -> ApiCredential | None:
    return ApiCredential.objects.filter(user=request.user).first()


def _balance(request: HttpRequest, *, refresh: bool = False) -> tuple[Balance | None, str]:
    """The member's balance, cached briefly, and an error in plain words if it is unknown."""
    key = balance_cache_key(request.user.pk)
    if not refresh and (cached := cache.get(key)) is not None:
        return cached, ""
    credential = _credential(request)
    if credential is None:
        return None, _("Add your PixVerse API key to see your credits.")
    try:
        balance = credential.client(max_wait=WEB_MAX_WAIT).balance()
    except InvalidKey:
        return None, _("PixVerse does not accept your API key.")
    except RateLimited:
        return None, _("PixVerse is busy with your jobs; the balance will show shortly.")
    except PixVerseError:
        return None, _("PixVerse could not be reached for your balance.")
    cache.set(key, balance, BALANCE_TTL)
    return balance, ""


def _reusable(request: HttpRequest):
    """The jobs whose settings and images this member may start from (remix)."""
    return Generation.objects.visible_to(request.user)


def _dashboard_context(request: HttpRequest, start_from: Generation | None = None, **forms) -> dict:
    balance, balance_error = _balance(request)
    known = balance.total if balance else None
    initial = TextToVideoForm.initial_from(start_from) if start_from else None
    return {
        "balance": balance, "balance_error": balance_error,
        "has_key": _credential(request) is not None,
        "text_form": forms.get("text_form") or TextToVideoForm(balance=known, initial=initial),
        "image_form": forms.get("image_form") or ImageToVideoForm(
            balance=known, initial=initial, sources=_reusable(request)),
        "active_form": forms.get("active_form", "text"),
        "generations": Generation.objects.filter(owner=request.user)[:RECENT_JOBS],
    }


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    """The member's dashboard; ?from=<job> starts the forms from that job's settings."""
    start_from = None
    if code := request.GET.get("from"):
        with contextlib.suppress(ValidationError):
            start_from = _reusable(request).filter(code=code).first()
    mode = request.GET.get("mode") or (start_from.kind if start_from else "text")
    return render(request, "generations/dashboard.html", _dashboard_context(
        request, start_from=start_from, active_form="image" if mode == "image" else "text"))


@login_required
@require_GET
@vary_on_headers("HX-Request")
def balance_panel(request: HttpRequest) -> HttpResponse:
    balance, balance_error = _balance(request, refresh="refresh" in request.GET)
    context = {"balance": balance, "balance_error": balance_error}
    if request.htmx:
        return render(request, "generations/dashboard.html#balance", context)
    return redirect("dashboard")


@login_required
@require_GET
def estimate(request: HttpRequest) -> HttpResponse:
    """The cost of the settings in the form so far (HTMX, while the member edits)."""
    form = TextToVideoForm(request.GET)
    form.is_valid()
    return render(request, "generations/dashboard.html#estimate", {"cost": form.cost()})


def _card(request: HttpRequest, generation: Generation) -> HttpResponse:
    return render(request, "generations/dashboard.html#job-card", {"generation": generation})


def _start_worker(request: HttpRequest) -> None:
    # After commit, so the worker finds the new row (and its trace id) already stored.
    transaction.on_commit(lambda: queue.start_member_worker(request.user.pk))


def _submit(request: HttpRequest, form_class, name: str) -> HttpResponse:
    balance, _error = _balance(request)
    extra = {"sources": _reusable(request)} if name == "image" else {}
    form = form_class(request.POST, request.FILES, balance=balance.total if balance else None, **extra)
    if _credential(request) is None:
        form.add_error(None, _("Add your PixVerse API key in Settings first."))
    if not form.is_valid():
        if request.htmx:
            # The form comes back in place, with each error next to its field
            # and everything the member typed still in it.
            response = render(request, "generations/dashboard.html#generation-form",
                              {"form": form, "kind": name}, status=400)
            return reswap(retarget(response, f"#{name}-form"), "outerHTML")
        context = _dashboard_context(request, **{f"{name}_form": form, "active_form": name})
        return render(request, "generations/dashboard.html", context, status=400)
    with transaction.atomic():
        generation = Generation(owner=request.user, **form.generation_fields())
        if name == "image" and form.cleaned_data["image"]:
            image = form.cleaned_data["image"]
            generation.source_image.save(f"source.{form.image_info.extension}", image, save=False)
        elif name == "image":
            generation.source_image = form.reused.source_image.name
        generation.save()
    _start_worker(request)
    if request.htmx:
        return _card(request, generation)
    messages.success(request, _("Your video is on its way."))
    # The form comes back with the same settings, to change one and go again.
    return redirect(cards.remix_path(generation))


@login_required
@require_POST
def create_text(request: HttpRequest) -> HttpResponse:
    return _submit(request, TextToVideoForm, "text")


@login_required
@require_POST
def create_image(request: HttpRequest) -> HttpResponse:
    return _submit(request, ImageToVideoForm, "image")


def _card_etag(request: HttpRequest, code) -> str | None:
    # One indexed read; most polls end here with a 304 (generations/cards.py).
    request.card_generation = cards.visible_card(request.user, code)
    if request.card_generation is None:
        return None  # the view answers 404
    tag = cards.etag(request, request.card_generation)
    # The card rendered from this same, unchanged object carries it in its hx-headers.
    request.card_etag = (request.card_generation, tag)
    return tag


@login_required
@require_GET
@vary_on_headers("HX-Request")
@condition(etag_func=_card_etag)
def card(request: HttpRequest, code) -> HttpResponse:
    generation = request.card_generation
    if generation is None:
        raise Http404
    if not request.htmx:
        return redirect(f"{reverse('dashboard')}#job-{generation.code}")
    response = _card(request, generation)
    # Never reused unasked: the page's next poll sends this card's ETag itself.
    patch_cache_control(response, private=True, no_cache=True)
    if not generation.is_active:
        # The card in the page stops polling with this answer; the balance moved.
        response = trigger_client_event(response, "balance-changed")
    return response


@login_required
@require_POST
def retry(request: HttpRequest, code) -> HttpResponse:
    """Try again with the same settings, as a new job with its own trace id."""
    generation = _get_own_generation(request, code).retry()
    _start_worker(request)
    return _card(request, generation) if request.htmx else redirect("dashboard")


@login_required
@require_POST
def cancel(request: HttpRequest, code) -> HttpResponse:
    generation = _get_own_generation(request, code)
    generation.cancel()
    return _card(request, generation) if request.htmx else redirect("dashboard")


@login_required
@require_GET
def video(request: HttpRequest, code) -> HttpResponse:
    """Our stored copy of the video; members download only what they may see."""
    generation = _get_visible_generation(request, code)
    if not generation.video_file:
        raise Http404
    download = "download" in request.GET
    return media.serve(request, generation.video_file, content_type="video/mp4", as_attachment=download,
                       filename=f"pixverse-{generation.video_id}.mp4")


@login_required
@require_GET
def source_image(request: HttpRequest, code) -> HttpResponse:
    generation = _get_visible_generation(request, code)
    if not generation.source_image:
        raise Http404
    return media.serve(request, generation.source_image)


# --- The team's history ----------------------------------------------------------------------

HISTORY_PAGE_SIZE = 24


@login_required
@require_GET
@vary_on_headers("HX-Request")
def history(request: HttpRequest) -> HttpResponse:
    """Everyone's shared jobs and the member's own, newest first, filtered by the URL."""
    members = get_user_model().objects.filter(is_active=True).order_by("username")
    form = HistoryFilterForm(request.GET, members=members)
    form.is_valid()
    generations = form.apply(
        Generation.objects.visible_to(request.user).select_related("owner"), request.user
    )
    page = page_of(generations, request.GET.get("page"), HISTORY_PAGE_SIZE)
    context = {"form": form, "page": page}
    status = 400 if form.errors else 200
    if request.htmx and request.htmx.target == "results":
        return render(request, "generations/history.html#results", context, status=status)
    return render(request, "generations/history.html", context, status=status)


@login_required
@require_GET
@vary_on_headers("HX-Request")
def detail(request: HttpRequest, code) -> HttpResponse:
    generation = _get_visible_generation(request, code)
    context = {"generation": generation, "can_delete": _may_delete(request, generation)}
    if request.htmx:
        return render(request, "generations/detail.html#detail-body", context)
    return render(request, "generations/detail.html", context)


def _may_delete(request: HttpRequest, generation: Generation) -> bool:
    return generation.owner_id == request.user.pk or request.user.is_staff


@login_required
def delete(request: HttpRequest, code) -> HttpResponse:
    """Delete a job and its stored files (its owner, or staff), after a confirmation page."""
    generation = _get_visible_generation(request, code)
    if not _may_delete(request, generation):
        raise Http404
    if request.method == "POST":
        generation.delete()
        messages.success(request, _("The video is deleted."))
        return redirect("history")
    return render(request, "generations/delete.html", {"generation": generation})


@login_required
@require_POST
def privacy(request: HttpRequest, code) -> HttpResponse:
    generation = _get_own_generation(request, code)
    generation.set_private(request.POST.get("private") == "1")
    if generation.is_private:
        messages.success(request, _("Only you can see this video now."))
    else:
        messages.success(request, _("The team can see this video now."))
    return redirect("detail", code=generation.code)


# --- Activity: what the page title and notifications show ---------------------------------------


@login_required
@require_GET
def activity(request: HttpRequest) -> JsonResponse:
    """The member's running jobs, and those finished since ?since= (an ISO time), for every page."""
    mine = Generation.objects.filter(owner=request.user)
    since = parse_datetime(request.GET.get("since", "")) or timezone.now()
    finished = mine.filter(finished_at__gt=since).order_by("finished_at")[:10]
    return JsonResponse({
        "now": timezone.now().isoformat(),
        "running": mine.filter(status__in=Generation.ACTIVE).count(),
        "finished": [{
            "url": reverse("detail", args=[g.code]),
            "ok": g.status == Generation.Status.DONE,
            "title": _("Your video is ready") if g.status == Generation.Status.DONE
            else _("Your video did not finish: %(status)s") % {"status": g.get_status_display()},
            "prompt": g.prompt[:120],
        } for g in finished],
    })


# --- Staff -----------------------------------------------------------------------------------------


@staff_member_required
@require_GET
def usage(request: HttpRequest) -> HttpResponse:
    return render(request, "generations/usage.html", {"usage": team_usage()})


# --- The member's PixVerse key -----------------------------------------------------------------


@sensitive_post_parameters("api_key")
@login_required
def api_key(request: HttpRequest) -> HttpResponse:
    credential = _credential(request)
    form = ApiKeyForm()
    if request.method == "POST":
        action = request.POST.get("action", "save")
        if action == "remove" and credential:
            credential.delete()
            cache.delete(balance_cache_key(request.user.pk))
            messages.success(request, _("Your PixVerse key is removed."))
            return redirect("api-key")
        if action == "test" and credential:
            balance, error = _balance(request, refresh=True)
            if balance:
                ApiCredential.objects.filter(pk=credential.pk).update(verified_at=timezone.now())
                messages.success(request, _("PixVerse accepts your key: %(credits)s credits.")
                                 % {"credits": balance.total})
            else:
                messages.error(request, error)
            return redirect("api-key")
        form = ApiKeyForm(request.POST)
        if form.is_valid() and (balance := _verify_key(form)):
            credential = credential or ApiCredential(user=request.user)
            credential.set_key(form.cleaned_data["api_key"])
            credential.verified_at = timezone.now()
            credential.save()
            cache.set(balance_cache_key(request.user.pk), balance, BALANCE_TTL)
            messages.success(request, _("Your PixVerse key is saved: %(credits)s credits.")
                             % {"credits": balance.total})
            return redirect("api-key")
    status = 400 if form.errors else 200
    return render(request, "generations/api_key.html", {"credential": credential, "form": form},
                  status=status)


@sensitive_variables()
def _verify_key(form: ApiKeyForm) -> Balance | None:
    """Check a new key with the balance call; on failure, say why next to the field."""
    from generations.pixverse import PixVerseClient

    try:
        return PixVerseClient(form.cleaned_data["api_key"], max_wait=WEB_MAX_WAIT).balance()
    except InvalidKey:
        form.add_error("api_key", _("PixVerse does not accept this key. Check that it is complete."))
    except RateLimited:
        form.add_error("api_key", _("PixVerse is busy with this key; try again in a few seconds."))
    except PixVerseError as e:
        logger.warning("key check failed: %s trace_id=%s", e.kind, e.trace_id)
        form.add_error("api_key", _("PixVerse could not be reached to check the key; try again."))
    return None


# --- Sign-in and sign-up ------------------------------------------------------------------------------------


class ThrottledLoginView(LoginView):
    """Sign-in that answers a failed attempt with 400, and a throttled one with 429."""

    form_class = ThrottledAuthenticationForm

    def form_invalid(self, form):
        response = super().form_invalid(form)
        response.status_code = 429 if form.throttled else 400
        return response


def signup(request: HttpRequest) -> HttpResponse:
    if not settings.PORTAL_SIGNUP_ENABLED:
        raise Http404
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user)
        return redirect("api-key")
    return render(request, "registration/signup.html", {"form": form},
                  status=400 if form.errors else 200)
