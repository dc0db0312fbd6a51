from cached.v1 import tree_pb2 as _tree_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SignedRecord(_message.Message):
    __slots__ = ("version", "kind", "key", "value_digest", "value", "key_id", "signature", "signed_unix_ms")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    SIGNED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    version: int
    kind: str
    key: str
    value_digest: _tree_pb2.Digest
    value: bytes
    key_id: str
    signature: bytes
    signed_unix_ms: int
    def __init__(self, version: _Optional[int] = ..., kind: _Optional[str] = ..., key: _Optional[str] = ..., value_digest: _Optional[_Union[_tree_pb2.Digest, _Mapping]] = ..., value: _Optional[bytes] = ..., key_id: _Optional[str] = ..., signature: _Optional[bytes] = ..., signed_unix_ms: _Optional[int] = ...) -> None: ...
