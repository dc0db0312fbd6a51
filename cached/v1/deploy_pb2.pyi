from cached.v1 import cached_pb2 as _cached_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DeployRequest(_message.Message):
    __slots__ = ("tenant", "app", "action_key", "options")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    APP_FIELD_NUMBER: _ClassVar[int]
    ACTION_KEY_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    app: str
    action_key: str
    options: _cached_pb2.DeployOptions
    def __init__(self, tenant: _Optional[str] = ..., app: _Optional[str] = ..., action_key: _Optional[str] = ..., options: _Optional[_Union[_cached_pb2.DeployOptions, _Mapping]] = ...) -> None: ...

class RollbackRequest(_message.Message):
    __slots__ = ("tenant", "app", "target", "to_sequence", "force")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    APP_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    TO_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    app: str
    target: str
    to_sequence: int
    force: bool
    def __init__(self, tenant: _Optional[str] = ..., app: _Optional[str] = ..., target: _Optional[str] = ..., to_sequence: _Optional[int] = ..., force: _Optional[bool] = ...) -> None: ...

class DeployResponse(_message.Message):
    __slots__ = ("result", "versions")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    result: _cached_pb2.DeployResult
    versions: _containers.RepeatedCompositeFieldContainer[DeployedVersion]
    def __init__(self, result: _Optional[_Union[_cached_pb2.DeployResult, _Mapping]] = ..., versions: _Optional[_Iterable[_Union[DeployedVersion, _Mapping]]] = ...) -> None: ...

class DeployedVersion(_message.Message):
    __slots__ = ("sequence", "target", "environment", "version_id", "action_key", "deployed_unix_ms", "urls", "script_name", "vars", "live")
    class VarsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_KEY_FIELD_NUMBER: _ClassVar[int]
    DEPLOYED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    URLS_FIELD_NUMBER: _ClassVar[int]
    SCRIPT_NAME_FIELD_NUMBER: _ClassVar[int]
    VARS_FIELD_NUMBER: _ClassVar[int]
    LIVE_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    target: str
    environment: _cached_pb2.DeployEnvironment
    version_id: str
    action_key: str
    deployed_unix_ms: int
    urls: _containers.RepeatedScalarFieldContainer[str]
    script_name: str
    vars: _containers.ScalarMap[str, str]
    live: bool
    def __init__(self, sequence: _Optional[int] = ..., target: _Optional[str] = ..., environment: _Optional[_Union[_cached_pb2.DeployEnvironment, str]] = ..., version_id: _Optional[str] = ..., action_key: _Optional[str] = ..., deployed_unix_ms: _Optional[int] = ..., urls: _Optional[_Iterable[str]] = ..., script_name: _Optional[str] = ..., vars: _Optional[_Mapping[str, str]] = ..., live: _Optional[bool] = ...) -> None: ...

class DeployHistory(_message.Message):
    __slots__ = ("versions",)
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[DeployedVersion]
    def __init__(self, versions: _Optional[_Iterable[_Union[DeployedVersion, _Mapping]]] = ...) -> None: ...
