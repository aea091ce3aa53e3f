"""The portal's pages: the dashboard, job cards, the team history, a job's
details, the member's key, sign-up.

Views are short functions. Jobs are reached only through two helpers:
_get_visible_generation (the team's shared jobs and one's own; anything
else is a 404) for seeing, and _get_own_generation for changing.
"""

import contextlib
import datetime
import logging
import math
import time
import uuid

from axes.utils import reset as reset_lockouts
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView, PasswordResetConfirmView, PasswordResetView
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_cache_control
from django.utils.dateparse import parse_datetime
from django.utils.http import content_disposition_header
from django.utils.translation import get_language, ngettext
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import condition, require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import reswap, retarget, trigger_client_event

from generations import accounts, audit, cards, keys, lists, media, queue, roles, webhooks
from generations.forms import (
    AccountForm,
    ApiKeyForm,
    HistoryFilterForm,
    ImageToVideoForm,
    InvitationForm,
    SignUpForm,
    TextToVideoForm,
    UsageFilterForm,
)
from generations.models import ApiCredential, Generation, Invitation, SourceInput
from generations.paging import PageOutOfRange, page_of
from generations.pixverse import Balance, InvalidKey, PixVerseError, RateLimited
from generations.usage import Month, member_usage, team_usage, write_csv
from generations.usage import records as usage_records
from generations.video_forms import ExtendForm, FusionForm, LipSyncForm, SoundEffectForm, TransitionForm
from pixverse_site.middleware import TIME_ZONE_CHOSEN_COOKIE, TIME_ZONE_COOKIE

logger = logging.getLogger(__name__)

BALANCE_TTL = 60  # seconds; a balance older than this is read again when shown
# A page waits on PixVerse only to check a key being added or tested: at most
# this long for the key's rate-limit slot, and this long for the answer.
WEB_MAX_WAIT = 1.0
WEB_KEY_CHECK_SECONDS = 2.0
RECENT_JOBS = 24


def _get_visible_generation(request: HttpRequest, code) -> Generation:
    """A job this member may see (the team's shared ones and their own); else 404."""
    return get_object_or_404(Generation.objects.visible_to(request.user), code=code)


def _get_own_generation(request: HttpRequest, code) -> Generation:
    """A job of this member's own, for changing it; anyone else's is a 404."""
    return get_object_or_404(Generation, code=code, owner=request.user)


def _credential(request: HttpRequest) -> ApiCredential | None:
    return ApiCredential.objects.filter(user=request.user).first()


def _balance(request: HttpRequest, *, refresh: bool = False) -> dict:
    """The member's balance as last read in the background, its age, and what to say about it.

    No page waits on PixVerse for it: a balance older than BALANCE_TTL (or a
    refresh) is asked of the scheduler, and the panel polls until it comes.
    """
    credential = _credential(request)
    if credential is None:
        team_keys = [choice for choice in _keys(request) if choice.is_team]
        return {"balance": None, "team_keys": team_keys,
                "balance_error": _("Add your PixVerse API key to see your credits.")}
    age = credential.balance_age()
    pending = credential.balance_due_at is not None
    if refresh or age is None or age.total_seconds() > BALANCE_TTL or credential.balance_outdated:
        ApiCredential.want_balance(credential.key_hash)
        pending = True
    if pending:
        transaction.on_commit(queue.kick_scheduler)  # a no-op while a scheduler loop is alive
    errors = {
        "invalid_key": _("PixVerse does not accept your API key."),
        "": _("Reading your credits…"),
    }
    error = ""
    if (credential.balance is None and pending) or credential.balance_error:
        error = errors.get(credential.balance_error, _("PixVerse could not be reached for your balance."))
    return {"balance": credential.balance, "balance_age": age, "balance_error": error,
            "balance_pending": pending, "balance_read_at": credential.balance_read_at}


def _reusable(request: HttpRequest):
    """The jobs whose settings and images this member may start from (remix)."""
    return Generation.objects.visible_to(request.user)


def _keys(request: HttpRequest) -> list:
    return keys.choices_for(request.user)


def _known_total(request: HttpRequest) -> int | None:
    credential = _credential(request)
    balance = credential.balance if credential else None
    return balance.total if balance else None


# Each kind of video: its form, in the order of the dashboard's tabs.
FORMS = {
    Generation.Kind.TEXT: TextToVideoForm, Generation.Kind.IMAGE: ImageToVideoForm,
    Generation.Kind.TRANSITION: TransitionForm, Generation.Kind.EXTEND: ExtendForm,
    Generation.Kind.SOUND_EFFECT: SoundEffectForm, Generation.Kind.LIP_SYNC: LipSyncForm,
    Generation.Kind.FUSION: FusionForm,
}


def _form_kwargs(request: HttpRequest, kind: str) -> dict:
    """What a kind's form needs besides the data: the known balance, the keys, the member's
    earlier jobs (images and videos to start from), the voices."""
    kwargs = {"balance": _known_total(request), "keys": _keys(request)}
    if kind != Generation.Kind.TEXT:
        kwargs["sources"] = _reusable(request)
    choices = kwargs["keys"]
    if kind == Generation.Kind.LIP_SYNC:
        kwargs["speakers"] = lists.voices(choices[0].credential if choices else None)
    if kind in (Generation.Kind.TEXT, Generation.Kind.IMAGE) and choices:
        # The templates of the account that pays by default (a job on another key whose
        # account lacks the template is refused by PixVerse: 500070, said on its card).
        remembered = keys.remembered_choice(request.user, choices)
        paying = next((choice for choice in choices if choice.value == remembered), choices[0])
        kwargs["templates"] = lists.templates(paying.credential)
    return kwargs


def _dashboard_context(request: HttpRequest, start_from: Generation | None = None, form=None,
                       mode: str = "text", video: str | None = None) -> dict:
    choices = _keys(request)
    if form is None:
        form_class = FORMS[mode]
        initial = {**(form_class.initial_from(start_from) if start_from else {}),
                   "key": keys.remembered_choice(request.user, choices)}
        if video:
            initial["source_video"] = video
        form = form_class(initial=initial, **_form_kwargs(request, mode))
        if video and "source_video" in form.fields and video not in dict(form.fields["source_video"].choices):
            # Deleted or made private (in another tab, by its owner) since the link was shown.
            messages.warning(request, _("That video is no longer there (deleted or private): "
                                        "choose another one or upload one."))
    return {
        **_balance(request),
        "has_key": bool(choices),
        "form": form,
        "active_form": mode,
        "modes": [(kind, FORMS[kind].tab_label) for kind in FORMS],
        "generations": Generation.objects.filter(owner=request.user)[:RECENT_JOBS],
        "recent_jobs": RECENT_JOBS,
    }


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    """The member's dashboard: ?mode=<kind> picks the form, ?from=<job> starts it from that
    job's settings (remix), ?video=<job> from that video (extend, sound, lip sync)."""
    start_from = None
    if code := request.GET.get("from"):
        with contextlib.suppress(ValidationError):
            start_from = _reusable(request).filter(code=code).first()
        if start_from is None and roles.may_generate(request.user):
            # Deleted or made private since its Remix link was shown (another tab, its owner).
            messages.warning(request, _("The video to remix is no longer there (deleted or private): "
                                        "the form starts from the usual settings."))
    mode = request.GET.get("mode") or (start_from.kind if start_from else "text")
    if mode not in FORMS:
        mode = Generation.Kind.TEXT
    if start_from is not None and start_from.kind != mode:
        start_from = None
    if not roles.may_generate(request.user):
        return render(request, "generations/guest.html", {
            "generations": Generation.objects.visible_to(request.user).select_related("owner")[:RECENT_JOBS]})
    return render(request, "generations/dashboard.html", _dashboard_context(
        request, start_from=start_from, mode=mode, video=request.GET.get("video")))


@login_required
@require_GET
@vary_on_headers("HX-Request")
def balance_panel(request: HttpRequest) -> HttpResponse:
    context = _balance(request, refresh="refresh" in request.GET)
    if request.htmx:
        return render(request, "generations/dashboard.html#balance", context)
    return redirect("dashboard")


@login_required
@require_GET
def estimate(request: HttpRequest) -> HttpResponse:
    """The cost of the settings so far (HTMX, while the member edits); with ?options, after
    a change of model, that model's option fields too, the estimate then out of band.

    Only a change of model replaces the fields: replacing them on every change
    would let an answer still on its way undo what the member just ticked.
    """
    kind = request.GET.get("kind") if request.GET.get("kind") in FORMS else Generation.Kind.TEXT
    kwargs = _form_kwargs(request, kind)
    kwargs.pop("speakers", None)  # the cost does not depend on the voice
    form = FORMS[kind].for_model(request.GET, **kwargs)
    if "options" in request.GET:
        return render(request, "generations/dashboard.html#model-options",
                      {"form": form, "kind": kind, "estimate": form.estimate(), "estimate_oob": True})
    return render(request, "generations/dashboard.html#estimate", {"kind": kind, "estimate": form.estimate()})


def _job_gone(request: HttpRequest, code) -> HttpResponse:
    """A poll's answer for a job this member cannot see (deleted, made private, never there).

    Still a 404, the same for every such code; portal.js swaps it in (X-Job-Gone)
    in place of the card, which says so and stops polling.
    """
    response = render(request, "generations/dashboard.html#job-gone", {"code": code}, status=404)
    response["X-Job-Gone"] = "1"
    return response


def _own_card_action_target(request: HttpRequest, code) -> Generation | HttpResponse:
    """The member's job for a button on its card, or, when it is gone (deleted or made
    private in another tab), the gone card in that card's place (htmx) or a 404."""
    try:
        return _get_own_generation(request, code)
    except Http404:
        if not request.htmx:
            raise
    return reswap(retarget(_job_gone(request, code), f"#job-{code}"), "outerHTML")


def _card(request: HttpRequest, generation: Generation) -> HttpResponse:
    return render(request, "generations/dashboard.html#job-card", {"generation": generation})


def _start_worker(request: HttpRequest) -> None:
    # After commit, so the scheduler finds the new row (and its trace id) already stored.
    transaction.on_commit(queue.kick_scheduler)


def image_too_large(request: HttpRequest) -> HttpResponse:
    """The answer to an image form larger than PORTAL_MAX_REQUEST_BYTES (pixverse_site/middleware.py).

    Its body is never read, so nothing the member typed is known here. With
    htmx only the image field is replaced, and the rest of the form stays as
    typed; without JavaScript the page says to go back, where the browser has
    kept the form as it was. (portal.js refuses such a file before sending it.)
    """
    form = ImageToVideoForm(**_form_kwargs(request, Generation.Kind.IMAGE))
    form.refuse_image()
    if request.htmx:
        response = render(request, "generations/dashboard.html#image-field", {"form": form}, status=413)
        return reswap(retarget(response, "#image-field"), "outerHTML")
    form.add_error(None, _("The image is too large, so nothing was sent. Go back with your browser's "
                           "Back button to find the form as you filled it in, and choose a smaller image."))
    context = _dashboard_context(request, form=form, mode="image")
    return render(request, "generations/dashboard.html", context, status=413)


def upload_too_large(request: HttpRequest, kind: str) -> HttpResponse:
    """A form of another kind whose files together pass PORTAL_MAX_REQUEST_BYTES (each one alone
    is refused in the browser before sending). Nothing of it was read: with htmx the message
    goes above the form, which stays as filled in; without, the page says to go back."""
    if kind not in FORMS or kind == Generation.Kind.TEXT:
        return request_too_large(request)
    message = _("The files are too large together (at most %(mb)s MB in all), so nothing was sent. "
                "Choose smaller files.") % {"mb": settings.PORTAL_MAX_REQUEST_BYTES // (1024 * 1024)}
    if request.htmx:
        response = render(request, "generations/dashboard.html#too-large",
                          {"kind": kind, "message": message}, status=413)
        return reswap(retarget(response, f"#{kind}-too-large"), "outerHTML")
    form = FORMS[kind](**_form_kwargs(request, kind))
    form.cleaned_data = {}  # add_error expects it; a form not bound to data has none
    form.add_error(None, message + " " + _("Go back with your browser's Back button to find the form "
                                           "as you filled it in."))
    context = _dashboard_context(request, form=form, mode=kind)
    return render(request, "generations/dashboard.html", context, status=413)


def request_too_large(request: HttpRequest) -> HttpResponse:
    """Any other request past PORTAL_MAX_REQUEST_BYTES: the portal's page, in the member's language."""
    return render(request, "413.html", {"mb": settings.PORTAL_MAX_REQUEST_BYTES // (1024 * 1024)},
                  status=413)


def _job_code(request: HttpRequest, form) -> uuid.UUID | None:
    """The code of the job this form makes: from the form's submission token and the member.

    The same form sent twice (a double click, a resent post) asks for the same
    code, which is unique: the second post finds the first job, or, sent at
    the same moment, fails to store it, on any database and in any process.
    Mixing in the member means nobody can choose the code of another's job.
    """
    token = form.cleaned_data.get("submission")
    return uuid.uuid5(token, str(request.user.pk)) if token else None


def _sent_before(request: HttpRequest, code: uuid.UUID | None) -> Generation | None:
    return Generation.objects.filter(code=code, owner=request.user).first() if code else None


# The extensions an input keeps from its upload's name: those of the images, videos and
# sounds the forms take (their content was checked). Any other name gets none: the
# extension chooses the type the file is served with (media.serve).
INPUT_EXTENSIONS = frozenset({"png", "jpg", "jpeg", "webp", "mp4", "mov", "webm", "mp3", "wav", "m4a",
                              "aac"})


def _input_name(role: str, position: int, uploaded_as: str) -> str:
    """A stored input's file name: ours, with the upload's extension if it is a media one."""
    extension = uploaded_as.rsplit(".", 1)[-1].lower() if "." in uploaded_as else ""
    return f"{role}-{position}.{extension}" if extension in INPUT_EXTENSIONS else f"{role}-{position}"


def _store_generation(request: HttpRequest, form, name: str, code: uuid.UUID | None) -> Generation:
    """The job and its files, all stored or none."""
    generation = Generation(owner=request.user, **form.generation_fields())
    if code:
        generation.code = code
    uploaded = name == "image" and form.cleaned_data["image"]
    inputs = form.inputs()
    generation.uploads_pending = len(inputs)
    saved = []  # files written, to remove should the job not be stored
    try:
        with transaction.atomic():
            if uploaded:
                generation.source_image.save(f"source.{form.image_info.extension}", uploaded, save=False)
                saved.append(generation.source_image)
            elif name == "image":
                generation.source_image = form.reused.source_image.name
            generation.save()
            for position, (role, ref_name, file, seconds) in enumerate(inputs):
                source = SourceInput(generation=generation, position=position, role=role, name=ref_name,
                                     seconds=seconds)
                if isinstance(file, str):
                    source.file.name = file  # an earlier job's file, used again
                else:
                    source.file.save(_input_name(role, position, file.name), file, save=False)
                    saved.append(source.file)
                source.save()
    except IntegrityError:
        for file in saved:
            file.delete(save=False)
        raise
    return generation


def _refused_form(request: HttpRequest, form, name: str) -> HttpResponse:
    if request.htmx:
        # The form comes back in place, with each error next to its field
        # and everything the member typed still in it.
        response = render(request, "generations/dashboard.html#generation-form",
                          {"form": form, "kind": name}, status=400)
        return reswap(retarget(response, f"#{name}-form"), "outerHTML")
    context = _dashboard_context(request, form=form, mode=name)
    return render(request, "generations/dashboard.html", context, status=400)


def _submit(request: HttpRequest, form_class, name: str) -> HttpResponse:
    # The known balance, as read in the background: a submission makes no PixVerse call.
    kwargs = _form_kwargs(request, name)
    form = form_class(request.POST, request.FILES, **kwargs)
    if not kwargs["keys"]:
        form.add_error(None, _("Add your PixVerse API key first (API key, in the menu)."))
    if not form.is_valid():
        return _refused_form(request, form, name)
    code = _job_code(request, form)
    generation = _sent_before(request, code)
    if generation is None:
        try:
            # The limit is checked again under a lock: another job may just have taken the credits.
            generation = keys.reserve(form.cleaned_data.get("key"), form.cost(),
                                      lambda: _store_generation(request, form, name, code))
        except keys.LimitReached as refused:
            form.add_error("key" if form.key_shown else None, refused.message)
            return _refused_form(request, form, name)
        except IntegrityError:
            # The same form, sent at the same moment: the other post stored the job.
            generation = _sent_before(request, code)
            if generation is None:
                raise
        else:
            _start_worker(request)
    if request.htmx:
        response = _card(request, generation)
        # The form stays in the page: a new token, so that sending it again makes a new job.
        response.write(form_class()["submission"].as_widget(attrs={"hx-swap-oob": "true"}))
        return response
    messages.success(request, _("Your video is on its way."))
    # The form comes back with the same settings, to change one and go again.
    return redirect(cards.remix_path(generation))


@login_required
@require_POST
def create_text(request: HttpRequest) -> HttpResponse:
    roles.require_generate(request.user)
    return _submit(request, TextToVideoForm, "text")


@login_required
@require_POST
def create_image(request: HttpRequest) -> HttpResponse:
    roles.require_generate(request.user)
    return _submit(request, ImageToVideoForm, "image")


@login_required
@require_POST
def create(request: HttpRequest, kind: str) -> HttpResponse:
    """A new job of any other kind (transition, extend, sound effect, lip sync, fusion)."""
    roles.require_generate(request.user)
    if kind not in FORMS:
        raise Http404
    return _submit(request, FORMS[kind], kind)


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
        if request.htmx:
            return _job_gone(request, code)
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
    """Try again with the same settings (and key), as a new job with its own trace id."""
    roles.require_generate(request.user)
    original = _own_card_action_target(request, code)
    if isinstance(original, HttpResponse):
        return original
    try:
        choice = keys.choice_for_job(request.user, original)
        generation = keys.reserve(choice, original.credits, original.retry)
    except keys.LimitReached as refused:
        if request.htmx:
            return render(request, "generations/dashboard.html#job-refused", {"message": refused.message})
        messages.error(request, refused.message)
        return redirect("dashboard")
    _start_worker(request)
    return _card(request, generation) if request.htmx else redirect("dashboard")


@login_required
@require_POST
def cancel(request: HttpRequest, code) -> HttpResponse:
    generation = _own_card_action_target(request, code)
    if isinstance(generation, HttpResponse):
        return generation
    generation.cancel()
    return _card(request, generation) if request.htmx else redirect("dashboard")


@login_required
@require_GET
def video(request: HttpRequest, code) -> HttpResponse:
    """Our stored copy of the video; members download only what they may see."""
    generation, stored = _stored_file(request, code, "video_file")
    download = "download" in request.GET
    return media.serve(request, stored, content_type="video/mp4", as_attachment=download,
                       filename=f"pixverse-{generation.video_id}.mp4")


def _stored_file(request: HttpRequest, code, field: str):
    """A visible job and one of its stored files (video, source image, poster); else 404."""
    generation = _get_visible_generation(request, code)
    stored = getattr(generation, field)
    if not stored:
        raise Http404
    return generation, stored


@login_required
@require_GET
def source_image(request: HttpRequest, code) -> HttpResponse:
    _generation, stored = _stored_file(request, code, "source_image")
    return media.serve(request, stored)


@login_required
@require_GET
def input_file(request: HttpRequest, code, position: int) -> HttpResponse:
    """One of a visible job's inputs (a frame, a reference, the uploaded video or sound)."""
    generation = _get_visible_generation(request, code)
    source = generation.inputs.filter(position=position).first()
    if source is None or not source.file:
        raise Http404
    return media.serve(request, source.file)


@login_required
@require_GET
def poster(request: HttpRequest, code) -> HttpResponse:
    """The video's poster frame (read from our copy), for members who may see the job."""
    _generation, stored = _stored_file(request, code, "poster")
    return media.serve(request, stored, content_type="image/jpeg")


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
    try:
        page = page_of(generations, request.GET.get("page"), HISTORY_PAGE_SIZE)
    except PageOutOfRange:
        raise Http404(_("There is no such page of the history.")) from None
    context = {"form": form, "page": page}
    status = 400 if form.errors else 200
    if request.htmx and request.htmx.target == "results":
        return render(request, "generations/history.html#results", context, status=status)
    return render(request, "generations/history.html", context, status=status)


@login_required
@require_GET
@vary_on_headers("HX-Request")
def detail(request: HttpRequest, code) -> HttpResponse:
    generation = Generation.objects.visible_to(request.user).filter(code=code).first()
    if generation is None:
        if request.htmx:  # the page's poll
            return _job_gone(request, code)
        raise Http404
    context = {"generation": generation, "can_delete": _may_delete(request, generation),
               "inputs": list(generation.inputs.all())}
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
    """The member's running jobs, those started and those finished since ?since= (an ISO time)."""
    mine = Generation.objects.filter(owner=request.user)
    given = request.GET.get("since", "")
    try:
        since = parse_datetime(given) if given else timezone.now()
        if since is None:
            raise ValueError(given)
        if timezone.is_naive(since):
            since = timezone.make_aware(since)
        since = since.astimezone(datetime.UTC)  # a time out of range in UTC fails here, not in SQL
    except (ValueError, OverflowError):
        return JsonResponse({"error": _("since must be a time in ISO 8601, like 2025-01-31T10:00:00Z.")},
                            status=400)
    finished = mine.filter(finished_at__gt=since).order_by("finished_at")[:10]
    # Started since, maybe in another tab: open dashboards add the cards they lack. A job's
    # created time is set before it is stored, so a few seconds more are asked for.
    started = (mine.filter(created__gt=since - datetime.timedelta(seconds=5))
               .order_by("created").values_list("code", flat=True)[:10])
    return JsonResponse({
        "now": timezone.now().isoformat(),
        "started": [{"id": f"job-{code}", "card": reverse("card", args=[code])} for code in started],
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


def _usage_filters(request: HttpRequest) -> UsageFilterForm:
    # A member who is not staff gets the portal's own "forbidden", not the admin's sign-in.
    if not request.user.is_staff:
        raise PermissionDenied
    data = request.GET.copy()
    if not data.get("month"):  # the picker shows the month the figures are of
        data["month"] = str(Month.of())
    form = UsageFilterForm(data, members=get_user_model().objects.order_by("username"),
                           keys=ApiCredential.objects.filter(user__isnull=True).order_by("name", "pk"))
    form.is_valid()
    return form


def _usage_page(request: HttpRequest, form: UsageFilterForm) -> HttpResponse:
    jobs = form.apply(Generation.objects.all())
    month = form.chosen_month
    context = {"form": form, "month": month, "month_param": str(month), "records": usage_records(jobs),
               "usage": team_usage(jobs, month),
               "previous_month": str(month.previous()) if month.previous().within_range() else "",
               # No month after this one: nothing has been spent in it yet.
               "next_month": str(month.next()) if month.next().within_range()
               and str(month.next()) <= str(Month.of()) else ""}
    return render(request, "generations/usage.html", context, status=400 if form.errors else 200)


@login_required
@require_GET
def usage(request: HttpRequest) -> HttpResponse:
    """The team's credits, jobs and failures of a month, per member, filtered by the URL."""
    return _usage_page(request, _usage_filters(request))


@login_required
@require_GET
def usage_csv(request: HttpRequest) -> HttpResponse:
    """The jobs the usage page counts, one row each; with a wrong filter, the page saying so."""
    form = _usage_filters(request)
    if form.errors:
        return _usage_page(request, form)
    filename = f"pixverse-usage-{form.chosen_month}.csv"
    response = HttpResponse(content_type="text/csv; charset=utf-8",
                            headers={"Content-Disposition": content_disposition_header(True, filename)})
    response.write("\ufeff")  # the byte order mark: spreadsheets then read the names as UTF-8
    write_csv(response, form.apply(Generation.objects.all()))
    return response


# --- The member's PixVerse key -----------------------------------------------------------------


@sensitive_post_parameters("api_key")
@login_required
def api_key(request: HttpRequest) -> HttpResponse:
    roles.require_generate(request.user)  # a guest stores no key and spends nothing
    credential = _credential(request)
    form = ApiKeyForm()
    confirm_removal = credential is not None and "remove" in request.GET
    if request.method == "POST":
        action = request.POST.get("action", "save")
        if action == "remove" and credential:
            if request.POST.get("confirm") != "1":
                # One click does not remove a key: the page asks first (also without JavaScript).
                return render(request, "generations/api_key.html",
                              {"credential": credential, "form": form, "confirm_removal": True,
                               **_key_page_context(request)})
            credential.delete()
            messages.success(request, _("Your PixVerse key is removed."))
            return redirect("api-key")
        if action == "test" and credential:
            # No form here: the stored key is tested, and a refusal is said in a message.
            balance, refusal = _check_key(credential.client(max_wait=WEB_MAX_WAIT))
            audit.record(request.user, "key_tested", credential, accepted=balance is not None)
            if balance:
                ApiCredential.objects.filter(pk=credential.pk).update(verified_at=timezone.now())
                ApiCredential.record_balance(credential.key_hash, balance)
                ApiCredential.mark_working(credential.key_hash)
                _say_key_accepted(request, balance, _("PixVerse accepts your key: %(credits)s credits."))
            else:
                messages.error(request, refusal)
            return redirect("api-key")
        if action == "sandbox" and settings.PIXVERSE_SANDBOX_ENABLED:
            return _take_sandbox_key(request, credential)
        form = ApiKeyForm(request.POST)
        if form.is_valid() and (balance := _verify_key(form)):
            credential = _store_key(request, credential, form.cleaned_data["api_key"])
            ApiCredential.record_balance(credential.key_hash, balance)
            _say_key_accepted(request, balance, _("Your PixVerse key is saved: %(credits)s credits."))
            return redirect("api-key")
    status = 400 if form.errors else 200
    context = {"credential": credential, "form": form, "confirm_removal": confirm_removal,
               **_key_page_context(request)}
    return render(request, "generations/api_key.html", context, status=status)


def _key_page_context(request: HttpRequest) -> dict:
    return {"sandbox_enabled": settings.PIXVERSE_SANDBOX_ENABLED,
            "keys_url": settings.PIXVERSE_KEYS_URL}


def _say_key_accepted(request: HttpRequest, balance: Balance, text: str) -> None:
    """Good news in green, unless the key cannot pay for a single video yet."""
    if balance.total > 0:
        messages.success(request, text % {"credits": balance.total})
    else:
        messages.warning(request, _("PixVerse accepts this key, but it has 0 credits: videos will be "
                                    "refused until credits are added to its PixVerse account."))


@sensitive_variables("raw_key")
def _store_key(request: HttpRequest, credential: ApiCredential | None, raw_key: str) -> ApiCredential:
    """Store the member's new key, checked just now; a key replaced is in the audit log even when
    its last four characters are the same (the change of the row says only what shows)."""
    replaced = credential.masked if credential else None
    credential = credential or ApiCredential(user=request.user)
    credential.set_key(raw_key)
    credential.verified_at = timezone.now()
    credential.save()
    if replaced:
        audit.record(request.user, "key_replaced", credential, old=replaced, new=credential.masked)
    return credential


@sensitive_variables("raw_key")
def _take_sandbox_key(request: HttpRequest, credential: ApiCredential | None) -> HttpResponse:
    """The local run's way to a key: a new sandbox account, its key stored for this member unseen."""
    from generations.sandbox.models import SandboxAccount

    account, raw_key = SandboxAccount.issue(request.user.get_username())
    credential = _store_key(request, credential, raw_key)
    ApiCredential.want_balance(credential.key_hash)
    transaction.on_commit(queue.kick_scheduler)
    messages.success(request, _("You now have a sandbox key with %(credits)s credits. Its videos are "
                                "simulated by the portal's built-in sandbox, not made by PixVerse.")
                     % {"credits": account.credits})
    return redirect("api-key")


@sensitive_variables()
def _verify_key(form: ApiKeyForm) -> Balance | None:
    """Check a new key with the balance call; on failure, say why next to the field."""
    from generations.pixverse import PixVerseClient

    try:
        client = PixVerseClient(form.cleaned_data["api_key"], max_wait=WEB_MAX_WAIT)
    except InvalidKey:
        form.add_error("api_key", _("This key has characters a PixVerse key cannot have. "
                                    "Paste it again, without spaces or other marks."))
        return None
    return _check_key(client, form)[0]


def _check_key(client, form: ApiKeyForm | None = None) -> tuple[Balance | None, str]:
    """The key's balance, within about WEB_KEY_CHECK_SECONDS; else why not (next to the form's field)."""
    try:
        return client.balance(read_timeout=WEB_KEY_CHECK_SECONDS), ""
    except InvalidKey:
        refusal = _("PixVerse does not accept this key. Check that it is complete.")
    except RateLimited:
        refusal = _("PixVerse is busy with this key; try again in a few seconds.")
    except PixVerseError as e:
        logger.warning("key check failed: %s trace_id=%s", e.kind, e.trace_id)
        refusal = _("PixVerse could not be reached to check the key; try again.")
    if form is not None:
        form.add_error("api_key", refusal)
    return None, refusal


# --- The member's account ----------------------------------------------------------------------------------


@login_required
def account(request: HttpRequest) -> HttpResponse:
    """The member's e-mail address (for password resets) and time zone, and their usage this month."""
    chosen = request.COOKIES.get(TIME_ZONE_CHOSEN_COOKIE) and request.COOKIES.get(TIME_ZONE_COOKIE, "")
    initial = {"email": request.user.email, "time_zone": chosen or ""}
    form = AccountForm(request.POST or None, user=request.user, initial=initial)
    if request.method == "POST" and form.is_valid():
        request.user.email = form.cleaned_data["email"]
        request.user.save(update_fields=["email"])
        messages.success(request, _("Your account is saved."))
        response = redirect("account")
        zone = form.cleaned_data["time_zone"]
        year = 365 * 24 * 3600
        if zone:
            response.set_cookie(TIME_ZONE_COOKIE, zone, max_age=year, samesite="Lax")
            response.set_cookie(TIME_ZONE_CHOSEN_COOKIE, "1", max_age=year, samesite="Lax")
        else:
            # Back to the browser's own zone, which portal.js writes on the next page.
            response.delete_cookie(TIME_ZONE_CHOSEN_COOKIE, samesite="Lax")
        return response
    context = {"form": form, "current_zone": timezone.get_current_timezone_name(),
               "own_usage": member_usage(request.user)}
    return render(request, "generations/account.html", context, status=400 if form.errors else 200)


# --- Invitations -------------------------------------------------------------------------------------------


def accept_invitation(request: HttpRequest, token: str) -> HttpResponse:
    """An invitation's one-time link: the invited person picks a user name and password, once."""
    invitation = Invitation.open_one(token)
    if invitation is None:
        return render(request, "registration/invitation_gone.html", status=410)
    form = InvitationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            user = form.save(commit=False)
            user.email = invitation.email
            user.save()
            if not invitation.accept(user):  # the same link, used at the same moment elsewhere
                transaction.set_rollback(True)
                return render(request, "registration/invitation_gone.html", status=410)
            roles.set_role(user, roles.Role(invitation.role))
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, _("Welcome to the team, %(name)s.") % {"name": user.get_username()})
        return redirect("dashboard")
    return render(request, "registration/invitation.html", {"form": form, "invitation": invitation},
                  status=400 if form.errors else 200)


# --- Sign-in and sign-up ------------------------------------------------------------------------------------


class SignInView(LoginView):
    """Django's sign-in, answering a failed attempt with 400.

    django-axes counts the failures and answers a locked-out sign-in with 429
    (signin_locked_out, below), here and on the admin's sign-in alike.
    """

    def form_invalid(self, form):
        response = super().form_invalid(form)
        response.status_code = 400
        return response

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        # Why sign-in is asked: a page that needs it, or an open page whose session ended.
        next_url = context.get("next") or ""
        context["session_note"] = not context["form"].errors and (
            bool(self.request.GET.get("expired")) or next_url not in ("", "/"))
        return context


def signup(request: HttpRequest) -> HttpResponse:
    if not settings.PORTAL_SIGNUP_ENABLED:
        raise Http404
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("api-key")
    return render(request, "registration/signup.html", {"form": form},
                  status=400 if form.errors else 200)


# --- Sign-in lockouts and password reset --------------------------------------------------------------------


def signin_locked_out(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """django-axes' answer to a locked-out sign-in (AXES_LOCKOUT_CALLABLE): the sign-in page, 429.

    The form is not bound: checking it again would count one more failure.
    """
    minutes = math.ceil(settings.AXES_COOLOFF_TIME.total_seconds() / 60)
    message = ngettext(
        "Too many failed sign-ins from here. Try again in %(minutes)s minute, or reset your password.",
        "Too many failed sign-ins from here. Try again in %(minutes)s minutes, or reset your password.",
        minutes) % {"minutes": minutes}
    form = AuthenticationForm(request, initial={"username": accounts.signin_username(request, credentials)})
    next_url = request.POST.get("next") or request.GET.get("next", "")
    return render(request, "registration/login.html",
                  {"form": form, "locked_out": message, "next": next_url}, status=429)


class QueuedPasswordResetView(PasswordResetView):
    """Django's password reset, limited per address and per client, its mail sent by a worker.

    Every valid request gets the same answer at once, whether an account has
    the address or not and whether the limits let a mail go.
    """

    def form_valid(self, form):
        email = form.cleaned_data["email"]
        if accounts.password_reset_allowed(email, accounts.client_address(self.request)):
            queue.send_password_reset(email, domain=self.request.get_host(),
                                      use_https=self.request.is_secure(), language=get_language())
        return HttpResponseRedirect(self.get_success_url())


class LockoutLiftingPasswordResetConfirmView(PasswordResetConfirmView):
    """Setting a new password from the mailed link also lifts the account's sign-in lockouts."""

    def form_valid(self, form):
        response = super().form_valid(form)
        reset_lockouts(username=form.user.get_username())
        return response


# --- PixVerse's webhooks ---------------------------------------------------------------------


@csrf_exempt
@require_POST
@sensitive_variables("secret")
def pixverse_webhook(request: HttpRequest) -> HttpResponse:
    """PixVerse says a video is finished: have its job's status read now.

    Only a signed, fresh, first-seen webhook is taken (generations/webhooks.py),
    and even then its body decides nothing: the status read does. An unknown
    video is answered "ok" too, so that PixVerse stops sending it.
    """
    secret = settings.PIXVERSE_WEBHOOK_SECRET
    if not secret:
        raise Http404
    try:
        body = _webhook_body(request)
        headers = webhooks.check_headers(request.headers.get("Webhook-Timestamp"),
                                         request.headers.get("Webhook-Nonce"),
                                         request.headers.get("Webhook-Signature"), now=time.time())
        if not webhooks.signature_matches(secret, headers, body):
            raise webhooks.Refused(403, "bad signature")
        # Shared by every process through the cache (Redis in production).
        if not cache.add(webhooks.nonce_cache_key(headers.nonce), True, webhooks.NONCE_KEEP_SECONDS):
            raise webhooks.Refused(409, "nonce seen before")
        video_id = webhooks.video_id_of(body)
    except webhooks.Refused as refused:
        log = logger.warning if refused.status == 403 else logger.info
        log("PixVerse webhook refused (%s): %s", refused.status, refused.reason)
        return HttpResponse(refused.reason, status=refused.status, content_type="text/plain")
    # Only jobs with work left (the scheduler's partial index), not the whole history.
    running = Generation.objects.filter(next_attempt_at__isnull=False, video_id=video_id,
                                        status=Generation.Status.RUNNING)
    if any([job.read_soon() for job in running]):
        transaction.on_commit(queue.kick_scheduler)  # a no-op while a scheduler loop is alive
    else:
        logger.info("PixVerse webhook for video %s: no running job has it", video_id)
    return HttpResponse("ok", content_type="text/plain")


def _webhook_body(request: HttpRequest) -> bytes:
    """The body, refused (413) past webhooks.MAX_BODY_BYTES without reading more than that."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > webhooks.MAX_BODY_BYTES:
        raise webhooks.Refused(413, "body too large")
    body = request.read(webhooks.MAX_BODY_BYTES + 1)
    if len(body) > webhooks.MAX_BODY_BYTES:
        raise webhooks.Refused(413, "body too large")
    return body
