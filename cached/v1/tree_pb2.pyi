from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DigestFunction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DIGEST_FUNCTION_UNSPECIFIED: _ClassVar[DigestFunction]
    BLAKE3: _ClassVar[DigestFunction]
    XXH3_128: _ClassVar[DigestFunction]
DIGEST_FUNCTION_UNSPECIFIED: DigestFunction
BLAKE3: DigestFunction
XXH3_128: DigestFunction

class Digest(_message.Message):
    __slots__ = ("hash", "size", "function")
    HASH_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    hash: str
    size: int
    function: DigestFunction
    def __init__(self, hash: _Optional[str] = ..., size: _Optional[int] = ..., function: _Optional[_Union[DigestFunction, str]] = ...) -> None: ...

class FileNode(_message.Message):
    __slots__ = ("path", "digest", "executable")
    PATH_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    EXECUTABLE_FIELD_NUMBER: _ClassVar[int]
    path: str
    digest: Digest
    executable: bool
    def __init__(self, path: _Optional[str] = ..., digest: _Optional[_Union[Digest, _Mapping]] = ..., executable: _Optional[bool] = ...) -> None: ...

class SymlinkNode(_message.Message):
    __slots__ = ("path", "target")
    PATH_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    path: str
    target: str
    def __init__(self, path: _Optional[str] = ..., target: _Optional[str] = ...) -> None: ...

class Tree(_message.Message):
    __slots__ = ("files", "symlinks", "directories")
    FILES_FIELD_NUMBER: _ClassVar[int]
    SYMLINKS_FIELD_NUMBER: _ClassVar[int]
    DIRECTORIES_FIELD_NUMBER: _ClassVar[int]
    files: _containers.RepeatedCompositeFieldContainer[FileNode]
    symlinks: _containers.RepeatedCompositeFieldContainer[SymlinkNode]
    directories: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, files: _Optional[_Iterable[_Union[FileNode, _Mapping]]] = ..., symlinks: _Optional[_Iterable[_Union[SymlinkNode, _Mapping]]] = ..., directories: _Optional[_Iterable[str]] = ...) -> None: ...
