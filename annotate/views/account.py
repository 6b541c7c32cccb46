"""The signed-in user's account page: API tokens (created, listed, revoked), and the sign-in lock-out page."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.views.decorators.http import require_GET, require_POST

from annotate.api.auth import lockout_message
from annotate.models import ApiToken
from annotate.models.tokens import TokenError, api_token_create, api_token_revoke

TOKENS_SHOWN = 200


def _tokens_page(request, *, status: int = 200, **context):
    """The full page, or only its tokens section when htmx asked for it."""
    context = {
        "tokens": ApiToken.objects.filter(user=request.user)[:TOKENS_SHOWN],
        "default_days": settings.TANDEM_TOKEN_DAYS,
        "max_days": settings.TANDEM_TOKEN_MAX_DAYS,
        "values": {},
        "errors": {},
        **context,
    }
    if request.htmx:
        # htmx swaps no 4xx answer; the refused form is still the fragment to show.
        return render(request, "annotate/account_tokens.html", context)
    return render(request, "annotate/account.html", context, status=status)


@login_required
@require_GET
def account(request):
    return _tokens_page(request)


@login_required
@require_POST
def token_create(request):
    name = request.POST.get("name", "")
    days_text = (request.POST.get("expires_in_days") or "").strip()
    values = {"name": name, "expires_in_days": days_text}
    if days_text and not (days_text.isascii() and days_text.isdigit()):
        errors = {"expires_in_days": f"Enter a whole number of days (not {days_text!r})."}
        return _tokens_page(request, status=400, values=values, errors=errors)
    try:
        new = api_token_create(user=request.user, name=name, days=int(days_text) if days_text else None)
    except TokenError as exc:
        return _tokens_page(request, status=400, values=values, errors={exc.field or "name": str(exc)})
    # Rendered, not redirected: the key exists only in this answer.
    return _tokens_page(request, new_token=new)


@login_required
@require_POST
def token_revoke(request, token_id: int):
    token = get_object_or_404(ApiToken, pk=token_id, user=request.user)
    api_token_revoke(token=token)
    if request.htmx:
        return _tokens_page(request, revoked=token)
    return redirect("account")


def lockout_response(request, original_response=None, credentials=None):
    """django-axes' lock-out answer (AXES_LOCKOUT_CALLABLE): the sign-in form with the reason, or JSON for the API."""
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    message = lockout_message(request, username)
    retry_after = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    if request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", ""):
        response = JsonResponse({"detail": message, "code": "locked_out", "field": None}, status=429)
    else:
        form = AuthenticationForm(request)
        response = render(
            request, "registration/login.html", {"form": form, "lockout": message, "username": username}, status=429
        )
    response["Retry-After"] = retry_after
    return response


urlpatterns = [
    path("", account, name="account"),
    path("tokens/new/", token_create, name="account-token-create"),
    path("tokens/<int:token_id>/revoke/", token_revoke, name="account-token-revoke"),
]
