"""What an error page says to a family, in the request's language: a title and what happened, in words
(never a protocol detail). Read by web/problems.py's HTML pages.

Strings are marked for extraction (`make catalogs`) with lazy_gettext: they live at import time.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

# Error pages: a title and what happened, in words (never a protocol detail).
ERROR_WORDS = {
    400: (
        _l("That address is not quite right"),
        _l("Part of the web address could not be understood. Go back to your child's page and follow its links."),
    ),
    401: (
        _l("Please sign in"),
        _l(
            "To see your child's weekly scores, open the sign-in link the school sent you by email. "
            "It signs you in on this device."
        ),
    ),
    403: (
        _l("This request was refused"),
        _l("For your safety, the page only accepts requests made from its own pages. Go back and try again."),
    ),
    404: (
        _l("We could not find that page"),
        _l("The page does not exist, or it is about a child who is not linked to your account."),
    ),
    405: (_l("That action is not available here"), _l("Go back to your child's page and try again from there.")),
    429: (
        _l("Too many attempts"),
        _l(
            "There were too many unsuccessful sign-in attempts from your connection. Please wait a few minutes and try again."
        ),
    ),
}
REASON_WORDS = {
    "bad_link": (
        _l("This sign-in link does not work"),
        _l(
            "The link is unknown, has expired, or was replaced by a newer one. "
            "Use the latest link the school sent you, or ask for a new one."
        ),
    ),
}
REASON_WORDS["alert_level"] = (
    _l("That alert level is not right"),
    _l("An alert level is a whole number from 1 to 100, or empty for no alert. Go back and try again."),
)
UNEXPECTED = (_l("Something went wrong"), _l("Please try again in a moment."))


def error_words(status: int, reason: str | None = None) -> tuple[str, str]:
    title, text = REASON_WORDS.get(reason) or ERROR_WORDS.get(status, UNEXPECTED)
    return str(title), str(text)
