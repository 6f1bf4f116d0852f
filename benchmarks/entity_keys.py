"""Entity keys across languages: do a city's and a country's names in ten languages share a key?

    .venv/bin/python benchmarks/entity_keys.py

The names come from Unicode CLDR through babel, independent of the tables the keys are built
from (GeoNames for cities, ISO 3166 via pycountry for countries): the exemplar city of every
time zone (Moscow, Moscou, Moskau, Москва, 莫斯科 ...) and every territory name, each in the ten
languages of the story benchmark. For each language, the share of names whose ``entity_key``
(label LOC) equals the key of the English name. Cities are also counted among those GeoNames
lists with at least ``CITY_MIN_POPULATION`` people, the ones the key table holds.
"""

from __future__ import annotations

import sys
import zoneinfo
from collections.abc import Sequence
from pathlib import Path

from babel import Locale
from babel.dates import get_timezone, get_timezone_location

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.stages.story import CITY_MIN_POPULATION, _city_form, entity_key
from pipeline.stages.story import _cities as cities_table

LANGUAGES = ("fr", "de", "es", "it", "pl", "ru", "tr", "ar", "zh")
CONTINENTS = {"Africa", "America", "Asia", "Atlantic", "Australia", "Europe", "Indian", "Pacific"}


def city_names() -> list[dict[str, str]]:
    """Language -> the exemplar city of each geographic time zone ("Europe/Moscow")."""
    rows = []
    for zone in sorted(zoneinfo.available_timezones()):
        if zone.split("/")[0] not in CONTINENTS:
            continue
        tz = get_timezone(zone)
        rows.append(
            {lang: get_timezone_location(tz, locale=lang, return_city=True) for lang in ("en", *LANGUAGES)}
        )
    return rows


def country_names() -> list[dict[str, str]]:
    """Language -> the CLDR name of each country (two-letter territory codes)."""
    locales = {lang: Locale.parse(lang) for lang in ("en", *LANGUAGES)}
    codes = [c for c in locales["en"].territories if len(c) == 2 and c.isalpha() and c != "ZZ"]
    return [{lang: loc.territories[c] for lang, loc in locales.items() if c in loc.territories} for c in codes]


def agreement(rows: Sequence[dict[str, str]]) -> dict[str, float]:
    """Per language, the share of names keyed like the English one."""
    shares = {}
    for lang in LANGUAGES:
        named = [row for row in rows if lang in row]
        same = sum(entity_key(row[lang], "LOC", lang) == entity_key(row["en"], "LOC", "en") for row in named)
        shares[lang] = same / len(named) if named else float("nan")
    return shares


def wrong_places(rows: Sequence[dict[str, str]], places: set[str]) -> dict[str, int]:
    """Per language, the names keyed as another place than the English name, where both keys
    are places the tables know (a country, a city): a wrong merge, worse than a miss."""

    def known(key: str) -> bool:
        return key.startswith("c:") or key[2:] in places

    counts = {}
    for lang in LANGUAGES:
        keys = [(entity_key(row[lang], "LOC", lang), entity_key(row["en"], "LOC", "en")) for row in rows if lang in row]
        counts[lang] = sum(k != english and known(k) and known(english) for k, english in keys)
    return counts


def main() -> None:
    cities = city_names()
    places = set(cities_table().values())  # the table's cities, by their own names
    big = [row for row in cities if _city_form(row["en"]) in places]
    countries = country_names()
    table = {
        f"time-zone cities ({len(cities)})": agreement(cities),
        f"of them GeoNames cities of {CITY_MIN_POPULATION:,}+ ({len(big)})": agreement(big),
        f"countries ({len(countries)})": agreement(countries),
    }
    print("| names | " + " | ".join(LANGUAGES) + " | mean |")
    print("| --- |" + " ---: |" * (len(LANGUAGES) + 1))
    for name, shares in table.items():
        mean = sum(shares.values()) / len(shares)
        print(f"| {name} | " + " | ".join(f"{shares[lang]:.2f}" for lang in LANGUAGES) + f" | {mean:.2f} |")
    print("\nNames keyed as another place (a wrong merge):\n")
    print("| names | " + " | ".join(LANGUAGES) + " | all |")
    print("| --- |" + " ---: |" * (len(LANGUAGES) + 1))
    for name, rows in ((f"time-zone cities ({len(cities)})", cities), (f"countries ({len(countries)})", countries)):
        counts = wrong_places(rows, places)
        print(f"| {name} | " + " | ".join(str(counts[lang]) for lang in LANGUAGES) + f" | {sum(counts.values())} |")


if __name__ == "__main__":
    main()
