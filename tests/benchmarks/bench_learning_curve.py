"""Learning-curve benchmark: does Jackdaw learn from its user, with the real default model?

A script, not a test. It plays a user over the answers benchmark's notes
(``answers_corpus/`` and its PDF) and this benchmark's own notes (``learning_corpus/``: piano
lessons, the allotment, the bike, school, the flat, the on-call rota ...), all in one notes
folder, in a throw-away JACKDAW_HOME, through ``agent_core.services.Services`` as the app
builds it. The needs come in three groups: ``notes`` (42 over ``answers_corpus/``, which the
default model mostly answers right the first time), ``tricky`` (25 over ``learning_corpus/``:
facts updated later in the note, one of a list of similar items, a fact stated as a negation,
one obvious step, the latest entry of a log: what a small model often gets wrong) and
``outside`` (facts the notes do not hold). "All needs over the notes" is ``notes`` and
``tricky`` together: the issue's +30 points on paraphrases is read there.

1. **Before.** With the learning loop switched off, it asks held-out *paraphrases* of the
   needs and the *controls* (general knowledge and arithmetic, which no correction may
   hijack): the baseline.
2. **Teach.** With the learning loop on, it asks a fixed question for each need (67 over
   the notes, with checkable answers, and 10 facts the notes do not hold, from
   ``bench_learning.py``) and corrects every wrong answer (``Learning.correct``), as the
   user would with "Correct...". Each fact outside the notes has a *close control* (the
   same question about something else: the Porto office, not the Lisbon one) that must not
   get its corrected answer.
3. **Refine.** One offline refinement (``Learning.refine``): lessons distilled from the
   corrections, a candidate prompt scored against the version in force on the replay set,
   adopted or not.
4. **After.** The paraphrases and the controls again, learning on: accuracy before vs after
   (target +30 points on the paraphrases; the controls must not drop, false hits from
   corrections <= 2%), and how each right answer came (from a correction directly, with a
   correction in the prompt, or the model alone).
5. **Repeated multi-step tasks** (tools): each asked with the learning loop off (no replay),
   then with it on (the model plans; a right answer the loop could not verify is up-rated,
   as the user would; a wrong one down-rated), then again: model calls and success without
   replay vs with experience replay (the repeat); target >= 50% fewer calls, same success.

At the end it prints a table of figures and the lessons that exist.

    .venv/bin/python tests/benchmarks/bench_learning_curve.py --show --json lc.json
    .venv/bin/python tests/benchmarks/bench_learning_curve.py --limit 6 --controls 4 --tasks 1

``--group NAME`` (repeatable: notes, tricky, outside) keeps only those needs (the close
controls come with ``outside``). ``--baseline`` only asks each kept need's question and its
paraphrase, and the controls, once with the learning loop off (no teaching, refinement or
tasks) and prints what the model gets right alone, per group: a quick trial of new needs, e.g.

    .venv/bin/python tests/benchmarks/bench_learning_curve.py --group tricky --baseline \\
        --controls 0 --show
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from agent_core.config import Config, Paths  # noqa: E402
from agent_core.learning.lessons import LessonDistiller  # noqa: E402
from agent_core.learning.memory import terms_agree  # noqa: E402
from agent_core.learning.outcome import leak_kind  # noqa: E402
from agent_core.learning.similarity import cosine  # noqa: E402
from agent_core.services import Services  # noqa: E402
from agent_core.traces import Trace  # noqa: E402
from models.discovery import recorded_model_label  # noqa: E402
from tests.benchmarks.bench_answers import (  # noqa: E402
    CORPUS,
    PDF_TEXT,
    AllowWrites,
    Check,
    ask,
    has,
    number,
)
from tests.benchmarks.bench_learning import FACTS as UNKNOWN_FACTS  # noqa: E402
from tests.knowledge.pdfgen import pdf_bytes  # noqa: E402


def word(*alternatives: str) -> Check:
    """Correct when one of ``alternatives`` occurs as a whole word ("3" is not "350")."""
    patterns = [re.compile(rf"(?<![\w.-]){re.escape(a)}(?![\w])", re.I) for a in alternatives]
    return lambda answer: any(p.search(answer) for p in patterns)


@dataclass(frozen=True)
class Need:
    """Something the user wants from the notes: asked once (and corrected when wrong), then
    asked again in other words after learning."""

    question: str
    paraphrase: str
    check: Check
    correction: str  # what the user types into "Correct..." when the answer is wrong
    group: str = "notes"  # notes | tricky (learning_corpus/) | outside (not in the notes)


NEEDS = [
    Need(
        "What did I call my sourdough starter?",
        "What name did I give my sourdough starter?",
        has("Clint"),
        "Your sourdough starter is called Clint Yeastwood.",
    ),
    Need(
        "How often do I feed my sourdough starter?",
        "On which days does my starter get fed?",
        has("Tuesday", "Friday", "twice"),
        "Every Tuesday and Friday.",
    ),
    Need(
        "What flour do I feed the starter with?",
        "Which kind of flour goes into my starter feedings?",
        has("rye"),
        "Rye flour: 50 g of rye flour and 50 g of water.",
    ),
    Need(
        "Where does my sourdough starter live?",
        "Where do I keep the sourdough starter?",
        has("fridge"),
        "In the fridge, on the second shelf.",
    ),
    Need(
        "At what temperature did I bake my best loaf?",
        "How hot was the oven for my best loaf so far?",
        word("240"),
        "At 240 °C.",
    ),
    Need(
        "When is my next dentist appointment?",
        "When is my next check-up at the dentist?",
        has("14 March", "March 14"),
        "On 14 March 2027 at 09:30.",
    ),
    Need(
        "What is my dentist's name?",
        "Who is my dentist?",
        has("Okafor"),
        "Dr. Okafor.",
    ),
    Need(
        "What is my blood type?",
        "Which blood group am I?",
        has("A negative", "A-", "A neg"),
        "A negative.",
    ),
    Need(
        "When are we going to Lisbon?",
        "What are the dates of our Lisbon trip?",
        has("3 to 10 July", "July 3", "3 July", "3-10 July", "3–10 July"),
        "From 3 to 10 July 2027.",
    ),
    Need(
        "What is our flight number to Lisbon?",
        "Which flight do we take to Lisbon?",
        has("TP 1347", "TP1347"),
        "TP 1347, leaving at 07:15.",
    ),
    Need(
        "Which guesthouse did we book in Lisbon?",
        "Where are we staying in Lisbon?",
        has("Casa do Rio"),
        "The Casa do Rio guesthouse in Alfama.",
    ),
    Need(
        "What is the budget for the Lisbon week?",
        "How much can we spend on the Lisbon trip?",
        has("1,800", "1800", "1 800"),
        "1,800 euros.",
    ),
    Need(
        "What must I remember to bring to Lisbon?",
        "What should I not forget to pack for the Lisbon trip?",
        has("adapter"),
        "The blue travel adapter.",
    ),
    Need(
        "What is Kestrel?",
        "What is Project Kestrel about?",
        has("billing"),
        "Kestrel is the codename for the new billing system.",
    ),
    Need(
        "When does Project Kestrel launch?",
        "What is the launch date of Kestrel?",
        has("30 April", "April 30"),
        "On 30 April 2027.",
    ),
    Need(
        "Who leads Project Kestrel?",
        "Who is the project lead on Kestrel?",
        has("Priya"),
        "Priya Raman.",
    ),
    Need(
        "Which database does Kestrel use?",
        "What database is Project Kestrel built on?",
        has("PostgreSQL", "Postgres"),
        "PostgreSQL 16.",
    ),
    Need(
        "Why did we choose Stripe over Adyen?",
        "What was the reason for picking Stripe instead of Adyen?",
        has("fee"),
        "Because of the fees.",
    ),
    Need(
        "How long are invoices kept?",
        "For how many years do we keep invoices?",
        word("ten", "10"),
        "Ten years.",
    ),
    Need(
        "Which tomato variety do I grow?",
        "What kind of tomatoes am I growing?",
        has("Sungold"),
        "Sungold.",
    ),
    Need(
        "When was the apple tree planted?",
        "In what year did I plant the apple tree?",
        word("2019"),
        "In 2019.",
    ),
    Need(
        "When is my sister Mara's birthday?",
        "What date is Mara's birthday?",
        has("9 August", "August 9"),
        "On 9 August.",
    ),
    Need(
        "What is Mara's favourite flower?",
        "Which flower does my sister Mara like best?",
        has("peon"),
        "The peony.",
    ),
    Need(
        "What is the name of our cat?",
        "What is our cat called?",
        has("Biscuit"),
        "Biscuit.",
    ),
    Need(
        "How old is our cat?",
        "How many years old is our cat?",
        word("nine", "9"),
        "She is nine years old.",
    ),
    Need(
        "Where is the family reunion held?",
        "In which city does the family reunion take place?",
        has("Porto"),
        "In Porto, every second year.",
    ),
    Need(
        "What car do I drive?",
        "Which car do I own?",
        has("Octavia", "Skoda"),
        "A 2018 Skoda Octavia.",
    ),
    Need(
        "What is the front tyre pressure of my car?",
        "How much air pressure should the front tyres of my car have?",
        word("2.4"),
        "2.4 bar.",
    ),
    Need(
        "What is my car's registration number?",
        "What is the number plate of my car?",
        has("AB-123-CD", "AB 123 CD"),
        "AB-123-CD.",
    ),
    Need(
        "When is my car's next service due?",
        "At what mileage is the next service of my car?",
        has("90,000", "90000", "90 000"),
        "At 90,000 km.",
    ),
    Need(
        "How many eggs does grandma's lemon cake need?",
        "How many eggs go into grandma's lemon cake?",
        word("3", "three"),
        "3 eggs.",
    ),
    Need(
        "What is the secret ingredient of the lemon cake?",
        "What is the hidden extra in grandma's lemon cake?",
        has("yoghurt", "yogurt"),
        "A spoon of yoghurt.",
    ),
    Need(
        "What book am I reading now?",
        "Which book am I currently reading?",
        has("Left Hand of Darkness"),
        "The Left Hand of Darkness by Ursula K. Le Guin.",
    ),
    Need(
        "Which book did I finish in October?",
        "What did I finish reading in October?",
        has("Piranesi"),
        "Piranesi by Susanna Clarke.",
    ),
    Need(
        "When does the book club meet?",
        "On which day does my book club get together?",
        has("first Thursday"),
        "On the first Thursday of each month, at the library.",
    ),
    Need(
        "What is my wifi network called?",
        "What is the name of our wifi?",
        has("Heron"),
        "Heron-5G.",
    ),
    Need(
        "When was the boiler serviced?",
        "What date was the last boiler service?",
        has("12 September", "September 12"),
        "On 12 September 2026, by Tom Reyes.",
    ),
    Need(
        "Who has the spare key?",
        "Where is our spare house key?",
        has("neighbour", "neighbor", "number 14"),
        "The neighbour at number 14.",
    ),
    Need(
        "What is my home insurance policy number?",
        "What's the number of my home insurance policy?",
        has("HX-55821", "HX55821"),
        "HX-55821 with Northgate Mutual.",
    ),
    Need(
        "When does my home insurance renew?",
        "What is the renewal date of the home insurance?",
        has("1 June", "June 1"),
        "On 1 June 2027.",
    ),
    Need(
        "How much is the water damage excess on my home insurance?",
        "What excess do I pay for water damage under the home insurance?",
        word("250"),
        "250 euros.",
    ),
    Need(
        "What is the optician's prescription for my new glasses?",
        "What strength are my new glasses?",
        has("1.75"),
        "-1.75 in both eyes.",
    ),
]

LEARNING_CORPUS = Path(__file__).with_name("learning_corpus")

# Needs over ``learning_corpus/``, the notes as people keep them: a fact updated later (piano
# on Mondays, since October on Wednesdays), one of a list of similar items (the absence line,
# not the school office), a negation ("NOT the red bag"), one obvious step (the lock code is
# the frame number's last four digits), the latest entry of a log. Each check takes the right
# answer only: the stale one (Monday, 24 March, 1,150, plot 7 ...) does not pass.
TRICKY = [
    Need(
        "On which day are Ellie's piano lessons?",
        "What day of the week does Ellie go to piano?",
        has("Wednesday"),
        "On Wednesdays, since October (they used to be on Mondays).",
        "tricky",
    ),
    Need(
        "What time does Ellie's piano lesson start?",
        "At what time is Ellie's piano lesson now?",
        has("17:30", "5:30", "5.30"),
        "At 17:30, on Wednesdays.",
        "tricky",
    ),
    Need(
        "When is Ellie's Grade 2 piano exam?",
        "What date is Ellie's piano exam?",
        has("23 June", "June 23"),
        "On 23 June at 14:15; it was moved from 24 March after she broke her wrist.",
        "tricky",
    ),
    Need(
        "How much is the allotment rent?",
        "What do we pay for the allotment each year?",
        word("48"),
        "£48 a year from this year (it was £42), due by 1 March.",
        "tricky",
    ),
    Need(
        "What is our allotment plot number?",
        "Which plot do we have at Fernhill?",
        has("23B", "23 B"),
        "Plot 23B; we moved there from plot 7 in 2025.",
        "tricky",
    ),
    Need(
        "What do we use against slugs on the allotment?",
        "How do we keep the slugs off at the allotment?",
        has("beer", "wool"),
        "Beer traps and wool pellets; we do not use slug pellets.",
        "tricky",
    ),
    Need(
        "What is growing in bed 3 on the allotment?",
        "Which crops are in the third bed at the allotment this year?",
        has("brassica", "kale", "broccoli"),
        "Brassicas under the net: kale and purple sprouting broccoli.",
        "tricky",
    ),
    Need(
        "What is the code of my bike's D-lock?",
        "What's the combination for the Kryptonite lock on my bike?",
        word("1937"),
        "1937, the last four digits of the frame number.",
        "tricky",
    ),
    Need(
        "Which bike shop do I take my bike to?",
        "Where do I get my bike repaired?",
        has("Spokes"),
        "Spokes on Mill Road (ask for Femi), not Halfords any more.",
        "tricky",
    ),
    Need(
        "When was the chain on my bike last replaced?",
        "What is the date of the latest chain replacement on my bike?",
        has("14 April", "April 14"),
        "On 14 April 2026, at Spokes.",
        "tricky",
    ),
    Need(
        "Who is teaching Ellie's class at the moment?",
        "Who is Ellie's class teacher right now?",  # her teacher: Ingrid teaches her piano
        has("Varga"),
        "Ms. Varga, while Mr. Achebe is on paternity leave until Easter.",
        "tricky",
    ),
    Need(
        "On which days does Ellie have PE?",
        "Which days does Ellie need her PE kit?",
        has("Monday"),
        "On Monday and Thursday since January.",
        "tricky",
    ),
    Need(
        "Does Sam take a packed lunch to school?",
        "What does Sam eat for lunch at school?",
        has(  # "No, he does not take one" is right too
            "dinner",
            "not take a packed lunch",
            "n't take a packed lunch",
            "not have a packed lunch",
            "n't have a packed lunch",
        ),
        "No, Sam has school dinners.",
        "tricky",
    ),
    Need(
        "What number do I call to report Ellie absent from school?",
        "What is the school's absence line?",
        has("960 442", "960442", "960-442"),
        "The absence line, 01632 960 442 (press 1), before 9:00.",
        "tricky",
    ),
    Need(
        "How much is the rent for the flat?",
        "What is our monthly rent?",
        has("1,195", "1195", "1 195"),
        "£1,195 a month since 1 September 2026.",
        "tricky",
    ),
    Need(
        "Who do I report repairs in the flat to?",
        "Who should I tell when something in the flat needs fixing?",
        has("Grainger", "Peter"),
        "Peter Grainger, the landlord, by text on 07700 900 512; not Harbour Lettings.",
        "tricky",
    ),
    Need(
        "When does our tenancy end?",
        "Until when does our flat tenancy run?",
        has("August 2027", "August 31, 2027", "31/08/2027", "2027-08-31"),
        "On 31 August 2027.",
        "tricky",
    ),
    Need(
        "Who is on call in the week of 9 February?",
        "Who has the on-call week starting 9 February?",
        has("Tomasz"),
        "Tomasz: we swapped, I do his week of 26 January.",
        "tricky",
    ),
    Need(
        "Which tool pages us when we are on call?",
        "What paging app does the platform team use?",
        has("Opsgenie"),
        "Opsgenie; the old PagerDuty account is closed.",
        "tricky",
    ),
    Need(
        "Which bag of food does Pepper get?",
        "What food do I give Hannah and Joe's dog Pepper?",
        has("green"),
        "One scoop of the senior food from the green bag, not the red bag.",
        "tricky",
    ),
    Need(
        "How many hens do Hannah and Joe have?",
        "How many hens are there at number 9 now?",
        word("two", "2"),
        "Two, Marigold and Dot; Hettie died in July.",
        "tricky",
    ),
    Need(
        "What is my parkrun personal best?",
        "What is my fastest parkrun time?",
        has("23:58"),
        "23:58, on 7 February 2026.",
        "tricky",
    ),
    Need(
        "What was my time in the last Riverside 10k?",
        "How fast did I run the most recent Riverside 10k?",
        has("52:14"),
        "52:14, on 8 March 2026.",
        "tricky",
    ),
    Need(
        "Where does the Thursday club run start?",
        "Where do the Harriers meet for the Thursday road run?",
        has("Plough"),
        "From The Plough car park, at 18:30.",
        "tricky",
    ),
    Need(
        "What is the electrician's phone number?",
        "How do I reach our electrician by phone?",
        has("900 664", "900664", "900-664"),
        "Nadia Osei, 07700 900 664.",
        "tricky",
    ),
]

# Unrelated questions no correction may take over; some sit close to a corrected need
# (Lisbon, eggs, a temperature, tomatoes) to catch a correction matched too loosely.
CONTROLS: list[tuple[str, Check]] = [
    ("What is the capital of France?", has("Paris")),
    ("How many days are there in a week?", word("7", "seven")),
    ("Who wrote Romeo and Juliet?", has("Shakespeare")),
    ("What is the largest planet in our solar system?", has("Jupiter")),
    ("How many legs does a spider have?", word("8", "eight")),
    ("What is the chemical symbol for gold?", word("Au")),
    ("Which ocean is the largest?", has("Pacific")),
    ("What language is spoken in Brazil?", has("Portuguese")),
    ("What is the freezing point of water in degrees Celsius?", word("0", "zero")),
    ("What colour is a clear daytime sky?", has("blue")),
    ("What is the capital of Portugal?", has("Lisbon")),
    ("How many eggs are in a dozen?", word("12", "twelve")),
    ("What is the boiling point of water in degrees Celsius?", word("100")),
    ("How many months are there in a year?", word("12", "twelve")),
    ("What colour are ripe tomatoes usually?", has("red")),
    ("What is 17 times 23?", number(391)),
    ("What is 1234 plus 4321?", number(5555)),
    ("What is 2 to the power of 10?", number(1024)),
    ("What is 144 divided by 12?", number(12)),
    ("What is 987 minus 123?", number(864)),
    ("What is 15% of 80?", number(12)),
    ("What is 3.5 times 4?", number(14)),
]


# Facts the notes do not hold (``bench_learning.py``'s): no model can know them, so each is
# corrected, and each has a close question about something else that must not get its answer.
_KEYS = {
    "Dana Scully": ("Scully",),
    "8443": ("8443",),
    "LIS-Guest": ("LIS-Guest",),
    "On March 14": ("March 14", "14 March"),
    "555-0142": ("555-0142",),
    "Albatross": ("Albatross",),
    "Postgres 15": ("Postgres 15", "PostgreSQL 15"),
    "In the blue box in the kitchen": ("blue box",),
    "At 9 am": ("9 am", "9:00", "9 a.m."),
    "Marta Silva": ("Marta",),
}
OUTSIDE = [Need(q, p, has(*_KEYS[a]), a, "outside") for q, a, p, _ in UNKNOWN_FACTS]


GROUPS = ("notes", "tricky", "outside")
OVER_NOTES = ("notes", "tricky")  # "all needs over the notes": where +30 points is read


def not_given(answer: str) -> Check:
    """A close control is right when it does not give its neighbour's corrected answer."""
    given = has(*_KEYS[answer])
    return lambda text: not given(text)


CLOSE_CONTROLS = [(control, not_given(a)) for _, a, _, control in UNKNOWN_FACTS]


@dataclass(frozen=True)
class Task:
    """A multi-step task with tools, asked twice the same way."""

    question: str  # {notes} is the notes folder
    check: Check


TASKS = [
    Task("What is 17 times 23 plus 4? Use the calculator.", number(395)),
    Task(
        "Read the file {notes}/travel.txt and tell me the flight number.", has("TP 1347", "TP1347")
    ),
    Task(
        "List the folder {notes}, then read home.md from it and tell me what the wifi is called.",
        has("Heron"),
    ),
    Task(
        "Read {notes}/recipes.md, then use the calculator to add up the grams of sugar and "
        "butter in the lemon cake.",
        number(400),
    ),
]


# -- one answer -----------------------------------------------------------------------------
@dataclass
class Asked:
    phase: str
    kind: str  # original | paraphrase | control | task-off | task-first | task-repeat
    group: str  # notes | outside (needs); general | close (controls); tasks
    question: str
    answer: str
    correct: bool
    leak: str | None
    model_calls: int
    seconds: float
    status: str
    from_correction: bool  # answered with a corrected or up-rated answer, no model call
    correction_in_prompt: bool  # a corrected answer was shown to the model
    replayed_steps: int = 0
    tools: list[str] = field(default_factory=list)
    tools_ok: bool = True
    trace_id: str = ""
    from_confirmed: bool = False  # of those: from an answer the user rated up
    feedback: str = ""  # what the benchmark's user did: corrected | down-rated | up-rated
    anchored: bool = False  # the fact in the prompt came by its note (below the similarity)
    judged: bool = False  # ...or because the learning judge said it answers this question
    related: str = ""  # what the user taught, shown to them beside the answer (not the model)
    related_right: bool = False  # ...and it answers this question (the check passes on it)

    @property
    def on_screen(self) -> bool:
        """The person has the right answer in front of them: the answer, or beside it."""
        return self.correct or self.related_right


def asked(
    phase: str, kind: str, group: str, question: str, check: Check, trace: Trace, total: float
) -> Asked:
    answer = trace.final_answer or ""
    calls = [s for s in trace.steps if s.tool_name]
    replay = trace.extra.get("replay") or {}
    return Asked(
        phase,
        kind,
        group,
        question,
        answer,
        check(answer) and leak_kind(answer) is None,
        leak_kind(answer),
        int(trace.extra.get("model_calls", 0)),
        round(total, 2),
        trace.status,
        "correction" in trace.extra,
        bool(trace.extra.get("corrections")),
        len(replay.get("replayed_steps", [])),
        [s.tool_name or "" for s in calls],
        # A repeated call is not run again (the agent feeds back the first result): no outcome.
        all(s.tool_outcome["status"] == "ok" for s in calls if s.tool_outcome),
        trace.id,
        (trace.extra.get("correction") or {}).get("kind") == "confirmed",
        anchored=any(f.get("anchored_in") for f in _facts_used(trace)),
        judged=any(f.get("judged_by") for f in _facts_used(trace)),
        related=(related := (trace.extra.get("related_fact") or {}).get("answer", "")),
        related_right=bool(related) and check(related),
    )


def _facts_used(trace: Trace) -> list[dict[str, Any]]:
    """The learnt facts given to the model, and the one said as the answer."""
    said = trace.extra.get("correction")
    return [*trace.extra.get("corrections", []), *([said] if isinstance(said, dict) else [])]


def log(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def show(row: Asked) -> None:
    mark = "ok " if row.correct else "BAD"
    how = (
        (" [up-rated answer]" if row.from_confirmed else " [correction]")
        if row.from_correction
        else ""
    )
    how += " [fact in prompt]" if row.correction_in_prompt else ""
    how += " [anchored]" if row.anchored else ""
    how += " [judged]" if row.judged else ""
    how += f" [replayed {row.replayed_steps}]" if row.replayed_steps else ""
    if row.related:
        how += f" [you taught ({'right' if row.related_right else 'other'}): {row.related[:60]!r}]"
    log(
        f"  {mark} {row.phase:<6} {row.kind:<11} {row.question}\n"
        f"        -> {row.answer[:150]!r} ({row.model_calls} calls, {row.seconds:.1f} s"
        f"{', tools ' + str(row.tools) if row.tools else ''}){how}"
        f"{' ' + row.feedback if row.feedback else ''}"
    )


# -- the run --------------------------------------------------------------------------------
def build_services(home: Path, args: argparse.Namespace) -> tuple[Services, Path]:
    notes = home / "my-notes"
    shutil.copytree(CORPUS, notes)
    (notes / "insurance.pdf").write_bytes(pdf_bytes([PDF_TEXT]))
    for path in sorted(LEARNING_CORPUS.iterdir()):  # one notes folder, as one person keeps it
        if path.is_file():
            assert not (notes / path.name).exists(), path.name
            shutil.copy2(path, notes / path.name)
    if args.cache_dir:  # the model's saved prompt states, kept between runs of this script
        Path(args.cache_dir).mkdir(parents=True, exist_ok=True)
        (home / "cache").symlink_to(Path(args.cache_dir).resolve(), target_is_directory=True)
    os.environ["JACKDAW_HOME"] = str(home)
    paths = Paths.from_env()
    config = Config.load(paths.config_file)
    config.knowledge.watched_folders = [str(notes)]
    config.tools.notes_folder = str(home / "written")
    config.model.temperature = 0.0
    config.model.n_threads = args.threads
    if args.model:
        config.model.path = args.model
    config.learning.judge_model = args.judge
    if args.judged_candidates is not None:
        config.learning.judged_candidates = args.judged_candidates
    services = Services(paths, config)
    services.confirmer = AllowWrites()
    return services, notes


def select(args: argparse.Namespace) -> tuple[list[Need], list[tuple[str, str, Check]]]:
    """The needs and controls to ask: ``--limit`` (each group over the notes), ``--outside``,
    ``--controls`` and ``--group``."""
    groups = set(args.group or GROUPS)
    limit = args.limit or None
    needs = [n for n in NEEDS[:limit] + TRICKY[:limit] if n.group in groups]
    outside = args.outside if "outside" in groups else 0
    needs += OUTSIDE[:outside]
    general = CONTROLS[: args.controls] if args.controls is not None else CONTROLS
    controls = [("general", q, c) for q, c in general]
    controls += [("close", q, c) for q, c in CLOSE_CONTROLS[:outside]]
    return needs, controls


def run(args: argparse.Namespace, home: Path) -> dict[str, Any]:
    needs, controls = select(args)
    tasks = TASKS[: args.tasks] if args.tasks is not None else TASKS
    services, notes = build_services(home, args)
    rows: list[Asked] = []
    figures: dict[str, Any] = {}
    started = time.perf_counter()
    try:
        t0 = time.perf_counter()
        services.knowledge.index()
        agent = services.agent
        learning = services.learning
        figures["model"] = recorded_model_label(services.chat_backend.info.to_dict())
        figures["threads"] = args.threads
        figures["judge"] = args.judge
        figures["judged_candidates"] = services.config.learning.judged_candidates
        log(f"indexed the notes in {time.perf_counter() - t0:.1f} s; model {figures['model']}")

        def put(phase: str, kind: str, group: str, question: str, check: Check) -> Asked:
            trace, _, total = ask(agent, question, [])
            row = asked(phase, kind, group, question, check, trace, total)
            rows.append(row)
            if args.show:
                show(row)
            return row

        # 1. before: the learning loop off ------------------------------------------------------
        what = "questions and paraphrases" if args.baseline else "paraphrases"
        log(f"1. before: {len(needs)} {what} and {len(controls)} controls, learning off")
        memory = agent.learning
        agent.learning = None
        try:
            for need in needs:
                if args.baseline:
                    put("before", "original", need.group, need.question, need.check)
                put("before", "paraphrase", need.group, need.paraphrase, need.check)
            for group, question, check in controls:
                put("before", "control", group, question, check)
        finally:
            agent.learning = memory
        if args.baseline:  # a trial of the needs: nothing is taught
            figures["baseline"] = True
            return finish(figures, rows, needs, started)

        # 2. teach: ask, correct the wrong answers -----------------------------------------------
        log(f"2. teach: {len(needs)} questions; every wrong answer is corrected")
        for need in needs:
            row = put("teach", "original", need.group, need.question, need.check)
            if not row.correct:
                learning.correct(row.trace_id, need.correction)
                row.feedback = "corrected"
            elif not args.no_up_rating:  # a right answer: thumbs up, as a user does
                learning.rate(row.trace_id, up=True)
                row.feedback = "up-rated"

        # 3. refinement --------------------------------------------------------------------------
        distiller = LessonDistiller(services.chat_backend, seed=services.config.model.seed)
        learning.refiner.distiller = lambda: distiller
        if args.skip_refine:
            figures["refinement"] = None
        else:
            log("3. refinement (lessons distilled, candidate scored against the version in force)")
            result = learning.refine()
            figures["refinement"] = {
                "status": result.status,
                "adopted": result.adopted,
                "reason": result.reason,
                "cases": result.cases,
                "current_score": result.current_score,
                "candidate_score": result.candidate_score,
                "regressions": result.regressions,
                "case_kinds": {
                    kind: sum(
                        1
                        for c in result.report.get("current", {}).get("results", [])
                        if c["kind"] == kind
                    )
                    for kind in ("correction", "uprated", "downrated", "guard")
                },
                "lessons_helped": result.report.get("lessons_helped"),
                "lessons_retired": result.report.get("lessons_retired"),
                "seconds": result.duration_s,
                "distilled": result.lessons,
                "refused_proposals": distiller.refused,
            }
            log(f"   {result.status}: {result.reason} ({result.duration_s} s)")

        # 4. after: learning on ------------------------------------------------------------------
        log(f"4. after: {len(needs)} paraphrases and {len(controls)} controls, learning on")
        for need in needs:
            put("after", "paraphrase", need.group, need.paraphrase, need.check)
        for group, question, check in controls:
            put("after", "control", group, question, check)

        # 5. repeated multi-step tasks -----------------------------------------------------------
        log(f"5. {len(tasks)} multi-step tasks, each asked twice")
        for task in tasks:
            question = task.question.format(notes=notes)
            agent.learning = None
            try:
                put("tasks", "task-off", "tasks", question, task.check)
            finally:
                agent.learning = memory
            first = put("tasks", "task-first", "tasks", question, task.check)
            taught = learning.experiences.from_trace(first.trace_id)
            if first.correct and first.tools_ok and not taught:
                learning.rate(first.trace_id, up=True)  # right, but the loop could not verify it
                first.feedback = "up-rated"
            elif not first.correct:
                learning.rate(first.trace_id, up=False, comment="wrong answer")
                first.feedback = "down-rated"
            put("tasks", "task-repeat", "tasks", question, task.check)

        # How close each corrected need's paraphrase is to the question that was corrected
        # (answered from the correction at correction_strong_similarity and names agreeing;
        # shown to the model from correction_similarity).
        figures["corrected_needs"] = [
            {
                "question": need.question,
                "paraphrase": need.paraphrase,
                "similarity": round(
                    cosine(
                        learning.encoder.vector(need.question),
                        learning.encoder.vector(need.paraphrase),
                    ),
                    3,
                ),
                "terms_agree": terms_agree(need.question, need.paraphrase),
            }
            for need, row in zip(needs, [r for r in rows if r.kind == "original"], strict=True)
            if row.feedback == "corrected"
        ]
        figures["thresholds"] = {
            "correction_similarity": learning.config.correction_similarity,
            "correction_strong_similarity": learning.config.correction_strong_similarity,
        }
        figures["lessons"] = [x.to_dict() for x in learning.lesson_list()]
        figures["experiences"] = len(learning.experience_list())
        figures["prompt_version_in_force"] = learning.versions.active().id
    finally:
        services.close()
    return finish(figures, rows, needs, started)


def finish(
    figures: dict[str, Any], rows: list[Asked], needs: list[Need], started: float
) -> dict[str, Any]:
    figures["seconds"] = round(time.perf_counter() - started, 1)
    figures["summary"] = baseline(rows) if figures.get("baseline") else summarise(rows, needs)
    figures["rows"] = [asdict(r) for r in rows]
    return figures


# -- the figures ----------------------------------------------------------------------------
def share(rows: list[Asked], key: str = "correct") -> float | None:
    return round(sum(bool(getattr(r, key)) for r in rows) / len(rows), 3) if rows else None


def summarise(rows: list[Asked], needs: list[Need]) -> dict[str, Any]:
    def pick(phase: str, kind: str) -> list[Asked]:
        return [r for r in rows if r.phase == phase and r.kind == kind]

    originals = pick("teach", "original")
    corrected = {r.question for r in originals if r.feedback == "corrected"}
    paraphrase_of = {n.paraphrase: n.question for n in needs}

    def was_corrected(r: Asked) -> bool:
        return paraphrase_of.get(r.question) in corrected

    def of(rows_: list[Asked], test: Any) -> list[Asked]:
        return [r for r in rows_ if test(r)]

    para_before, para_after = pick("before", "paraphrase"), pick("after", "paraphrase")
    ctrl_before, ctrl_after = pick("before", "control"), pick("after", "control")

    def over_notes(r: Asked) -> bool:
        return r.group in OVER_NOTES

    out: dict[str, Any] = {
        "needs": len(needs),
        "needs_in_notes": sum(n.group == "notes" for n in needs),
        "needs_tricky": sum(n.group == "tricky" for n in needs),
        "needs_over_notes": sum(n.group in OVER_NOTES for n in needs),
        "originals_correct": share(of(originals, lambda r: r.group == "notes")),
        "originals_correct_tricky": share(of(originals, lambda r: r.group == "tricky")),
        "originals_correct_over_notes": share(of(originals, over_notes)),
        "originals_correct_outside": share(of(originals, lambda r: r.group == "outside")),
        "originals_from_correction": share(originals, "from_correction"),
        "corrected": len(corrected),
        "up_rated": sum(r.feedback == "up-rated" for r in originals),
        "corrected_in_notes": sum(r.group == "notes" for r in originals if r.question in corrected),
        "corrected_tricky": sum(r.group == "tricky" for r in originals if r.question in corrected),
        "corrected_over_notes": sum(over_notes(r) for r in originals if r.question in corrected),
    }
    sets: list[tuple[str, Any]] = [
        ("paraphrases", lambda r: r.group == "notes"),
        ("notes_corrected", lambda r: r.group == "notes" and was_corrected(r)),
        ("notes_right_first", lambda r: r.group == "notes" and not was_corrected(r)),
        ("tricky", lambda r: r.group == "tricky"),
        ("tricky_corrected", lambda r: r.group == "tricky" and was_corrected(r)),
        ("over_notes", over_notes),
        ("over_notes_corrected", lambda r: over_notes(r) and was_corrected(r)),
        ("outside_notes", lambda r: r.group == "outside"),
        ("all_paraphrases", lambda r: True),
    ]
    groups = [(name, of(para_before, t), of(para_after, t)) for name, t in sets]
    groups += [
        (
            "controls",
            of(ctrl_before, lambda r: r.group == "general"),
            of(ctrl_after, lambda r: r.group == "general"),
        ),
        (
            "close_controls",
            of(ctrl_before, lambda r: r.group == "close"),
            of(ctrl_after, lambda r: r.group == "close"),
        ),
        ("all_controls", ctrl_before, ctrl_after),
    ]
    for name, before, after in groups:
        b, a = share(before), share(after)
        out[name] = {
            "n": len(after),
            "before": b,
            "after": a,
            "points": round((a - b) * 100, 1) if a is not None and b is not None else None,
            "from_correction_after": share(after, "from_correction"),
            "from_confirmed_after": share(after, "from_confirmed"),
            "correction_in_prompt_after": share(after, "correction_in_prompt"),
            "facts_in_prompt_after": sum(1 for r in after if r.correction_in_prompt),
            "judged_after": sum(1 for r in after if r.judged),
            "judged_right_after": sum(1 for r in after if r.judged and r.correct),
            "on_screen_after": share(after, "on_screen"),
            "related_shown_after": sum(1 for r in after if r.related),
            "related_right_after": sum(1 for r in after if r.related_right),
            "leaks_before": sum(1 for r in before if r.leak),
            "leaks_after": sum(1 for r in after if r.leak),
            "model_calls_before": sum(r.model_calls for r in before),
            "model_calls_after": sum(r.model_calls for r in after),
            "median_s_before": round(statistics.median(r.seconds for r in before), 2)
            if before
            else None,
            "median_s_after": round(statistics.median(r.seconds for r in after), 2)
            if after
            else None,
        }
    out["all_controls"]["false_hits"] = sum(1 for r in ctrl_after if r.from_correction)
    out["all_controls"]["false_hit_share"] = share(ctrl_after, "from_correction")
    offs, firsts = pick("tasks", "task-off"), pick("tasks", "task-first")
    repeats = pick("tasks", "task-repeat")

    def success(r: Asked) -> bool:  # what the user reads: the right answer, nothing leaked
        return r.correct

    calls_first = sum(r.model_calls for r in offs)
    calls_repeat = sum(r.model_calls for r in repeats)
    out["tasks"] = {
        "n": len(firsts),
        "model_calls_without_replay": calls_first,
        "model_calls_with_replay": calls_repeat,
        "fewer_calls": round(1 - calls_repeat / calls_first, 3) if calls_first else None,
        "replayed": sum(1 for r in repeats if r.replayed_steps),
        "success_without_replay": sum(success(r) for r in offs),
        "model_calls_first_with_learning": sum(r.model_calls for r in firsts),
        "success_first_with_learning": sum(success(r) for r in firsts),
        "success_with_replay": sum(success(r) for r in repeats),
        "per_task": [
            {
                "task": f.question,
                "calls": [o.model_calls, f.model_calls, r.model_calls],
                "success": [success(o), success(f), success(r)],
                "replayed_steps": [f.replayed_steps, r.replayed_steps],
                "tools": [o.tools, f.tools, r.tools],
                "tools_ok": [o.tools_ok, f.tools_ok, r.tools_ok],
                "feedback": f.feedback,
            }
            for o, f, r in zip(offs, firsts, repeats, strict=True)
        ],
    }
    return out


def baseline(rows: list[Asked]) -> dict[str, Any]:
    """``--baseline``: what the model gets right alone, per group, learning off."""
    out: dict[str, Any] = {}
    for group in sorted({r.group for r in rows}, key=lambda g: (g not in GROUPS, g)):
        mine = [r for r in rows if r.group == group]
        out[group] = {
            kind: {
                "n": len(those),
                "correct": sum(r.correct for r in those),
                "share": share(those),
                "leaks": sum(1 for r in those if r.leak),
                "median_s": round(statistics.median(r.seconds for r in those), 2),
            }
            for kind in ("original", "paraphrase", "control")
            if (those := [r for r in mine if r.kind == kind])
        }
    return out


def print_baseline(f: dict[str, Any]) -> None:
    out = sys.stdout.write
    out(f"\nmodel {f['model']}, {f['threads'] or 'default'} thread(s), {f['seconds']} s in all\n")
    out("baseline, learning off (nothing taught):\n")
    for group, kinds in f["summary"].items():
        for kind, r in kinds.items():
            out(
                f"  {group:<8} {kind + 's':<12} {r['correct']:>3}/{r['n']:<3} "
                f"{percent(r['share']):>5}  leaks {r['leaks']}, median {r['median_s']} s\n"
            )
    out("\nwrong answers:\n")
    for r in f["rows"]:
        if not r["correct"]:
            out(
                f"  {r['group']:<8} {r['kind']:<10} {r['question']}\n    -> {r['answer'][:200]!r}\n"
            )


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def print_figures(f: dict[str, Any]) -> None:
    s = f["summary"]
    out = sys.stdout.write
    out(f"\nmodel {f['model']}, {f['threads'] or 'default'} thread(s), {f['seconds']} s in all\n")
    out(
        f"needs {s['needs']} ({s['needs_in_notes']} in the notes): first asked, "
        f"{percent(s['originals_correct'])} of those in the notes right, "
        f"{percent(s['originals_correct_outside'])} of the others; "
        f"{percent(s['originals_from_correction'])} answered from an earlier correction; "
        f"{s['corrected']} corrected ({s['corrected_in_notes']} in the notes)\n"
        f"tricky needs (learning_corpus/) {s['needs_tricky']}: first asked, "
        f"{percent(s['originals_correct_tricky'])} right, {s['corrected_tricky']} corrected; "
        f"all {s['needs_over_notes']} needs over the notes: "
        f"{percent(s['originals_correct_over_notes'])} right, "
        f"{s['corrected_over_notes']} corrected; {s['up_rated']} right answers rated up\n\n"
    )
    out(
        f"{'set':<28} {'n':>3} {'before':>7} {'after':>7} {'points':>7} "
        f"{'from corr.':>10} {'in prompt':>9} {'calls b/a':>10} {'leaks b/a':>9}\n"
    )
    names = [
        "paraphrases",
        "notes_corrected",
        "notes_right_first",
        "tricky",
        "tricky_corrected",
        "over_notes",
        "over_notes_corrected",
        "outside_notes",
        "all_paraphrases",
        "controls",
        "close_controls",
        "all_controls",
    ]
    labels = {
        "over_notes": "all needs over the notes",
        "over_notes_corrected": "over the notes, corrected",
    }
    for name in names:
        r = s[name]
        points = "-" if r["points"] is None else f"{r['points']:+.0f}"
        out(
            f"{labels.get(name, name):<28} {r['n']:>3} {percent(r['before']):>7} "
            f"{percent(r['after']):>7} "
            f"{points:>7} {percent(r['from_correction_after']):>10} "
            f"{percent(r['correction_in_prompt_after']):>9} "
            f"{r['model_calls_before']:>4}/{r['model_calls_after']:<5} "
            f"{r['leaks_before']:>4}/{r['leaks_after']:<4}\n"
        )
    o = s["over_notes"]
    points = "-" if o["points"] is None else f"{o['points']:+.0f}"
    out(
        f"\nparaphrases of all needs over the notes: {percent(o['before'])} -> "
        f"{percent(o['after'])}, {points} points (target +30); after: "
        f"{percent(o['from_correction_after'])} said from a correction or an up-rated answer "
        f"({percent(o['from_confirmed_after'])} up-rated), "
        f"{percent(o['correction_in_prompt_after'])} with one in the prompt\n"
    )
    out(
        f"right on screen (the answer, or what the user taught shown beside it): "
        f"{percent(o['on_screen_after'])} of the paraphrases of all needs over the notes "
        f"({o['related_shown_after']} shown something taught, {o['related_right_after']} "
        f"of it right for them); controls shown something taught: "
        f"{s['all_controls']['related_shown_after']} of {s['all_controls']['n']}\n"
    )
    out(
        f"learnt facts judged to answer a question (judge: {f.get('judge', 'off')}): "
        f"{o['judged_after']} paraphrases of needs over the notes, {o['judged_right_after']} "
        f"answered right; controls: {s['all_controls']['judged_after']} judged, "
        f"{s['all_controls']['facts_in_prompt_after']} given a learnt fact in all\n"
    )
    c = s["all_controls"]
    out(
        f"\ncontrols answered from a correction (false hits): {c['false_hits']} of {c['n']} "
        f"({percent(c['false_hit_share'])}; target <= 2%)\n"
    )
    t = s["tasks"]
    out(
        f"multi-step tasks {t['n']}: model calls {t['model_calls_without_replay']} without replay "
        f"-> {t['model_calls_with_replay']} with replay ({percent(t['fewer_calls'])} fewer; "
        f"target >= 50%), replayed {t['replayed']}/{t['n']}, success "
        f"{t['success_without_replay']} -> {t['success_with_replay']}\n"
    )
    out("  per task, learning off / first with learning / repeat:\n")
    for row in t["per_task"]:
        calls = "/".join(str(c) for c in row["calls"])
        ok = "/".join("ok" if x else "BAD" for x in row["success"])
        out(
            f"  calls {calls:<8} {ok:<10} replayed steps {row['replayed_steps']} "
            f"{row['feedback'] or '-':<10} {row['task'][:60]}\n"
        )
    r = f["refinement"]
    if r:
        out(
            f"\nrefinement: {r['status']} ({r['reason']}); {r['cases']} cases; version in force "
            f"{r['current_score']} vs candidate {r['candidate_score']}; lessons helped: "
            f"{r['lessons_helped']}; {r['seconds']} s\n  cases by kind {r['case_kinds']}; "
            f"regressions {r['regressions']}\n"
        )
        for item in r["refused_proposals"]:
            out(f"  refused lesson proposal ({item['reason']}): {item['op'].get('text', '')!r}\n")
    t = f["thresholds"]
    out(
        f"\ncorrected needs: the paraphrase's similarity to the corrected question (answered "
        f"from it at >= {t['correction_strong_similarity']} with names agreeing, shown to the "
        f"model at >= {t['correction_similarity']}):\n"
    )
    after = {r["question"]: r for r in f["rows"] if r["phase"] == "after"}
    for need in f["corrected_needs"]:
        row = after[need["paraphrase"]]
        how = (
            "from the correction"
            if row["from_correction"]
            else ("fact in the prompt" if row["correction_in_prompt"] else "model alone")
        )
        out(
            f"  {need['similarity']:.3f} {'names agree' if need['terms_agree'] else 'NAMES DIFFER'}"
            f"  {'right' if row['correct'] else 'WRONG'} ({how})  {need['paraphrase']}\n"
        )
    out(f"\nlessons ({len(f['lessons'])}):\n")
    for lesson in f["lessons"]:
        out(
            f"  #{lesson['id']} [{lesson['status']}, helpful {lesson['helpful']}, harmful "
            f"{lesson['harmful']}, evidence {len(lesson['evidence'])}] {lesson['text']}\n"
        )
    if not f["lessons"]:
        out("  (none)\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a GGUF to use instead of the default model")
    parser.add_argument(
        "--limit",
        type=int,
        default=0,
        help="only the first N needs of each group over the notes (notes, tricky)",
    )
    parser.add_argument(
        "--group",
        action="append",
        choices=GROUPS,
        help="only these needs (repeatable; default: all; the close controls come with outside)",
    )
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="only ask each need's question and paraphrase, and the controls, learning off",
    )
    parser.add_argument("--controls", type=int, default=None, help="only the first N controls")
    parser.add_argument(
        "--judge",
        default="off",
        metavar="MODEL",
        help="[learning] judge_model: a GGUF path or a catalogue name (default: off)",
    )
    parser.add_argument(
        "--judged-candidates",
        type=int,
        default=None,
        metavar="N",
        help="[learning] judged_candidates: how many nearest learnt facts the judge is asked about",
    )
    parser.add_argument("--tasks", type=int, default=None, help="only the first N tasks")
    parser.add_argument(
        "--outside",
        type=int,
        default=len(OUTSIDE),
        help="facts the notes do not hold, with a close control each (default: all 10)",
    )
    parser.add_argument("--threads", type=int, default=0, help="model threads (0: default)")
    parser.add_argument("--skip-refine", action="store_true")
    parser.add_argument(
        "--no-up-rating",
        action="store_true",
        help="the user only corrects wrong answers (by default right ones are also rated up)",
    )
    parser.add_argument(
        "--cache-dir",
        help="keep the model's saved prompt states here between runs (default: none, as a new "
        "user starts)",
    )
    parser.add_argument("--show", action="store_true", help="print every answer")
    parser.add_argument("--json", metavar="FILE", help="write all answers and figures here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="jackdaw-bench-learning-curve-") as tmp:
        figures = run(args, Path(tmp))
    (print_baseline if args.baseline else print_figures)(figures)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
