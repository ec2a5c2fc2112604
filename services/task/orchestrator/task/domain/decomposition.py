"""Splitting a task into subtasks, recursively: by template, or by heuristics from its text.

AUTO picks the template whose words the title (counted twice) and description use most,
when they use them at least twice; otherwise the text is split: a bulleted list gives parallel
parts, a numbered list, "then" / "after that" or several sentences give a sequence, and text
with no structure splits into design, implement and verify. Each part takes a share of the
parent's PERT estimate (so complexity follows from size), the capabilities it needs, and
finish-to-start dependencies on the sibling parts it waits for. A part still larger than
SPLIT_ABOVE_HOURS splits again, by the template its part names or into design / implement /
verify, until `max_depth` levels exist below the task.
"""

from __future__ import annotations

import re
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import datetime

from orchestrator.common.errors import InvalidArgument

from .dependency import Dependency
from .estimate import complexity_of
from .kinds import Capability, DecompositionTemplate
from .task import Task
from .templates import CAPABILITY_WORDS, DESIGN_IMPLEMENT_VERIFY, KEYWORDS, TEMPLATES, Part
from .validation import DESCRIPTION_MAX, TITLE_MAX

DEFAULT_MAX_DEPTH = 3
MAX_DEPTH = 5
SPLIT_ABOVE_HOURS = 4.0
MAX_TEXT_PARTS = 25
MAX_SUBTASKS = 2_000
MIN_TEMPLATE_SCORE = 2
_CONTEXT_CHARS = 2_000

_AUTO = DecompositionTemplate.AUTO
# Enough room for any split still queued, so the total stays under MAX_SUBTASKS.
_MOST_PARTS = max(len(parts) for parts in (*TEMPLATES.values(), DESIGN_IMPLEMENT_VERIFY))

_WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_BULLET = re.compile(r"^\s*[-*•]\s+(.+)$")
_NUMBERED = re.compile(r"^\s*\d+[.)]\s+(.+)$")
_THEN = re.compile(r"(?:,|;)?\s*\b(?:and then|then|after that|afterwards|finally)\b\s*", re.I)
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9])")


@dataclass(frozen=True, slots=True)
class Decomposition:
    template: DecompositionTemplate | None
    # Parents before their children (breadth first), siblings in order.
    subtasks: list[Task]
    dependencies: list[Dependency]


def validate_max_depth(value: int) -> int:
    if value == 0:
        return DEFAULT_MAX_DEPTH
    if not 1 <= value <= MAX_DEPTH:
        raise InvalidArgument(
            f"max_depth must be 1 to {MAX_DEPTH} (or 0 for {DEFAULT_MAX_DEPTH}); got {value}",
            field="max_depth",
        )
    return value


def decompose(
    task: Task,
    template: DecompositionTemplate,
    max_depth: int,
    now: datetime,
    *,
    actor: str = "",
) -> Decomposition:
    """Creates the subtasks of `task` (PENDING, each with its `task.created` event) and marks
    `task` decomposed. Nothing is changed when `task` may not be decomposed."""
    depth = validate_max_depth(max_depth)
    chosen = choose_template(task.title, task.description) if template is _AUTO else template
    first = TEMPLATES[chosen] if chosen else parts_from_text(task.title, task.description)
    subtasks: list[Task] = []
    dependencies: list[Dependency] = []
    queue: deque[tuple[Task, tuple[Part, ...], int]] = deque([(task, first, 1)])
    while queue:
        parent, parts, level = queue.popleft()
        children = _children(parent, parts, now, actor)
        if parent is task:
            task.decompose(now, [c.id for c, _ in children], actor=actor)
        else:
            parent.child_ids = [c.id for c, _ in children]
        for child, part in children:
            subtasks.append(child)
            dependencies.extend(child.dependencies)
            room = len(subtasks) + (len(queue) + 1) * _MOST_PARTS <= MAX_SUBTASKS
            if level < depth and _worth_splitting(child, part) and room:
                then = TEMPLATES[part.then] if part.then else DESIGN_IMPLEMENT_VERIFY
                queue.append((child, then, level + 1))
    return Decomposition(chosen, subtasks, dependencies)


def _worth_splitting(child: Task, part: Part) -> bool:
    return not part.atomic and child.estimate.expected_hours > SPLIT_ABOVE_HOURS


def choose_template(title: str, description: str) -> DecompositionTemplate | None:
    title_words = set(_WORD.findall(title.lower()))
    text_words = set(_WORD.findall(description.lower()))
    best: tuple[int, DecompositionTemplate] | None = None
    for template, words in KEYWORDS.items():
        score = 2 * len(title_words & words) + len(text_words & words)
        if score >= MIN_TEMPLATE_SCORE and (best is None or score > best[0]):
            best = (score, template)
    return best[1] if best else None


def parts_from_text(title: str, description: str) -> tuple[Part, ...]:
    """Parts from the text's own structure; design / implement / verify when it has none."""
    lines = description.splitlines()
    bullets = [m.group(1) for line in lines if (m := _BULLET.match(line))]
    numbered = [m.group(1) for line in lines if (m := _NUMBERED.match(line))]
    flat = " ".join(line.strip() for line in lines if line.strip()) or title
    if len(bullets) >= 2:
        return _text_parts(bullets, sequential=False)
    if len(numbered) >= 2:
        return _text_parts(numbered, sequential=True)
    for splitter in (_THEN, _SENTENCE):
        pieces = [p.strip(" .;,") for p in splitter.split(flat)]
        pieces = [p for p in pieces if len(p.split()) >= 2]
        if len(pieces) >= 2:
            return _text_parts(pieces, sequential=True)
    return DESIGN_IMPLEMENT_VERIFY


def _text_parts(items: list[str], *, sequential: bool) -> tuple[Part, ...]:
    if len(items) > MAX_TEXT_PARTS:
        # The rest joins the last part rather than being dropped.
        items = [*items[: MAX_TEXT_PARTS - 1], "; ".join(items[MAX_TEXT_PARTS - 1 :])]
    share = 1 / len(items)
    parts = []
    for index, text in enumerate(items):
        capabilities, task_type = _capabilities_of(text)
        after = (f"part-{index - 1}",) if sequential and index else ()
        parts.append(Part(f"part-{index}", text, task_type, text, capabilities, share, after))
    return tuple(parts)


def _capabilities_of(text: str) -> tuple[tuple[Capability, ...], str]:
    words = set(_WORD.findall(text.lower()))
    for keys, capabilities, task_type in CAPABILITY_WORDS:
        if words & keys:
            return capabilities, task_type
    return (Capability.CODE_GENERATION,), "implementation"


def _children(
    parent: Task, parts: tuple[Part, ...], now: datetime, actor: str
) -> list[tuple[Task, Part]]:
    ids = {part.key: str(uuid.uuid4()) for part in parts}
    children = []
    for part in parts:
        child = Task.create(
            now=now,
            task_id=ids[part.key],
            session_id=parent.session_id,
            parent_id=parent.id,
            depth=parent.depth + 1,
            title=_title(part, parent),
            description=_description(part, parent),
            task_type=part.task_type,
            priority=parent.priority,
            required_capabilities=part.capabilities,
            technologies=parent.technologies,
            estimate=(estimate := parent.estimate.scaled(part.weight)),
            complexity=complexity_of(estimate.expected_hours),
            depends_on=[ids[key] for key in part.after],
            max_attempts=parent.max_attempts,
            input=parent.input,
            metadata={"decomposed_from": parent.id, "part": part.key},
            created_by=actor,
        )
        children.append((child, part))
    return children


def _title(part: Part, parent: Task) -> str:
    text = part.title if part.key.startswith("part-") else f"{part.title}: {parent.title}"
    return _clip(text, TITLE_MAX)


def _description(part: Part, parent: Task) -> str:
    context = parent.description[:_CONTEXT_CHARS]
    text = f"{part.brief}\n\nPart of: {parent.title}" + (f"\n\n{context}" if context else "")
    return _clip(text, DESCRIPTION_MAX)


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split()) if limit == TITLE_MAX else text
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
