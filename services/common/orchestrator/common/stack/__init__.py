"""The embedded server stack: PostgreSQL, Valkey and NATS for one machine, and the supervisor
that runs our services beside them for `orch up`."""

from orchestrator.common.stack._proc import ReadyCheck, setpriv_prefix, spawn
from orchestrator.common.stack.binaries import (
    PostgresBinaries,
    find_nats_server,
    find_postgres,
    find_redis_server,
)
from orchestrator.common.stack.embedded import EmbeddedStack
from orchestrator.common.stack.errors import StackError
from orchestrator.common.stack.nats_server import NatsServer
from orchestrator.common.stack.net import pick_free_port, tcp_accepts
from orchestrator.common.stack.postgres_server import PostgresServer
from orchestrator.common.stack.redis_server import RedisServer
from orchestrator.common.stack.supervisor import Supervisor

__all__ = [
    "EmbeddedStack",
    "NatsServer",
    "PostgresBinaries",
    "PostgresServer",
    "ReadyCheck",
    "RedisServer",
    "StackError",
    "Supervisor",
    "find_nats_server",
    "find_postgres",
    "find_redis_server",
    "pick_free_port",
    "setpriv_prefix",
    "spawn",
    "tcp_accepts",
]
