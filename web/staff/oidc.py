"""Staff sign-in with the school's own accounts: OpenID Connect with Authlib's Flask client (/staff/oidc).

GET /staff/oidc/start sends the browser to the provider (the authorization code flow with PKCE S256,
`state` and `nonce`, kept by Authlib in the session until the callback, which uses them up); GET
/staff/oidc/callback exchanges the code, verifies the ID token (issuer, audience, signature against the
provider's key set, fetched again for a key id it does not know, expiry, nonce) and the email
(`email_verified`, WEEKLY_TRENDS_OIDC_ALLOWED_DOMAINS), and opens the staff session of old: the row id of a
staff token open_staff_session_by_email() issues to the staff member with that email, whatever its case.
So revocation works as for printed tokens: a staff member removed, or their tokens revoked, is out on
the next request. Anything else (a state missing, forged or replayed, an error from the provider, a token
that fails a check) is a plain page and a 400, and no session; an unknown or unverified email, a 403 page
saying who to ask.

Without WEEKLY_TRENDS_OIDC_ISSUER these routes are 404 and staff sign in with printed tokens only.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.flask_client import OAuth
from flask import Blueprint, Flask, Response, current_app, render_template, request, session, url_for
from joserfc.errors import JoseError
from werkzeug.exceptions import NotFound

from web import db, ratelimit
from web.auth import STAFF, same_origin_for_unsafe_methods
from web.params import see_other

bp = Blueprint("staff_oidc", __name__, url_prefix="/staff/oidc")
same_origin_for_unsafe_methods(bp)

EXTENSION = "weekly_trends_oidc"
PROVIDER_NAME = "school"
PENDING_PREFIX = f"_state_{PROVIDER_NAME}_"  # Authlib's session keys of a pending sign-in
SCOPE = "openid email profile"
SESSION_TTL = "12 hours"  # a working day; the provider's own session brings the next one without a password
ID_TOKEN_KEY = "staff_oidc_id_token"  # the ID token, sent back as id_token_hint when signing out
PROVIDER_TIMEOUT = 10  # seconds, each call to the provider
MAX_PARAMETER = 4096
EMAIL = re.compile(
    r"[^@\s]+@[^@\s]+"
)  # staff_member_email_format's  # characters of code or state; longer is no provider's


def init_app(app: Flask) -> None:
    """Register the provider with Authlib when WEEKLY_TRENDS_OIDC_ISSUER is set (its metadata is read on
    the first sign-in, not here: the app starts while the provider is away)."""
    settings = app.config["SETTINGS"]
    issuer = settings.oidc_issuer
    if not issuer:
        return
    oauth = OAuth(app)
    client = oauth.register(
        PROVIDER_NAME,
        client_id=settings.oidc_client_id,
        client_secret=settings.oidc_client_secret,
        server_metadata_url=issuer.rstrip("/") + "/.well-known/openid-configuration",
        client_kwargs={"scope": SCOPE, "code_challenge_method": "S256", "timeout": PROVIDER_TIMEOUT},
    )
    app.extensions[EXTENSION] = {
        "client": client,
        "issuer": issuer,
        "allowed_domains": settings.oidc_allowed_domains,
    }


def enabled() -> bool:
    return EXTENSION in current_app.extensions


def _config() -> dict:
    if not enabled():
        raise NotFound("Sign-in with the school's accounts is not configured (WEEKLY_TRENDS_OIDC_ISSUER).")
    return current_app.extensions[EXTENSION]


def refused_page(status: int, title: str, text: str) -> Response:
    body = render_template("staff_oidc_refused.html", title=title, text=text, contact=_contact())
    return Response(body, status=status, mimetype="text/html")


def _contact() -> str:
    return current_app.config["SETTINGS"].school_contact or "the person who runs Weekly Trends at your school"


def _unreachable(error: Exception) -> Response:
    current_app.logger.warning("OpenID provider unreachable: %s", type(error).__name__)
    return refused_page(
        503,
        "The school's sign-in service did not answer",
        "Weekly Trends could not reach the school's sign-in service. Try again in a few minutes.",
    )


@bp.get("/start")
def start():
    """To the provider: Authlib keeps state, nonce and the PKCE verifier in the session for the callback."""
    client = _config()["client"]
    try:
        client.load_server_metadata()
        metadata_issuer = client.server_metadata.get("issuer")
        if metadata_issuer != _config()["issuer"]:
            # OpenID Connect Discovery 4.3: the document must name the issuer it was fetched for.
            client.server_metadata.clear()
            return refused_page(
                503, "The school's sign-in service is misconfigured", "Its metadata names another issuer."
            )
        # One pending sign-in per browser, the latest: each start would otherwise add to the cookie.
        for key in [k for k in session if k.startswith(PENDING_PREFIX)]:
            session.pop(key)
        return client.authorize_redirect(url_for(".callback", _external=True))
    except (requests.RequestException, ValueError) as error:
        client.server_metadata.clear()
        return _unreachable(error)


@bp.get("/callback")
def callback():
    if request.headers.get("Sec-Fetch-Site") == "cross-site":
        # From the provider's site: the browser withholds the SameSite=Strict session cookie that holds
        # the pending state. A page of ours that goes on to the same URL sends it (a same-site navigation).
        return Response(
            render_template(
                "staff_oidc_continue.html",
                target=request.full_path,
                title="Signing in",
                text="Continue to Weekly Trends",
            ),
            mimetype="text/html",
        )
    config = _config()
    client = config["client"]
    ratelimit.refuse_if_locked_out()  # failed callbacks count toward the sign-in lockout (bad_callback())
    if any(len(request.args.get(name, "")) > MAX_PARAMETER for name in ("code", "state")):
        return bad_callback("The sign-in answer is malformed.")
    if request.args.get("iss", config["issuer"]) != config["issuer"]:
        # RFC 9207: the answer names the provider that sent it; another one's is a mix-up attack.
        return bad_callback("The sign-in answer comes from another sign-in service.")
    try:
        token = client.authorize_access_token(
            claims_options={
                "iss": {"essential": True, "value": config["issuer"]},
                "aud": {"essential": True, "value": client.client_id},
                "exp": {"essential": True},
            },
            leeway=60,
        )
    except OAuthError as error:  # a state missing, forged or used; an error from the provider; a refused code
        return bad_callback(f"The sign-in was not completed: {error.error}: {error.description or ''}".strip(": "))
    except JoseError as error:  # the ID token: signature, key, issuer, audience, expiry, nonce
        return bad_callback(f"The sign-in token did not pass its checks: {error.error}: {error.description or ''}")
    except requests.RequestException as error:
        return _unreachable(error)
    except (ValueError, KeyError, TypeError) as error:  # an answer of the provider's that is not what it should be
        current_app.logger.warning("OpenID callback: malformed answer (%s)", type(error).__name__)
        return bad_callback("The sign-in answer is malformed.")
    claims = token.get("userinfo")
    if not claims or not token.get("id_token"):
        return bad_callback("The sign-in answer holds no ID token.")
    email = claims.get("email")
    verified = claims.get("email_verified") is True or claims.get("xms_edov") is True
    domain = email.rpartition("@")[2].lower() if isinstance(email, str) else ""
    allowed = config["allowed_domains"]
    if not isinstance(email, str) or not EMAIL.fullmatch(email) or not verified or (allowed and domain not in allowed):
        return refused_page(
            403,
            "This account cannot sign in here",
            "The school's sign-in service did not vouch for this account's email address"
            if not verified or not isinstance(email, str) or not EMAIL.fullmatch(email)
            else f"{email} is not an address of the school's staff.",
        )
    with db.staff() as conn:
        token_id = conn.execute(
            "select open_staff_session_by_email(%s, %s::interval) as id", (email, SESSION_TTL)
        ).fetchone()["id"]
    if token_id is None:
        return refused_page(403, "This account cannot sign in here", f"{email} is not on Weekly Trends' staff list.")
    session[STAFF.session_key] = token_id
    session[ID_TOKEN_KEY] = token["id_token"]
    return see_other(url_for("staff.search"))


def bad_callback(text: str) -> Response:
    ratelimit.record_failure()
    return refused_page(400, "The sign-in did not work", text)


def end_session() -> Callable[[], Response] | None:
    """After sign-out, for a session the provider opened, when it has an end_session_endpoint
    (RP-initiated logout): a page of ours that goes on there, with the session's ID token as the hint,
    to end the provider's session too. A page, not a redirect: the staff pages' Content-Security-Policy
    (form-action 'self') stops a sign-out form's redirect to another site. None: the sign-in page."""
    id_token = session.pop(ID_TOKEN_KEY, None)
    if id_token is None or not enabled():
        return None
    client = _config()["client"]
    try:
        metadata = client.load_server_metadata()
    except (requests.RequestException, ValueError):
        return None
    if not metadata.get("end_session_endpoint"):
        return None
    target = client.create_logout_url(
        post_logout_redirect_uri=url_for("staff.login", _external=True),
        id_token_hint=id_token,
        client_id=client.client_id,
    )["url"]
    return lambda: Response(
        render_template(
            "staff_oidc_continue.html",
            target=target,
            title="Signed out",
            text="You are signed out of Weekly Trends. Now signing you out of your school account",
        ),
        mimetype="text/html",
    )
