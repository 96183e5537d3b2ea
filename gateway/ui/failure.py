"""The citizen's failure page: what happened, what to do, the way back to the e-service, and a
reference id that support can find in the log. Never a stack trace.

A failure is often answered to a POST, so the page's language switch cannot simply reload it;
it leads to `/error?e=…`, the same failure signed with itsdangerous, which shows it again.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import astuple, dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from gateway.settings import ClientSettings, Settings
from gateway.ui.pages import PageRenderer
from gateway.ui.remembered import LAST_SERVICE_COOKIE, recall

log = logging.getLogger("portvakt.errors")
ERROR_PATH = "/error"
SWITCH_VALID_SECONDS = 3600


@dataclass(frozen=True)
class WayBack:
    """The redirect that answers an ended login with an error, and whose login it was."""

    url: str
    client_id: str


@dataclass(frozen=True)
class Failure:
    """One failure as its page shows it, and as `/error?e=…` carries it signed."""

    reason: str
    status: int
    back_url: str | None
    client_id: str | None
    reference: str


def N_(message: str) -> str:
    return message


# reason -> (what happened, what the citizen can do); translated in the page's language.
ERROR_TEXTS: dict[str, tuple[str, str]] = {
    "bad_request": (
        N_("The e-service sent a request we cannot accept"),
        N_("Go back to the e-service and try again. If it happens again, contact the e-service."),
    ),
    "login_not_found": (
        N_("Your login has expired or is already finished"),
        N_("Go back to the e-service and start the login again."),
    ),
    "cancelled": (
        N_("You cancelled the login"),
        N_("You can go back to the e-service and start again whenever you want."),
    ),
    "failed": (
        N_("The login did not succeed"),
        N_("Go back to the e-service and try again, or choose another e-ID."),
    ),
    "state_lost": (
        N_("The login could not be completed"),
        N_("The answer from the e-ID service did not match a login in progress. Start again."),
    ),
    "form_rejected": (
        N_("The page had expired"),
        N_("The form was old or sent from another page. Go back to the e-service and start again."),
    ),
    "wrong_browser": (
        N_("The login was started in another browser"),
        N_("Finish the login in the browser where you started it, or start again here."),
    ),
    "unavailable": (
        N_("The e-ID service is not available right now"),
        N_("Try again in a few minutes, or choose another e-ID."),
    ),
    "unmet_loa": (
        N_("Your e-ID does not meet the e-service's security requirements"),
        N_("Use an e-ID with a higher level of assurance, or contact the e-service."),
    ),
    "no_idp": (
        N_("No e-ID service can take the login right now"),
        N_("The e-ID services this e-service accepts are not available. Try again later."),
    ),
    "unknown_principal": (
        N_("The e-ID belongs to someone else"),
        N_("The e-service asked for a particular person. Log in with that person's own e-ID."),
    ),
    "wrong_person": (
        N_("You logged in as another person than the e-service asked for"),
        N_(
            "The e-service asked for a particular person. Go back to the e-service and log in "
            "with that person's own e-ID, or contact the e-service if this is wrong."
        ),
    ),
    "not_signed": (
        N_("The signature was not made"),
        N_(
            "The e-ID service did not confirm your signature, so nothing has been signed. Go "
            "back to the e-service and try again."
        ),
    ),
    "store_unavailable": (
        N_("The login service is temporarily unavailable"),
        N_("Nothing has been saved. Wait a minute and try again."),
    ),
    "rate_limited": (  # the limit's window is one minute: "a minute" is always enough
        N_("Please wait a minute"),
        N_(
            "There have been very many login attempts just now, so new ones are paused for a "
            "short while. Wait a minute, then try again. Nothing is wrong with your e-ID."
        ),
    ),
    "not_found": (
        N_("We could not find that page"),
        N_("Check the address, or go back to the e-service and start the login again."),
    ),
    "server_error": (
        N_("Something went wrong on our side"),
        N_("Go back to the e-service and try again. If it keeps happening, contact support."),
    ),
}


# An e-service's request we could not trust: the way back is not the browser's last e-service.
REQUEST_NAMED_AN_E_SERVICE = frozenset({"bad_request"})


class FailurePages:
    def __init__(self, settings: Settings, pages: PageRenderer, secret_key: str) -> None:
        self._settings = settings
        self._pages = pages
        self._serializer = URLSafeTimedSerializer(secret_key, salt="portvakt.failure-page")

    def render(
        self,
        request: Request,
        reason: str,
        status: int,
        way_back: WayBack | None = None,
        detail: str = "",
        exc_info: BaseException | None = None,
    ) -> Response:
        """`way_back` names the e-service this request proves (its pending login) and answers
        that login: only that e-service is named and branded on the page. Without one the
        citizen is led to its start page or, when the request names no
        e-service, to that of the e-service which started this browser's latest login (from a
        cookie, so unnamed). `detail` goes to the log under the page's reference, never to the
        page."""
        reference = secrets.token_hex(4)
        level = logging.ERROR if status >= 500 else logging.INFO
        log.log(level, "%s (reference %s): %s", reason, reference, detail, exc_info=exc_info)
        request.state.error_reference = reference
        client = self._settings.client(way_back.client_id if way_back else "")
        back_url = way_back.url if way_back else self._way_back(request, reason, client)
        client_id = client.client_id if client else None
        failure = Failure(reason, status, back_url, client_id, reference)
        return self._page(request, failure, self._serializer.dumps(list(astuple(failure))))

    def _way_back(self, request: Request, reason: str, client: ClientSettings | None) -> str | None:
        if client is not None:
            return client.home_page
        if reason in REQUEST_NAMED_AN_E_SERVICE:  # not the remembered one: it would mislead
            return None
        remembered = self._settings.client(recall(request, LAST_SERVICE_COOKIE) or "")
        return remembered.home_page if remembered is not None else None

    async def show(self, request: Request) -> Response:
        """GET /error?e=…: the same failure again, in the language the citizen switched to."""
        try:
            token = request.query_params.get("e", "")
            failure = Failure(*self._serializer.loads(token, max_age=SWITCH_VALID_SECONDS))
        except (BadSignature, ValueError, TypeError):
            return self.render(request, "not_found", 404)
        return self._page(request, failure, token)

    def _page(self, request: Request, failure: Failure, signed: str) -> Response:
        title, advice = ERROR_TEXTS[failure.reason]
        client = self._settings.client(failure.client_id or "")
        context = {
            "title": title,
            "advice": advice,
            "back_url": failure.back_url,
            "reference": failure.reference,
            "client_id": client.client_id if client else None,
            "page_url": f"{ERROR_PATH}?e={signed}",
        }
        return self._pages.render(request, "error.html", context, failure.status)
