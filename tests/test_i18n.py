"""Languages: complete catalogs for every string of the views and templates, the locale's order of
choice (saved preference, Accept-Language, school default), the saved choice (POST /language with the
same-origin checks), Babel's numbers and dates, right-to-left Arabic, translated CSV headings."""

from __future__ import annotations

import re
from datetime import UTC
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from babel.support import Translations

from web.i18n import LANGUAGES, TRANSLATIONS

from factories import add_guardian, add_student

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def source_messages() -> set[str]:
    """Every msgid marked in web/ (views and templates), extracted now, as `make catalogs` does."""
    method_map, options_map = parse_mapping_cfg((ROOT / "babel.cfg").open())
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None, "_l": None}
    found = set()
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=keywords
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def catalog(language: str):
    with (TRANSLATIONS / language / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return read_po(f, locale=language)


def test_the_sources_mark_strings_at_all():
    messages = source_messages()
    assert "Please sign in" in messages and "Improving" in messages and len(messages) > 60


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_every_string_of_the_views_and_templates_is_translated(language):
    po = catalog(language)
    # A plural message (ngettext) is keyed by its singular and needs every one of the language's forms.
    translated = {
        (m.id if isinstance(m.id, str) else m.id[0]): (m.id, m.string if isinstance(m.string, tuple) else (m.string,))
        for m in po
        if m.id and m.string and all(m.string if isinstance(m.string, tuple) else (m.string,)) and not m.fuzzy
    }
    missing = source_messages() - set(translated)
    assert not missing, f"{language}: not in the catalog or untranslated (run make catalogs): {sorted(missing)}"
    obsolete = set(translated) - source_messages()
    assert not obsolete, f"{language}: in the catalog but no longer in the sources: {sorted(obsolete)}"
    for key, (msgid, forms) in translated.items():
        assert len(forms) in (1, po.num_plurals), (language, key)
        source = msgid if isinstance(msgid, str) else msgid[-1]
        for msgstr in forms:
            assert sorted(PLACEHOLDER.findall(source)) == sorted(PLACEHOLDER.findall(msgstr)), (language, key)
            assert msgstr.count("<") == source.count("<"), (language, key)


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_the_compiled_catalog_is_the_current_one(language):
    """The committed .mo says what the .po says (make catalogs compiles it)."""
    with (TRANSLATIONS / language / "LC_MESSAGES" / "messages.mo").open("rb") as f:
        compiled = Translations(f)
    for message in catalog(language):
        if isinstance(message.id, tuple):  # plural: each count gets the form the language's rule picks
            for n in range(0, 120):
                assert compiled.ngettext(*message.id, n) == message.string[compiled.plural(n)], (
                    language,
                    message.id,
                    n,
                )
        elif message.id:
            assert compiled.gettext(message.id) == message.string, (language, message.id)


def test_a_missing_translation_is_caught(tmp_path, monkeypatch):
    """The completeness check can fail: a catalog without one msgid is reported."""
    po = catalog("es")
    del po["Please sign in"]
    assert "Please sign in" in source_messages() - {m.id for m in po if m.id and m.string}


def sign_in(client, token):
    assert client.get("/login", query_string={"token": token}).status_code == 303


def lang_of(html: str) -> tuple[str, str]:
    match = re.search(r'<html lang="([^"]+)" dir="(ltr|rtl)">', html)
    return match[1], match[2]


@pytest.mark.parametrize(
    "accept,expected",
    [
        ("es-ES,es;q=0.9,en;q=0.5", ("es", "ltr")),
        ("ar", ("ar", "rtl")),
        ("fr-FR, ar-EG;q=0.8", ("ar", "rtl")),
        ("de, fr", ("en", "ltr")),  # nothing shipped: the school default
        ("", ("en", "ltr")),
    ],
)
def test_signed_out_pages_follow_accept_language(client, accept, expected):
    r = client.get("/login", headers={"Accept-Language": accept})
    assert lang_of(r.get_data(as_text=True)) == expected


def test_the_school_default_setting(db_url):
    from web import create_app
    from web.db import close_pool

    app = create_app({"TESTING": True, "DATABASE_URL": db_url, "SECRET_KEY": "x", "DEFAULT_LOCALE": "es"})
    html = app.test_client().get("/login", headers={"Accept-Language": "de"}).get_data(as_text=True)
    assert lang_of(html) == ("es", "ltr") and "Iniciar sesión" in html
    close_pool(app)
    with pytest.raises(ValueError, match="WEEKLY_TRENDS_DEFAULT_LOCALE"):
        create_app({"TESTING": True, "DATABASE_URL": db_url, "SECRET_KEY": "x", "DEFAULT_LOCALE": "fr"})


def test_the_dashboard_in_spanish_formats_numbers_and_dates(client, family):
    sign_in(client, family["token"])
    html = client.get(f"/students/{family['a']}?end=2024-02-01", headers={"Accept-Language": "es"}).get_data(
        as_text=True
    )
    assert lang_of(html) == ("es", "ltr")
    row = html.split('data-week-start="2024-01-15"')[1].split("</tr>")[0]
    assert "88,60" in row and "87,67" in row and "15 ene" in row and "2024-W03" in row
    assert "Las medias no son oficiales" in html and "Cerrar sesión" in html
    assert "Not enough weeks" not in html and "Aún no hay suficientes semanas" in html


def test_the_dashboard_in_arabic_is_right_to_left(client, family):
    sign_in(client, family["token"])
    html = client.get(f"/students/{family['a']}?end=2024-02-01", headers={"Accept-Language": "ar"}).get_data(
        as_text=True
    )
    assert lang_of(html) == ("ar", "rtl")
    assert "تسجيل الخروج" in html and "يناير" in html  # January
    assert '<svg class="chart"' in html and 'direction="ltr"' in html  # time still runs left to right


def test_the_trend_sentence_is_translated_with_a_signed_locale_number(client, family):
    conn = family["conn"]
    from datetime import datetime, timezone

    from factories import add_quiz

    add_quiz(conn, family["a"], 60, datetime(2024, 1, 8, 10, tzinfo=UTC))  # W02: 60, W03: 88.6, W05: 0
    sign_in(client, family["token"])
    es = client.get(f"/students/{family['a']}?end=2024-02-01", headers={"Accept-Language": "es"}).get_data(as_text=True)
    assert 'data-direction="declining"' in es and "Bajando" in es
    slope = re.search(r"\((-\d+,\d\d) puntos por semana", es)
    assert slope, es[es.index('class="trend') :][:400]


def set_language(client, language, **headers):
    return client.post("/language", data={"language": language, "next": "/"}, headers=headers)


def saved(conn, guardian):
    return conn.execute("select preferred_language from guardian where id = %s", (guardian,)).fetchone()[0]


def test_a_guardian_saves_a_language_that_beats_accept_language(client, family, app):
    sign_in(client, family["token"])
    r = set_language(client, "ar", Origin="http://localhost")
    assert r.status_code == 303 and r.headers["Location"] == "/"
    assert saved(family["conn"], family["guardian"]) == "ar"
    html = client.get("/", headers={"Accept-Language": "es"}).get_data(as_text=True)
    assert lang_of(html) == ("ar", "rtl")
    # another browser, same guardian: the saved choice follows them
    other = app.test_client()
    sign_in(other, family["token"])
    assert lang_of(other.get("/", headers={"Accept-Language": "es"}).get_data(as_text=True)) == ("ar", "rtl")
    # and its sign-out page, error pages before sign-in follow the browser again
    other.post("/logout")
    assert lang_of(other.get("/", headers={"Accept-Language": "es"}).get_data(as_text=True)) == ("es", "ltr")


def test_the_saved_language_speaks_on_the_error_pages_and_the_csv_headings_too(client, family, conn):
    sign_in(client, family["token"])
    assert set_language(client, "ar").status_code == 303
    not_ours = conn.execute(
        "insert into student_profile (display_name) values ('Someone Else') returning id"
    ).fetchone()[0]
    for path in (f"/students/{not_ours}", f"/students/{not_ours}/weeks/2024-W03"):
        r = client.get(path, headers={"Accept-Language": "es"})
        assert r.status_code == 404 and lang_of(r.get_data(as_text=True)) == ("ar", "rtl"), path
    csv_path = f"/api/v1/students/{family['a']}/weekly-trend.csv?end=2024-02-01&labels=1"
    arabic = client.get(csv_path, headers={"Accept-Language": "es"}).get_data(as_text=True).splitlines()[0]
    # the same with the Bearer token only: the guardian's choice, not the browser's
    bearer = {"Authorization": f"Bearer {family['token']}", "Accept-Language": "es"}
    assert app_client_csv(client, csv_path, bearer) == arabic and not arabic.startswith("scope,")
    assert "Ámbito" not in arabic
    # another browser of the same guardian: its 404 pages speak the saved language too
    other = client.application.test_client()
    sign_in(other, family["token"])
    r = other.get(f"/students/{not_ours}", headers={"Accept-Language": "es"})
    assert r.status_code == 404 and lang_of(r.get_data(as_text=True)) == ("ar", "rtl")


def app_client_csv(client, path, headers):
    fresh = client.application.test_client()
    return fresh.get(path, headers=headers).get_data(as_text=True).splitlines()[0]


@pytest.mark.parametrize("headers", [{"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}])
def test_a_cross_site_language_post_is_refused(client, family, headers):
    sign_in(client, family["token"])
    r = set_language(client, "es", **headers)
    assert r.status_code == 403 and r.mimetype == "text/html"
    assert saved(family["conn"], family["guardian"]) is None


@pytest.mark.parametrize("language", ["fr", "", "es'; drop table guardian; --", "x" * 100])
def test_an_unknown_language_is_a_400_page_and_saves_nothing(client, family, language):
    sign_in(client, family["token"])
    r = set_language(client, language)
    assert r.status_code == 400 and r.mimetype == "text/html"
    assert saved(family["conn"], family["guardian"]) is None


def test_a_signed_out_choice_lasts_for_the_browser_session(client):
    assert set_language(client, "es").status_code == 303
    assert lang_of(client.get("/login").get_data(as_text=True)) == ("es", "ltr")


@pytest.mark.parametrize(
    "target,expected",
    [
        ("/students/1?weeks=12", "/students/1?weeks=12"),
        ("https://evil.example/", "/"),
        ("//evil.example", "/"),
        ("", "/"),
    ],
)
def test_the_language_post_returns_only_to_this_site(client, target, expected):
    r = client.post("/language", data={"language": "es", "next": target})
    assert r.headers["Location"] == expected


HOSTILE_NEXT = [
    "/\n",
    "/\r\nSet-Cookie: a=b",
    "/\t/evil.example/phish",
    "\t//evil.example",
    "/\r/evil.example",
    "/\n/evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/\\/evil.example",
    "//evil.example",
    "///evil.example",
    "https://evil.example/",
    "javascript:alert(1)",
    "http:/evil.example",
    " //evil.example",
    "\x0b//evil.example",
    "/\x0b/evil.example",
    "/\x7f",
    "/\x1b[31m",
    "/\x85",
    "evil.example",
    "/" + "\u2028" + "/evil.example",
]


@pytest.mark.parametrize("target", HOSTILE_NEXT)
def test_a_hostile_next_returns_home_never_elsewhere_nor_a_500(client, target):
    r = client.post("/language", data={"language": "es", "next": target})
    assert r.status_code == 303 and r.headers["Location"] == "/"


@pytest.mark.parametrize(
    "target",
    [
        "/",
        "/students/1?weeks=12&end=2024-02-01",
        "/students/1/weeks/2024-W03",
        "/%2F%2Fevil.example",
        "/a//b",
        "/caf%C3%A9#x",
    ],
)
def test_a_same_site_next_is_kept_as_given(client, target):
    r = client.post("/language", data={"language": "es", "next": target})
    assert r.status_code == 303 and r.headers["Location"] == target


def test_every_redirect_of_the_app_goes_through_the_one_helper():
    """No view calls Flask's redirect() itself: every target passes web.params.same_site_path()."""
    web = Path(__file__).resolve().parent.parent / "web"
    offenders = [
        f"{path.name}:{n}"
        for path in sorted(web.rglob("*.py"))
        if path.name != "params.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\bredirect\(|[\"']Location[\"']", line)
    ]
    assert not offenders, offenders


def test_the_database_refuses_a_malformed_language(conn, family):
    import psycopg

    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("update guardian set preferred_language = 'english!' where id = %s", (family["guardian"],))
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        with conn.transaction():
            conn.execute("set local role weekly_trends_reader")
            conn.execute("select set_guardian_language('es')")  # no guardian in this transaction


def test_csv_headings_translated_on_request_and_keys_otherwise(client, family):
    sign_in(client, family["token"])
    path = f"/api/v1/students/{family['a']}/weekly-trend.csv?end=2024-02-01"
    plain = client.get(path, headers={"Accept-Language": "es"}).get_data(as_text=True).splitlines()
    labelled = client.get(path + "&labels=1", headers={"Accept-Language": "es"}).get_data(as_text=True).splitlines()
    assert plain[0].startswith("scope,course_id,course_name,week,year")
    assert labelled[0].startswith("Ámbito,Id de la asignatura,Asignatura,Semana,Año")
    assert plain[1:] == labelled[1:]
    json_keys = client.get(f"/api/v1/students/{family['a']}/weekly-trend", headers={"Accept-Language": "ar"}).get_json()
    assert "weekly_stats" in json_keys and "overall_avg" in json_keys["weekly_stats"]["weekly_trend"][0]


def test_a_second_guardian_without_a_choice_is_unaffected(client, conn, family):
    s = add_student(conn, "Cara", "UTC")
    g = add_guardian(conn, "c@example.org", s)
    token = conn.execute("select issue_guardian_token(%s)", (g,)).fetchone()[0]
    sign_in(client, family["token"])
    set_language(client, "ar")
    client.post("/logout")
    sign_in(client, token)
    assert lang_of(client.get("/", headers={"Accept-Language": "es"}).get_data(as_text=True)) == ("es", "ltr")
