"""Slots: the literal values of a recorded run that came from the task, and how to refill them.

At induction every argument value of the script is compared with the words of the task. A
value (or a word-bounded part of a string value) that also appears in the task becomes a
slot: ``read_file(path="/notes/todo.md")`` for "What does todo.md say?" becomes
``path="/notes/{{file}}"``, and the task a pattern "what does (?P<file>.+?) say". A new task
that fits the pattern fills the slots from its own words; one that does not fit gets no
replay from that script (or a model fills the slots, and every value must occur in the task).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from agent_core.learning.similarity import normalize_question

# Words that never become slots: they carry the shape of a task, not its values.
_STOPWORD_TEXT = """a an the and or of to in on at for from with by about into
    is are was were be been
    what which who whom whose when where why how do does did done can could should would
    will shall may might must i me my mine you your we our they their it its this that
    these those there here please tell show give find get read open look list say says said
    file files folder note notes answer question use using up out not no yes all any some
    much many more most than then else if so as but also just only very"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_TOKEN = re.compile(r'"([^"]+)"|\'([^\']+)\'|([\w/~.][\w./\\:@+~-]*[\w]|\w)')
_PLACEHOLDER = re.compile(r"\{\{(@?\w+)\}\}")
_SLOT_KEY = "$slot"
MAX_SLOT_CHARS = 300


@dataclass(frozen=True)
class Slot:
    name: str
    type: str  # string | integer | number
    example: Any  # the value in the recorded run

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Slot:
        return cls(**data)


@dataclass(frozen=True)
class Templated:
    """The outcome of :func:`extract`: slots, argument templates and the task's pattern."""

    slots: list[Slot]
    arguments: list[Any]  # one template per step, in step order
    template: str  # the task with {slot} markers, for people
    pattern: str | None  # a regex over normalize_question(task); None: too little is fixed
    # Per step: earlier steps whose results its remaining literal values seem to come from
    # (the recorded values hold only while those results are unchanged).
    depends_on: list[list[int]]


def candidate_spans(task: str, max_words: int = 6) -> list[str]:
    """Words, runs of words, paths, numbers and quoted text of ``task`` that could be slot
    values; a run neither starts nor ends with a stopword."""
    tokens: list[tuple[int, int, bool]] = []  # start, end, is a stopword
    spans: list[str] = []
    for match in _TOKEN.finditer(task):
        group = next(i for i, g in enumerate(match.groups(), 1) if g is not None)
        start, end = match.span(group)
        text = task[start:end].rstrip(".,;:!?")
        end = start + len(text)
        if not text:
            continue
        if group < 3:  # quoted: the whole quotation is one value
            spans.append(text)
            continue
        weak = text.lower() in _STOPWORDS or (len(text) == 1 and not text.isdigit())
        tokens.append((start, end, weak))
    for i, (start, _, weak_first) in enumerate(tokens):
        if weak_first:
            continue
        for j in range(i, min(i + max_words, len(tokens))):
            end, weak_last = tokens[j][1], tokens[j][2]
            if not weak_last:
                spans.append(task[start:end])
    return list(dict.fromkeys(spans))


def _bounded(span: str) -> str:
    return rf"(?<![\w]){re.escape(span)}(?![\w])"


def extract(
    task: str, arguments: list[Any], observations: list[str] | None = None
) -> Templated | None:
    """Turn literal values taken from ``task`` into slots, and whole earlier results used as
    values into references (``{{@0}}``: the result of step 0); None when an argument holds
    text that looks like a slot marker (it could not be told apart)."""
    if any("{{" in s for s in _strings(arguments)):
        return None
    spans = sorted(candidate_spans(task), key=len, reverse=True)
    names: dict[str, Slot] = {}  # span -> slot
    used_names: set[str] = set()

    def slot_for(span: str, key: str, kind: str, example: Any) -> Slot:
        if span in names:
            return names[span]
        base = re.sub(r"\W+", "_", key).strip("_").lower() or "value"
        name, n = base, 2
        while name in used_names:
            name, n = f"{base}{n}", n + 1
        used_names.add(name)
        names[span] = Slot(name, kind, example)
        return names[span]

    alternation = re.compile("|".join(_bounded(s) for s in spans)) if spans else None

    def template(value: Any, key: str) -> Any:
        if isinstance(value, dict):
            return {k: template(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [template(v, key) for v in value]
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, int | float):
            text = repr(value) if isinstance(value, float) else str(value)
            if text in spans:
                kind = "integer" if isinstance(value, int) else "number"
                return {_SLOT_KEY: slot_for(text, key, kind, value).name}
            return value
        if isinstance(value, str) and alternation is not None:
            return alternation.sub(
                lambda m: "{{" + slot_for(m.group(0), key, "string", m.group(0)).name + "}}",
                value,
            )
        return value

    templated = [template(args, "value") for args in arguments]
    results = [o.strip() for o in (observations or [])]
    task_words = content_words(task)
    depends_on: list[list[int]] = []
    for k, args in enumerate(templated):
        earlier = results[:k]
        templated[k] = args = _refer_to_results(args, earlier)
        literal_words = content_words(" ".join(_PLACEHOLDER.sub(" ", s) for s in _strings(args)))
        literal_words |= {str(v) for v in _walk(args) if isinstance(v, int | float)}
        depends_on.append(
            [
                j
                for j, result in enumerate(earlier)
                if (literal_words - task_words) & content_words(result)
            ]
        )
    slots = list(names.values())
    task_template, pattern = _task_pattern(task, {s: names[s].name for s in names})
    return Templated(slots, templated, task_template, pattern, depends_on)


def content_words(text: str) -> set[str]:
    """Words that could carry a value: 3+ letters, or numbers."""
    return {
        w.lower()
        for w in re.findall(r"\w+", text)
        if (w.isdigit() or len(w) >= 3) and w.lower() not in _STOPWORDS
    }


def _refer_to_results(value: Any, results: list[str]) -> Any:
    """A value equal to (or containing, word-bounded) a short earlier result refers to it."""
    short = [(j, r) for j, r in enumerate(results) if 0 < len(r) <= 200 and "{{" not in r]
    if not short:
        return value
    if isinstance(value, dict):
        if set(value) == {_SLOT_KEY}:
            return value
        return {k: _refer_to_results(v, results) for k, v in value.items()}
    if isinstance(value, list):
        return [_refer_to_results(v, results) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        for j, result in short:
            if result == (repr(value) if isinstance(value, float) else str(value)):
                return {
                    _SLOT_KEY: f"@{j}",
                    "type": "integer" if isinstance(value, int) else "number",
                }
        return value
    if isinstance(value, str):
        for j, result in sorted(short, key=lambda item: -len(item[1])):
            value = re.sub(_bounded(result), "{{@" + str(j) + "}}", value)
    return value


_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_NUMBER_CAPTURE = r"-?\d+(?:\.\d+)?"


def _task_pattern(task: str, slot_names: dict[str, str]) -> tuple[str, str | None]:
    """The task with slots marked, and a regex over the normalised task that captures them."""
    normal = normalize_question(task)
    display = task.strip()
    if not slot_names:
        return display, re.escape(normal).replace(r"\ ", r"\s+")
    # Spans are matched in the normalised (lower-case) task; longest first.
    by_lower = {span.lower(): name for span, name in slot_names.items()}
    finder = re.compile("|".join(_bounded(s) for s in sorted(by_lower, key=len, reverse=True)))
    parts: list[str] = []
    literal_words = 0
    seen: set[str] = set()
    last = 0
    for match in finder.finditer(normal):
        literal = normal[last : match.start()]
        literal_words += len(re.findall(r"[^\W\d]{3,}", literal))
        parts.append(re.escape(literal).replace(r"\ ", r"\s+"))
        name = by_lower[match.group(0)]
        # A number is replaced by a number: "17 times 23 plus 4" is not "17 times {23}".
        capture = _NUMBER_CAPTURE if _NUMBER.fullmatch(match.group(0)) else ".+?"
        parts.append(f"(?P={name})" if name in seen else f"(?P<{name}>{capture})")
        seen.add(name)
        last = match.end()
    tail = normal[last:]
    literal_words += len(re.findall(r"[^\W\d]{3,}", tail))
    parts.append(re.escape(tail).replace(r"\ ", r"\s+"))
    for span in sorted(slot_names, key=len, reverse=True):
        display = re.sub(_bounded(span), "{" + slot_names[span] + "}", display)
    # A task that is mostly slots ("{x}") would match anything: no pattern, no replay by it.
    pattern = "".join(parts) if literal_words >= 2 else None
    return display, pattern


def match(pattern: str | None, task: str, slots: list[Slot]) -> dict[str, Any] | None:
    """The slot values ``task`` gives when it fits ``pattern``; None when it does not."""
    if pattern is None:
        return None
    found = re.fullmatch(pattern, normalize_question(task), re.IGNORECASE | re.DOTALL)
    if found is None:
        return None
    # The pattern ran over the lower-cased task: take each value from the original spelling.
    original = _original_spelling(task, found)
    return typed(original, slots)


def _original_spelling(task: str, found: re.Match[str]) -> dict[str, str]:
    normal = normalize_question(task)
    values: dict[str, str] = {}
    for name, value in found.groupdict().items():
        start = found.start(name)
        # normalize_question only lower-cases, collapses spaces and trims the end: find the
        # same text case-insensitively in the original, near the same place.
        candidates = [m.start() for m in re.finditer(re.escape(value), task, re.IGNORECASE)] or [-1]
        best = min(candidates, key=lambda i: abs(i - start))
        values[name] = task[best : best + len(value)] if best >= 0 else normal[start:]
    return values


def typed(values: dict[str, Any], slots: list[Slot]) -> dict[str, Any] | None:
    """Slot values converted to their slot's type; None when one does not convert or is empty."""
    out: dict[str, Any] = {}
    for slot in slots:
        raw = values.get(slot.name)
        if raw is None:
            return None
        text = str(raw).strip()
        if not text or len(text) > MAX_SLOT_CHARS:
            return None
        try:
            if slot.type == "integer":
                out[slot.name] = int(text)
            elif slot.type == "number":
                out[slot.name] = float(text)
            else:
                out[slot.name] = text
        except ValueError:
            return None
    return out


def fill(template: Any, values: dict[str, Any]) -> Any:
    """The arguments of a step with its slots filled in (KeyError for a missing slot)."""
    if isinstance(template, dict):
        if _SLOT_KEY in template and set(template) <= {_SLOT_KEY, "type"}:
            value = values[template[_SLOT_KEY]]
            kind = template.get("type")
            return int(value) if kind == "integer" else float(value) if kind == "number" else value
        return {k: fill(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, values) for v in template]
    if isinstance(template, str):
        return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), template)
    return template


def describe(template: Any) -> str:
    """A short rendering of an argument template for a workflow: ``path=<path>``."""
    if isinstance(template, dict) and _SLOT_KEY not in template:
        return ", ".join(f"{k}={describe(v)}" for k, v in template.items())
    if isinstance(template, dict):
        return _marker(template[_SLOT_KEY])
    if isinstance(template, list):
        return "[" + ", ".join(describe(v) for v in template) + "]"
    if isinstance(template, str):
        text = _PLACEHOLDER.sub(lambda m: _marker(m.group(1)), template)
        return repr(text if len(text) <= 60 else text[:57] + "...")
    return repr(template)


def _marker(name: str) -> str:
    return f"<result of step {int(name[1:]) + 1}>" if name.startswith("@") else f"<{name}>"


def slot_names_in(template: Any) -> set[str]:
    """The slots (and ``@N`` result references) a template needs."""
    names: set[str] = set()
    for item in _walk(template):
        if isinstance(item, dict) and _SLOT_KEY in item:
            names.add(item[_SLOT_KEY])
        elif isinstance(item, str):
            names.update(_PLACEHOLDER.findall(item))
    return names


def _walk(value: Any) -> Iterator[Any]:
    yield value
    if isinstance(value, dict):
        for v in value.values():
            yield from _walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v)


def _strings(value: Any) -> Iterator[str]:
    for item in _walk(value):
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            yield from (k for k in item if isinstance(k, str))
