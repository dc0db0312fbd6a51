from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class RootRecord(_message.Message):
    __slots__ = ("value", "blobs", "trees", "owner", "created_ns", "size")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    BLOBS_FIELD_NUMBER: _ClassVar[int]
    TREES_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    CREATED_NS_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    value: bytes
    blobs: _containers.RepeatedScalarFieldContainer[bytes]
    trees: _containers.RepeatedScalarFieldContainer[bytes]
    owner: str
    created_ns: int
    size: int
    def __init__(self, value: _Optional[bytes] = ..., blobs: _Optional[_Iterable[bytes]] = ..., trees: _Optional[_Iterable[bytes]] = ..., owner: _Optional[str] = ..., created_ns: _Optional[int] = ..., size: _Optional[int] = ...) -> None: ...
