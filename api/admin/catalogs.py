"""Keep the console's gettext catalogs whole: `python -m api.admin.catalogs` copies every key
that only the old table (api.admin.i18n.MESSAGES) has into both catalogs, with Babel, so words
another branch added to the table move to the .po files in one step (then the table's entry
can go). It prints the keys it added."""

from __future__ import annotations

from babel.messages.pofile import read_po, write_po

from api.admin import i18n


def add_table_keys() -> list[str]:
    """Add the table's keys the catalogs lack; the keys added."""
    added: set[str] = set()
    for index, language in enumerate(i18n.LANGUAGES):
        path = i18n.LOCALE_DIR / language / "LC_MESSAGES" / f"{i18n.DOMAIN}.po"
        with path.open("rb") as po:
            catalog = read_po(po, domain=i18n.DOMAIN)
        missing = [key for key in i18n.MESSAGES if key not in catalog]
        for key in missing:
            catalog.add(key, i18n.MESSAGES[key][index])
        if missing:
            with path.open("wb") as po:
                write_po(po, catalog, width=120, sort_output=False)
        added.update(missing)
    i18n.catalog.cache_clear()
    return sorted(added)


if __name__ == "__main__":
    for key in add_table_keys():
        print(key)
