"""Domain events: what happened, to which object, by whom, when — in Zida's own words.

The outbox keeps them exactly so (``zida.core.events.outbox``); each consumer renders its own envelope (DingTalk's
approval callbacks: ``zida.dialects.dingtalk.events``; the admin API shows them as they are).

Topics and the facts their ``data`` holds (times are epoch ms, people are userIds):

============================ ==================== =================================================================
topic                        object               data
============================ ==================== =================================================================
``record.created``           record id            ``form``, ``changes`` ``{fieldId: {"new": value}}``
``record.updated``           record id            ``form``, ``changes`` ``{fieldId: {"old": …, "new": …}}``
``record.deleted``           record id            ``form``
``record.commented``         record id            ``form``, ``comment`` (id), ``content``, ``reply_to``, ``mentions``
``process.started``          process instance id  ``form``, ``process`` (code), ``title``, ``originator``,
                                                  ``started_at``
``process.finished``         process instance id  as started, and ``result`` (agree/disagree), ``finished_at``
``process.terminated``       process instance id  as started, and ``finished_at``
``process.deleted``          process instance id  as started, and ``finished_at`` (``actor``: who deleted it)
``task.created``             task id              ``process_instance``, ``form``, ``process``, ``title``, ``node``,
                                                  ``assignee``, ``created_at``
``task.finished``            task id              as created, and ``result`` (agree/disagree/redirect/return),
                                                  ``remark``, ``finished_at``
``task.cancelled``           task id              as created
``corp.*`` ``user.*``        the object's id      the fields that changed ``{name: {"old": …, "new": …}}`` (for
``department.*`` ``role.*``                       ``*.created`` every field as ``{"new": …}``, for ``*.deleted``
``credential.*`` ``app.*``                        as ``{"old": …}``; secrets only as ``{"changed": true}``);
``form.*``                                        actions: ``created``, ``updated``, ``deleted``, and
                                                  ``user.deactivated`` / ``user.reactivated``,
                                                  ``credential.rotated`` / ``credential.revoked``
============================ ==================== =================================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DomainEvent"]


@dataclass(frozen=True, slots=True)
class DomainEvent:
    """One fact of a corp, as it is stored in the outbox (``event_id``, ``corp_id``: filled in when read)."""

    topic: str
    corp_pk: int
    object_id: str
    actor: str | None
    at: int
    data: Mapping[str, Any] = field(default_factory=dict)
    app: str | None = None
    event_id: int = 0
    corp_id: str = ""

    def payload(self) -> dict[str, Any]:
        """The stored JSON of the event (the row's other columns hold the topic, corp and time)."""
        return {"object": self.object_id, "actor": self.actor, "app": self.app, "data": dict(self.data)}
