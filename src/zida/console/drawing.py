"""A drawing of an approval process: its nodes top to bottom, condition routes and parallel branches side by side,
laid out here as shapes (boxes, lines, texts) that the page writes as SVG (``process.svg.html``: every text escaped
like any other value). No script, no external library: the drawing is part of the page.

Layout: a node list is a column; a route or a parallel node is a row of its branches' columns under a bar, each
headed by its condition's name (a route's default branch: "otherwise"), joined again by a bar below. A column's
width is its widest part, so nested routes widen their parent; the drawing scales to the page (``viewBox``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from zida.core.workflow.definition import (
    ApproverNode,
    CcNode,
    DepartmentHead,
    FieldUsers,
    FixedUsers,
    Manager,
    Node,
    OriginatorChoice,
    ProcessDefinition,
    RoleMembers,
    RouteNode,
)

__all__ = ["Drawing", "Shape", "draw_process"]

_BOX_W, _BOX_H = 200.0, 54.0
_GAP_Y, _GAP_X = 28.0, 24.0
_LABEL_H = 22.0
_MAX_TEXT = 26


@dataclass(frozen=True, slots=True)
class Shape:
    """One shape: ``box`` (x, y, w, h, a css class, two lines of text), ``line`` (x, y → x2, y2) or ``text``."""

    kind: str
    x: float
    y: float
    w: float = 0
    h: float = 0
    x2: float = 0
    y2: float = 0
    css: str = ""
    text: str = ""
    sub: str = ""


@dataclass
class Drawing:
    """The shapes of a process drawing and its size."""

    width: float
    height: float
    shapes: list[Shape] = field(default_factory=list)


def _cut(text: str) -> str:
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"


@dataclass
class _Block:
    width: float
    height: float
    shapes: list[Shape]


def _shift(shapes: Sequence[Shape], dx: float, dy: float) -> list[Shape]:
    return [Shape(s.kind, s.x + dx, s.y + dy, s.w, s.h, s.x2 + dx, s.y2 + dy, s.css, s.text, s.sub) for s in shapes]


class _Layout:
    def __init__(self, t: Callable[[str], str], lang: str) -> None:
        self.t, self.lang = t, lang

    def who(self, node: ApproverNode | CcNode) -> str:
        who = node.who
        if isinstance(who, FixedUsers):
            return ", ".join(who.user_ids)
        if isinstance(who, Manager):
            return f"{'主管' if self.lang != 'en_US' else 'Manager'} L{who.level}"
        if isinstance(who, DepartmentHead):
            return f"{'部门主管' if self.lang != 'en_US' else 'Department head'} L{who.level}"
        if isinstance(who, RoleMembers):
            return f"{'角色' if self.lang != 'en_US' else 'Role'} {who.role_id}"
        if isinstance(who, FieldUsers):
            return who.field_id
        if isinstance(who, OriginatorChoice):
            return "发起人自选" if self.lang != "en_US" else "Chosen at start"
        return self.t("approval.return_originator")

    def name(self, node: ApproverNode | CcNode) -> str:
        return node.name_en if self.lang == "en_US" and node.name_en else node.name

    def box(self, node: ApproverNode | CcNode) -> _Block:
        kind = "approver" if isinstance(node, ApproverNode) else "cc"
        label = f"{self.t('process.' + kind)} · {_cut(self.name(node))}"
        return _Block(
            _BOX_W, _BOX_H, [Shape("box", 0, 0, _BOX_W, _BOX_H, css=kind, text=label, sub=_cut(self.who(node)))]
        )

    def column(self, nodes: Sequence[Node]) -> _Block:
        blocks = [self.node(n) for n in nodes]
        if not blocks:
            return _Block(_BOX_W / 2, 0, [])
        width = max(b.width for b in blocks)
        shapes: list[Shape] = []
        y = 0.0
        for index, block in enumerate(blocks):
            if index:
                shapes.append(Shape("line", width / 2, y - _GAP_Y, x2=width / 2, y2=y))
            shapes += _shift(block.shapes, (width - block.width) / 2, y)
            y += block.height + _GAP_Y
        return _Block(width, y - _GAP_Y, shapes)

    def node(self, node: Node) -> _Block:
        if isinstance(node, ApproverNode | CcNode):
            return self.box(node)
        if isinstance(node, RouteNode):
            branches = [
                (self.t("process.otherwise") if b.is_default else _cut(b.name or self.t("process.condition")), b.nodes)
                for b in node.branches
            ]
            return self.branches(branches, "route")
        return self.branches([(f"{self.t('process.parallel')} {n + 1}", b) for n, b in enumerate(node.branches)],
                             "parallel")  # fmt: skip

    def branches(self, branches: Sequence[tuple[str, Sequence[Node]]], css: str) -> _Block:
        columns = [(label, self.column(nodes)) for label, nodes in branches]
        width = sum(max(c.width, _BOX_W) for _, c in columns) + _GAP_X * (len(columns) - 1)
        body = max((c.height for _, c in columns), default=0)
        top, bottom = 0.0, _GAP_Y + _LABEL_H + body + _GAP_Y
        shapes: list[Shape] = []
        x = 0.0
        centers = []
        for label, column in columns:
            slot = max(column.width, _BOX_W)
            center = x + slot / 2
            centers.append(center)
            shapes.append(Shape("line", center, top, x2=center, y2=top + _GAP_Y))
            shapes.append(Shape("text", center, top + _GAP_Y + _LABEL_H - 7, css=css, text=label))
            start = top + _GAP_Y + _LABEL_H
            shapes += _shift(column.shapes, x + (slot - column.width) / 2, start)
            shapes.append(Shape("line", center, start + column.height, x2=center, y2=bottom))
            x += slot + _GAP_X
        shapes.append(Shape("line", centers[0], top, x2=centers[-1], y2=top, css=f"bar {css}"))
        shapes.append(Shape("line", centers[0], bottom, x2=centers[-1], y2=bottom, css=f"bar {css}"))
        return _Block(width, bottom, shapes)


def draw_process(definition: ProcessDefinition, t: Callable[[str], str], lang: str) -> Drawing:
    """The drawing of ``definition``: start, its nodes, end."""
    layout = _Layout(t, lang)
    body = layout.column(definition.nodes)
    width = max(body.width, _BOX_W) + 2 * _GAP_X
    cx = width / 2
    shapes = [Shape("box", cx - 60, _GAP_Y, 120, 36, css="start", text=t("process.start"))]
    y = _GAP_Y + 36 + _GAP_Y
    shapes.append(Shape("line", cx, y - _GAP_Y, x2=cx, y2=y))
    shapes += _shift(body.shapes, (width - body.width) / 2, y)
    y += body.height + _GAP_Y
    if body.height:
        shapes.append(Shape("line", cx, y - _GAP_Y, x2=cx, y2=y))
    shapes.append(Shape("box", cx - 60, y, 120, 36, css="end", text=t("process.end")))
    return Drawing(width, y + 36 + _GAP_Y, shapes)
