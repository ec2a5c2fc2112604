"""The Context aggregate: a versioned JSON document that sessions, agents and tasks share."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from orchestrator.common.errors import InvalidArgument, NotFound, ResourceExhausted

from .changes import Change, Edit, Operation, apply_operations, check_document_size, check_write
from .diff import ContextDiff, DiffEntry, diff
from .events import ContextEventType, DomainEvent
from .limits import MAX_SHARES
from .merge import MergeStrategy, WriteLog, plan_merge
from .paths import get_at, parse_path
from .scope import ContextScope, Share, validate_owner
from .validation import as_utc, validate_data, validate_id, validate_name, validate_ttl
from .values import MISSING

_E = ContextEventType


@dataclass(frozen=True, slots=True)
class MergeOutcome:
    """`changes` were applied to the target (none under MANUAL). `proposal` is the target's
    document as the merge leaves it, or under MANUAL would leave it. `moved_base` is set when
    the merge moved the common base kept on the source (a clone merged into its origin)."""

    changes: tuple[Change, ...]
    conflicts: tuple[DiffEntry, ...]
    merged: bool
    proposal: dict[str, Any]
    moved_base: dict[str, Any] | None = None


@dataclass(kw_only=True, slots=True)
class Context:
    """A context as the domain sees it; fields mirror the `Context` proto message.

    `create` makes a new, validated context; the constructor rebuilds a stored one. Mutations
    take `now` (the domain reads no clock) and refuse before changing anything. A write that
    changes the data bumps `version` by one and records one DomainEvent carrying its changes.

    `base` is kept on clones: the common base with the origin for diffs and merges. It starts
    as the data at the clone and moves to the source's data with every merge between the two
    that writes, as a version control system's merge base does.
    """

    id: str
    scope: ContextScope
    owner_id: str = ""
    name: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    version: int = 1
    shared_with: list[Share] = field(default_factory=list)
    cloned_from_id: str | None = None
    cloned_from_version: int = 0
    base: dict[str, Any] | None = None
    expires_at: datetime | None = None
    created_by: str = ""
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None
    events: list[DomainEvent] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def create(
        cls,
        *,
        now: datetime,
        scope: ContextScope,
        owner_id: str = "",
        name: str = "",
        data: Mapping[str, Any] | None = None,
        ttl_seconds: int = 0,
        created_by: str = "",
        context_id: str | None = None,
    ) -> Context:
        """Version 1 with a `context.created` event; an empty id becomes a uuid4."""
        context = cls._new(now, scope, owner_id, name, data, ttl_seconds, created_by, context_id)
        context._record(_E.CREATED, context.created_at, actor=created_by)
        return context

    @classmethod
    def _new(
        cls,
        now: datetime,
        scope: ContextScope,
        owner_id: str,
        name: str,
        data: Mapping[str, Any] | None,
        ttl_seconds: int,
        created_by: str,
        context_id: str | None,
        id_field: str = "context_id",
    ) -> Context:
        moment = as_utc(now)
        ttl = validate_ttl(scope, ttl_seconds)
        context = cls(
            id=validate_id(context_id, id_field),
            scope=scope,
            owner_id=validate_owner(scope, owner_id),
            name=validate_name(name),
            data=copy.deepcopy(validate_data(data)),
            expires_at=moment + timedelta(seconds=ttl) if ttl is not None else None,
            created_by=created_by,
            created_at=moment,
            updated_at=moment,
        )
        check_document_size(context.data, context.id)
        return context

    def clone(
        self,
        now: datetime,
        *,
        scope: ContextScope,
        owner_id: str = "",
        name: str = "",
        ttl_seconds: int = 0,
        actor: str = "",
        clone_id: str | None = None,
    ) -> Context:
        """A new, independent context with this one's data, remembering it as its origin."""
        self.ensure_visible(now)
        clone = Context._new(
            now, scope, owner_id, name, self.data, ttl_seconds, actor, clone_id, "clone_id"
        )
        if clone.id == self.id:
            raise InvalidArgument("clone_id names the context being cloned", field="clone_id")
        clone.cloned_from_id, clone.cloned_from_version = self.id, self.version
        clone.base = copy.deepcopy(self.data)
        clone._record(_E.CLONED, clone.created_at, actor=actor)
        return clone

    def value_at(self, path: str) -> Any:
        """The value at a dot path; NOT_FOUND when nothing is there."""
        value = get_at(self.data, parse_path(path, "path"), "path")
        if value is MISSING:
            raise NotFound(f"context {self.id} has no value at {path!r}")
        return value

    def update(
        self, now: datetime, operations: Sequence[Operation], *, actor: str = ""
    ) -> list[Change]:
        """Applies every operation in order, or none, as one new version. An update that
        changes nothing (every value already as asked) records nothing and keeps the version."""
        self.ensure_visible(now)
        data, edits = apply_operations(self.data, operations)
        check_write(data, edits, self.id)
        return self._write(data, edits, now, actor, _E.UPDATED)

    def diff(self, other: Context) -> ContextDiff:
        return diff(self.data, other.data, self.common_base(other))

    def merge_from(
        self,
        source: Context,
        strategy: MergeStrategy,
        now: datetime,
        *,
        actor: str = "",
        target_log: WriteLog | None = None,
        source_log: WriteLog | None = None,
    ) -> MergeOutcome:
        """Merges `source` into this context (see `merge` for the strategies)."""
        if source.id == self.id:
            raise InvalidArgument(
                f"source_context_id and target_context_id both name context {self.id}; "
                "a context cannot be merged with itself",
                field="source_context_id",
            )
        self.ensure_visible(now)
        source.ensure_visible(now)
        plan = plan_merge(
            self.data,
            source.data,
            strategy,
            base=self.common_base(source),
            target_log=target_log,
            source_log=source_log,
        )
        if strategy is MergeStrategy.MANUAL:
            return MergeOutcome((), plan.conflicts, merged=False, proposal=plan.data)
        check_write(plan.data, plan.edits, self.id)
        changes = self._write(plan.data, list(plan.edits), now, actor, _E.MERGED)
        moved_base = None
        if changes and self.cloned_from_id == source.id:
            self.base = copy.deepcopy(source.data)
        elif changes and source.cloned_from_id == self.id:
            moved_base = copy.deepcopy(source.data)
        return MergeOutcome(tuple(changes), plan.conflicts, True, self.data, moved_base)

    def share(
        self, now: datetime, scope: ContextScope, owner_id: str, *, actor: str = ""
    ) -> Share | None:
        """Lets another scope and owner use this context; None when it already may."""
        self.ensure_visible(now)
        if scope is ContextScope.TEMPORARY:
            raise InvalidArgument(
                "a share is not a copy and cannot expire on its own; clone into TEMPORARY instead",
                field="scope",
            )
        owner = validate_owner(scope, owner_id)
        if (scope, owner) == (self.scope, self.owner_id):
            raise InvalidArgument(
                f"context {self.id} is owned by {scope.upper()} {owner!r} already", field="scope"
            )
        if any((s.scope, s.owner_id) == (scope, owner) for s in self.shared_with):
            return None
        if len(self.shared_with) >= MAX_SHARES:
            raise ResourceExhausted(
                f"context {self.id} is shared with {len(self.shared_with)} owners already; "
                f"at most {MAX_SHARES} are allowed"
            )
        moment = as_utc(now)
        share = Share(scope, owner, actor, moment)
        self.shared_with.append(share)
        self._record(_E.SHARED, moment, actor=actor, share=share)
        return share

    def delete(self, now: datetime, *, actor: str = "") -> None:
        """Soft delete: the context leaves Get and List; its history stays."""
        self.ensure_visible(now)
        self._end(now, actor, _E.DELETED)

    def expire(self, now: datetime, *, actor: str = "") -> None:
        if self.deleted_at is not None or not self.is_expired(now):
            raise ValueError(f"context {self.id} is not a live context past its expiry")
        self._end(now, actor, _E.EXPIRED)

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and as_utc(now) >= self.expires_at

    def ensure_visible(self, now: datetime) -> None:
        """NOT_FOUND once deleted or expired, whether or not the sweeper has come by."""
        if self.deleted_at is not None:
            raise NotFound(f"context {self.id} does not exist")
        if self.expires_at is not None and self.is_expired(now):
            raise NotFound(f"context {self.id} expired at {self.expires_at.isoformat()}")

    def common_base(self, other: Context) -> dict[str, Any] | None:
        """The data the two last agreed on, when one was cloned from the other."""
        if self.cloned_from_id == other.id:
            return self.base
        if other.cloned_from_id == self.id:
            return other.base
        return None

    def pull_events(self) -> list[DomainEvent]:
        """The events recorded since the last pull, oldest first; the list is then emptied."""
        events, self.events = self.events, []
        return events

    def _write(
        self,
        data: dict[str, Any],
        edits: list[Edit],
        now: datetime,
        actor: str,
        event: ContextEventType,
    ) -> list[Change]:
        if not edits:
            return []
        moment = as_utc(now)
        self.version += 1
        self.data, self.updated_at = data, moment
        changes = [Change(e.path, e.old, e.new, actor, moment, self.version) for e in edits]
        self._record(event, moment, actor=actor, changes=tuple(changes))
        return changes

    def _end(self, now: datetime, actor: str, event: ContextEventType) -> None:
        moment = as_utc(now)
        self.deleted_at = self.updated_at = moment
        self._record(event, moment, actor=actor)

    def _record(
        self,
        event: ContextEventType,
        moment: datetime,
        *,
        actor: str = "",
        changes: tuple[Change, ...] = (),
        share: Share | None = None,
    ) -> None:
        self.events.append(DomainEvent(event, self.id, self.version, moment, actor, changes, share))
