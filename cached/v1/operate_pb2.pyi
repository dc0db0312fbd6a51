from cached.v1 import admin_pb2 as _admin_pb2
from cached.v1 import records_pb2 as _records_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Tombstone(_message.Message):
    __slots__ = ("cause", "removed_unix_ms", "owner")
    CAUSE_FIELD_NUMBER: _ClassVar[int]
    REMOVED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    cause: str
    removed_unix_ms: int
    owner: str
    def __init__(self, cause: _Optional[str] = ..., removed_unix_ms: _Optional[int] = ..., owner: _Optional[str] = ...) -> None: ...

class AppSnapshot(_message.Message):
    __slots__ = ("keys", "record", "packages")
    class PackagesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    KEYS_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    PACKAGES_FIELD_NUMBER: _ClassVar[int]
    keys: _admin_pb2.KeyComponents
    record: _records_pb2.AppRecord
    packages: _containers.ScalarMap[str, str]
    def __init__(self, keys: _Optional[_Union[_admin_pb2.KeyComponents, _Mapping]] = ..., record: _Optional[_Union[_records_pb2.AppRecord, _Mapping]] = ..., packages: _Optional[_Mapping[str, str]] = ...) -> None: ...

class AppHistory(_message.Message):
    __slots__ = ("last", "before")
    LAST_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    last: AppSnapshot
    before: AppSnapshot
    def __init__(self, last: _Optional[_Union[AppSnapshot, _Mapping]] = ..., before: _Optional[_Union[AppSnapshot, _Mapping]] = ...) -> None: ...
