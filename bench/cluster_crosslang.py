"""How often a French report joins the English story of the same event (a goal, not a gate).

A small hand-made set (our own short texts, invented events): for each event two English
reports from different outlets, then one French report; plus French reports of *other* events
that share a country or a person with an English story (they must not join). Everything goes
through ``ingest_articles`` into a real SQLite archive, in time order.

    python bench/cluster_crosslang.py
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from cluster_quality import _ingest_path  # noqa: E402
from monitor.models import Article  # noqa: E402
from monitor.store import Store  # noqa: E402
from monitor.store import stories as story_store  # noqa: E402
from monitor.stories import StoryClusterer  # noqa: E402

T0 = datetime(2026, 3, 2, 6, 0, tzinfo=timezone.utc)

# (event, [English (title, lead) x2], French (title, lead))
EVENTS = [
    ("mali-embassy",
     [("France suspends counterterrorism cooperation with Mali after embassy worker's arrest",
       "France suspended its counterterrorism cooperation with Mali on Monday after Malian authorities arrested "
       "a French embassy employee in Bamako, the foreign ministry in Paris said."),
      ("Paris halts security ties with Bamako over detained embassy staffer",
       "The French government halted security cooperation with Mali after an employee of its embassy in Bamako "
       "was detained; Paris called the arrest unjustified.")],
     ("La France suspend sa coopération antiterroriste avec le Mali",
      "Paris a suspendu lundi sa coopération antiterroriste avec le Mali après l'arrestation à Bamako d'un "
      "employé de l'ambassade de France, a indiqué le ministère des Affaires étrangères.")),
    ("vanuatu-quake",
     [("Magnitude 6.4 earthquake strikes off Vanuatu",
       "A magnitude 6.4 earthquake struck off Vanuatu near Port Vila on Tuesday, the USGS said; no tsunami "
       "warning was issued."),
      ("Strong quake shakes Port Vila, no tsunami threat",
       "A 6.4 magnitude quake shook Vanuatu's capital Port Vila, according to the USGS, which put its depth "
       "at 10 km.")],
     ("Séisme de magnitude 6,4 au large du Vanuatu",
      "Un séisme de magnitude 6,4 a frappé mardi le Vanuatu près de Port-Vila, selon l'USGS, qui l'a situé à "
      "10 km de profondeur. Aucune alerte au tsunami.")),
    ("airbus-order",
     [("IndiGo orders 150 Airbus A350 jets in record deal",
       "Indian airline IndiGo placed an order for 150 Airbus A350 aircraft, Airbus said in Toulouse on "
       "Wednesday, the largest wide-body order in its history."),
      ("Airbus wins 150-plane A350 order from IndiGo",
       "Airbus announced a firm order from IndiGo for 150 A350 widebody jets, a deal worth billions at list "
       "prices, the Toulouse-based planemaker said.")],
     ("IndiGo commande 150 Airbus A350",
      "La compagnie indienne IndiGo a commandé 150 avions Airbus A350, a annoncé mercredi Airbus à Toulouse, "
      "la plus grosse commande de gros-porteurs de son histoire.")),
    ("seine-flood",
     [("Seine rises above 6 metres in Paris, riverside roads closed",
       "The Seine reached 6.2 metres at the Austerlitz bridge in Paris on Thursday, forcing the closure of "
       "riverside roads and some RER C stations, Vigicrues said."),
      ("Paris flood alert as Seine tops 6 metres",
       "Vigicrues raised its alert as the Seine climbed past 6 metres at Austerlitz; RER C stations along the "
       "river were shut.")],
     ("Crue de la Seine : le fleuve dépasse 6 mètres à Paris",
      "La Seine a atteint 6,2 mètres au pont d'Austerlitz jeudi, selon Vigicrues, entraînant la fermeture des "
      "voies sur berge et de plusieurs gares du RER C.")),
    ("senegal-election",
     [("Senegal's Faye wins presidential run-off with 54 percent",
       "Bassirou Faye won Senegal's presidential run-off with 54 percent of the vote, the electoral commission "
       "in Dakar announced on Sunday."),
      ("Faye declared winner of Senegal election",
       "Senegal's electoral commission declared Bassirou Faye the winner with 54 percent; his rival conceded "
       "in Dakar.")],
     ("Sénégal : Bassirou Faye élu avec 54 % des voix",
      "Bassirou Faye a remporté le second tour de la présidentielle au Sénégal avec 54 % des suffrages, a "
      "annoncé dimanche la commission électorale à Dakar.")),
    ("louvre-theft",
     [("Jewels stolen from Louvre's Apollo Gallery in seven-minute raid",
       "Thieves stole eight pieces of jewellery from the Apollo Gallery of the Louvre in a seven-minute raid "
       "on Sunday morning, the culture minister Rachida Dati said."),
      ("Louvre closed after heist at Apollo Gallery",
       "The Louvre closed for the day after a gang took eight jewels from the Apollo Gallery, Rachida Dati told "
       "reporters.")],
     ("Vol de bijoux au Louvre : huit pièces dérobées dans la galerie d'Apollon",
      "Des voleurs ont dérobé huit bijoux dans la galerie d'Apollon du Louvre dimanche matin en sept minutes, "
      "a déclaré la ministre de la Culture Rachida Dati.")),
    ("tour-stage",
     [("Pogacar wins Tour de France stage 14 at Luchon-Superbagneres",
       "Tadej Pogacar won stage 14 of the Tour de France at Luchon-Superbagneres on Saturday and extended his "
       "lead over Jonas Vingegaard to 4 minutes 13 seconds."),
      ("Pogacar extends Tour lead with Pyrenees stage win",
       "Tadej Pogacar took stage 14 in the Pyrenees; Jonas Vingegaard lost more time and is now 4:13 behind.")],
     ("Tour de France : Pogacar s'impose à Luchon-Superbagnères",
      "Tadej Pogacar a remporté samedi la 14e étape du Tour de France à Luchon-Superbagnères et compte "
      "désormais 4 minutes 13 secondes d'avance sur Jonas Vingegaard.")),
    ("niger-uranium",
     [("Niger junta says it will nationalise Orano's Somair uranium mine",
       "Niger's military government said it would nationalise Somair, the uranium mine operated by France's "
       "Orano near Arlit, state television reported."),
      ("Orano loses control of Niger uranium mine as Niamey nationalises Somair",
       "Authorities in Niamey announced the nationalisation of Somair; Orano, which holds 63 percent, said it "
       "would go to arbitration.")],
     ("Le Niger nationalise la mine d'uranium de Somair exploitée par Orano",
      "La junte au pouvoir au Niger a annoncé la nationalisation de la Somair, mine d'uranium exploitée par le "
      "français Orano près d'Arlit, qui en détient 63 %.")),
]

# French reports of other events sharing a country or a name with the English stories above.
DISTRACTORS = [
    ("Mali : la saison des pluies provoque des inondations à Mopti",
     "Des pluies diluviennes ont provoqué des inondations dans la région de Mopti, au Mali, où des centaines "
     "de familles ont été déplacées, selon la protection civile."),
    ("Airbus livre son premier A321XLR à Iberia",
     "Airbus a livré à Iberia son premier A321XLR, un monocouloir à long rayon d'action, lors d'une cérémonie "
     "à Hambourg."),
    ("Sénégal : la saison de pêche s'ouvre à Saint-Louis",
     "Les pêcheurs de Saint-Louis, au Sénégal, ont repris la mer pour l'ouverture de la saison après deux mois "
     "d'arrêt biologique."),
    ("Le Louvre prolonge ses horaires d'ouverture le vendredi",
     "Le musée du Louvre restera ouvert jusqu'à 22 heures le vendredi à partir du mois prochain, a annoncé sa "
     "direction."),
]


def article(title: str, lead: str, *, url: str, published: datetime, language: str) -> Article:
    digest = hashlib.sha256(f"{title} {lead}".encode()).hexdigest()[:32]
    return Article(
        key=f"url:{url}", url=url, guid=None, title=title, summary=lead, content="", published=published,
        published_source="published", undated=False, first_seen=published, language=language, fingerprint=digest,
    )


def main() -> int:
    ingest, path = _ingest_path()
    clusterer = StoryClusterer(window=timedelta(days=7))
    joined = 0
    wrong = 0
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "crosslang.db")
        with store.transaction() as conn:
            story_store.apply_schema(conn)
        english_story: dict[str, int] = {}
        when = T0
        for event, english, _ in EVENTS:
            for number, (title, lead) in enumerate(english):
                when += timedelta(minutes=17)
                feed = f"english-{number}"
                ingest(store, feed, [article(title, lead, url=f"https://{feed}.example/{event}", published=when,
                                             language="en")], now=when, clusterer=clusterer)
            with store.reading() as conn:
                english_story[event] = story_store.story_of_article(
                    conn, conn.execute("SELECT max(id) FROM articles").fetchone()[0]) or -1
        for event, _, (title, lead) in EVENTS:
            when += timedelta(minutes=11)
            ingest(store, "french", [article(title, lead, url=f"https://fr.example/{event}", published=when,
                                             language="fr")], now=when, clusterer=clusterer)
            with store.reading() as conn:
                story = story_store.story_of_article(conn, conn.execute("SELECT max(id) FROM articles").fetchone()[0])
            hit = story == english_story[event]
            joined += hit
            print(f"{'joined ' if hit else 'apart  '} {event:<17} {title}")
        for number, (title, lead) in enumerate(DISTRACTORS):
            when += timedelta(minutes=13)
            ingest(store, "french", [article(title, lead, url=f"https://fr.example/other-{number}", published=when,
                                             language="fr")], now=when, clusterer=clusterer)
            with store.reading() as conn:
                story = story_store.story_of_article(conn, conn.execute("SELECT max(id) FROM articles").fetchone()[0])
            bad = story in english_story.values()
            wrong += bad
            print(f"{'WRONG  ' if bad else 'apart  '} {'(other event)':<17} {title}")
        store.close()
    print(f"\npath: {path}")
    print(f"French reports joining their English story: {joined}/{len(EVENTS)}; "
          f"French reports of other events joining an English story: {wrong}/{len(DISTRACTORS)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
