from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AppStats(_message.Message):
    __slots__ = ("tenant", "app", "last_action_key", "last_build_unix_ms")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    APP_FIELD_NUMBER: _ClassVar[int]
    LAST_ACTION_KEY_FIELD_NUMBER: _ClassVar[int]
    LAST_BUILD_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    app: str
    last_action_key: str
    last_build_unix_ms: int
    def __init__(self, tenant: _Optional[str] = ..., app: _Optional[str] = ..., last_action_key: _Optional[str] = ..., last_build_unix_ms: _Optional[int] = ...) -> None: ...

class StatsResponse(_message.Message):
    __slots__ = ("blobs", "bytes", "actions", "apps", "app_stats", "digest_function", "root", "processes_started", "builds", "action_hits")
    BLOBS_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    APPS_FIELD_NUMBER: _ClassVar[int]
    APP_STATS_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FUNCTION_FIELD_NUMBER: _ClassVar[int]
    ROOT_FIELD_NUMBER: _ClassVar[int]
    PROCESSES_STARTED_FIELD_NUMBER: _ClassVar[int]
    BUILDS_FIELD_NUMBER: _ClassVar[int]
    ACTION_HITS_FIELD_NUMBER: _ClassVar[int]
    blobs: int
    bytes: int
    actions: int
    apps: int
    app_stats: _containers.RepeatedCompositeFieldContainer[AppStats]
    digest_function: str
    root: str
    processes_started: int
    builds: int
    action_hits: int
    def __init__(self, blobs: _Optional[int] = ..., bytes: _Optional[int] = ..., actions: _Optional[int] = ..., apps: _Optional[int] = ..., app_stats: _Optional[_Iterable[_Union[AppStats, _Mapping]]] = ..., digest_function: _Optional[str] = ..., root: _Optional[str] = ..., processes_started: _Optional[int] = ..., builds: _Optional[int] = ..., action_hits: _Optional[int] = ...) -> None: ...
