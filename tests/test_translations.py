"""The Russian catalog: complete, well-formed, compiled, and used by the pages.

The compiled .mo is committed, so the portal speaks Russian on a machine
without GNU gettext: Django reads it with Python's own gettext module.
"""

import ast
import gettext as pygettext
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import translation

from generations.models import Generation

LC_MESSAGES = Path(settings.BASE_DIR) / "locale" / "ru" / "LC_MESSAGES"
PO_PATH = LC_MESSAGES / "django.po"
MO_PATH = LC_MESSAGES / "django.mo"

# %(name)s, %d, %% ... as Python's %-formatting reads them.
PLACEHOLDER = re.compile(r"%(?:\((\w+)\))?[#0 +-]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa%]")
HTML_TAG = re.compile(r"</?[a-zA-Z][^>]*>")
KEYWORD = re.compile(r"^(msgctxt|msgid|msgid_plural|msgstr(?:\[\d+\])?) (\".*\")$")


def read_po(path: Path) -> list[dict]:
    """Each entry of a .po file: its flags and its fields (msgid, msgid_plural, msgstr, msgstr[n])."""
    entries = []
    for block in path.read_text(encoding="utf-8").strip().split("\n\n"):
        entry = {"flags": set()}
        key = None
        for line in block.splitlines():
            if line.startswith("#,"):
                entry["flags"].update(flag.strip() for flag in line[2:].split(","))
            elif line.startswith("#"):
                continue
            elif match := KEYWORD.match(line):
                key = match.group(1)
                entry[key] = ast.literal_eval(match.group(2))
            elif line.startswith('"') and key:
                entry[key] += ast.literal_eval(line)
        if "msgid" in entry:
            entries.append(entry)
    return entries


def translations_of(entry: dict) -> list[str]:
    return [value for key, value in entry.items() if key.startswith("msgstr")]


def placeholders(text: str) -> set[str]:
    return {match.group(0) for match in PLACEHOLDER.finditer(text) if match.group(0) != "%%"}


def po_header(entries: list[dict]) -> str:
    return next(entry["msgstr"] for entry in entries if entry["msgid"] == "")


def po_messages() -> list[dict]:
    return [entry for entry in read_po(PO_PATH) if entry["msgid"] != ""]


def test_the_catalog_has_a_russian_header_with_three_plural_forms():
    header = po_header(read_po(PO_PATH))
    assert "Language: ru\n" in header
    assert "charset=UTF-8" in header
    assert "nplurals=3;" in header


def test_every_message_is_translated_and_none_is_fuzzy():
    messages = po_messages()
    assert len(messages) > 100
    for entry in read_po(PO_PATH):
        assert "fuzzy" not in entry["flags"], entry["msgid"]
    for entry in messages:
        strings = translations_of(entry)
        assert strings, entry["msgid"]
        assert all(s.strip() for s in strings), f"untranslated: {entry['msgid']!r}"


def test_plural_messages_have_all_three_russian_forms():
    plurals = [entry for entry in po_messages() if "msgid_plural" in entry]
    assert plurals
    for entry in plurals:
        assert sorted(k for k in entry if k.startswith("msgstr")) == [
            "msgstr[0]", "msgstr[1]", "msgstr[2]"
        ], entry["msgid"]


def test_every_placeholder_of_a_message_appears_in_its_translations():
    formatted = [entry for entry in po_messages() if "python-format" in entry["flags"]]
    assert formatted
    for entry in formatted:
        expected = placeholders(entry["msgid"]) | placeholders(entry.get("msgid_plural", ""))
        for text in translations_of(entry):
            # Missing ones lose data; extra ones fail with KeyError at run time.
            assert placeholders(text) == expected, (entry["msgid"], text)


def test_messages_without_the_python_format_flag_have_no_placeholders():
    for entry in po_messages():
        if "python-format" not in entry["flags"]:
            assert not placeholders(entry["msgid"]), entry["msgid"]


def test_translations_keep_the_html_tags_of_their_messages():
    for entry in po_messages():
        tags = sorted(HTML_TAG.findall(entry["msgid"]))
        for text in translations_of(entry):
            assert sorted(HTML_TAG.findall(text)) == tags, (entry["msgid"], text)


def read_mo() -> pygettext.GNUTranslations:
    with MO_PATH.open("rb") as mo:
        return pygettext.GNUTranslations(mo)


def test_the_compiled_catalog_is_not_older_than_the_source():
    # A git checkout writes both files within moments, in either order: allow a little slack.
    # The content comparison below is what catches a .po edited without compilemessages.
    assert MO_PATH.stat().st_mtime >= PO_PATH.stat().st_mtime - 5


def test_the_compiled_catalog_holds_the_same_messages_as_the_source():
    catalog = read_mo()._catalog
    compiled = {key if isinstance(key, str) else key[0] for key in catalog} - {""}
    messages = po_messages()
    assert len(compiled) == len(messages)
    for entry in messages:
        if "msgid_plural" in entry:
            for n in range(3):
                assert catalog[(entry["msgid"], n)] == entry[f"msgstr[{n}]"], entry["msgid"]
        else:
            # A message with a context (pgettext) is filed under "context\x04msgid".
            key = f"{entry['msgctxt']}\x04{entry['msgid']}" if "msgctxt" in entry else entry["msgid"]
            assert catalog[key] == entry["msgstr"], entry["msgid"]


def test_the_compiled_catalog_chooses_the_russian_plural_form():
    mo = read_mo()
    forms = {n: mo.ngettext("%(credits)s credit", "%(credits)s credits", n) % {"credits": n}
             for n in (1, 3, 5, 11, 21, 22, 25, 112)}
    assert forms == {1: "1 кредит", 3: "3 кредита", 5: "5 кредитов", 11: "11 кредитов",
                     21: "21 кредит", 22: "22 кредита", 25: "25 кредитов", 112: "112 кредитов"}


def test_django_translates_key_strings_into_russian():
    with translation.override("ru"):
        assert translation.gettext("Generate video") == "Создать видео"
        assert translation.gettext("Animate image") == "Оживить изображение"
        assert translation.gettext("Sign out") == "Выйти"
        assert translation.gettext("Dashboard") == "Главная"
        assert str(Generation.Status.QUEUED.label) == "В очереди"  # noqa: RUF001 (the Russian letter is meant)
        assert str(Generation.Status.MODERATED.label) == "Заблокировано модерацией"
        assert translation.ngettext("%(credits)s credit", "%(credits)s credits", 4) == "%(credits)s кредита"
    with translation.override("en"):
        assert translation.gettext("Generate video") == "Generate video"


def test_the_login_page_is_in_russian_for_a_russian_browser(client):
    response = client.get("/accounts/login/", headers={"accept-language": "ru"})
    assert response.status_code == 200
    page = response.content.decode()
    assert '<html lang="ru">' in page
    assert "<title>Войти · Портал PixVerse</title>" in page
    assert '<button type="submit" class="primary">Войти</button>' in page
    assert "Забыли пароль?" in page
    assert "Sign in" not in page


def test_the_login_page_stays_in_english_by_default(client):
    page = client.get("/accounts/login/").content.decode()
    assert '<html lang="en">' in page
    assert "Sign in" in page
    assert "Войти" not in page


def test_every_string_in_the_code_and_templates_is_in_the_catalog(tmp_path):
    """makemessages over a copy of the code finds no msgid the committed catalog lacks: a new
    string left out of the .po would show in English on every Russian page."""
    if not shutil.which("xgettext"):
        pytest.skip("GNU gettext (xgettext) is not installed")
    root = Path(settings.BASE_DIR)
    copy = tmp_path / "portal"
    for name in ("generations", "pixverse_site", "templates", "locale", "manage.py"):
        source = root / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, copy / name)
    subprocess.run([sys.executable, "manage.py", "makemessages", "-l", "ru", "--no-obsolete", "-v", "0"],
                   cwd=copy, check=True, timeout=120, env={**os.environ, "DATA_DIR": str(tmp_path)})
    found = {entry["msgid"] for entry in read_po(copy / "locale/ru/LC_MESSAGES/django.po")}
    known = {entry["msgid"] for entry in read_po(PO_PATH)
             if "fuzzy" not in entry["flags"] and (entry.get("msgstr") or entry.get("msgstr[0]"))}
    assert sorted(found - known - {None, ""}) == []
