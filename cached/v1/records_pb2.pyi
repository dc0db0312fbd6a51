from cached.v1 import tree_pb2 as _tree_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ActionRecord(_message.Message):
    __slots__ = ("outputs", "output_tree", "log", "deps_key", "created_unix_ms", "build_ms", "tenant", "app", "lockfile")
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TREE_FIELD_NUMBER: _ClassVar[int]
    LOG_FIELD_NUMBER: _ClassVar[int]
    DEPS_KEY_FIELD_NUMBER: _ClassVar[int]
    CREATED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    BUILD_MS_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    APP_FIELD_NUMBER: _ClassVar[int]
    LOCKFILE_FIELD_NUMBER: _ClassVar[int]
    outputs: _tree_pb2.Tree
    output_tree: _tree_pb2.Digest
    log: _tree_pb2.Digest
    deps_key: str
    created_unix_ms: int
    build_ms: float
    tenant: str
    app: str
    lockfile: bytes
    def __init__(self, outputs: _Optional[_Union[_tree_pb2.Tree, _Mapping]] = ..., output_tree: _Optional[_Union[_tree_pb2.Digest, _Mapping]] = ..., log: _Optional[_Union[_tree_pb2.Digest, _Mapping]] = ..., deps_key: _Optional[str] = ..., created_unix_ms: _Optional[int] = ..., build_ms: _Optional[float] = ..., tenant: _Optional[str] = ..., app: _Optional[str] = ..., lockfile: _Optional[bytes] = ...) -> None: ...

class AppRecord(_message.Message):
    __slots__ = ("last_action_key", "last_build_unix_ms", "sources", "env", "deps_key", "toolchain", "script", "mode", "purge_watermark_ns", "builds")
    class SourcesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class EnvEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    LAST_ACTION_KEY_FIELD_NUMBER: _ClassVar[int]
    LAST_BUILD_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    DEPS_KEY_FIELD_NUMBER: _ClassVar[int]
    TOOLCHAIN_FIELD_NUMBER: _ClassVar[int]
    SCRIPT_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    PURGE_WATERMARK_NS_FIELD_NUMBER: _ClassVar[int]
    BUILDS_FIELD_NUMBER: _ClassVar[int]
    last_action_key: str
    last_build_unix_ms: int
    sources: _containers.ScalarMap[str, str]
    env: _containers.ScalarMap[str, str]
    deps_key: str
    toolchain: str
    script: str
    mode: str
    purge_watermark_ns: int
    builds: int
    def __init__(self, last_action_key: _Optional[str] = ..., last_build_unix_ms: _Optional[int] = ..., sources: _Optional[_Mapping[str, str]] = ..., env: _Optional[_Mapping[str, str]] = ..., deps_key: _Optional[str] = ..., toolchain: _Optional[str] = ..., script: _Optional[str] = ..., mode: _Optional[str] = ..., purge_watermark_ns: _Optional[int] = ..., builds: _Optional[int] = ...) -> None: ...

class DepsRecord(_message.Message):
    __slots__ = ("tree", "files", "bytes", "packages", "created_unix_ms", "install_ms", "refs", "method")
    class PackagesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TREE_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    PACKAGES_FIELD_NUMBER: _ClassVar[int]
    CREATED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    INSTALL_MS_FIELD_NUMBER: _ClassVar[int]
    REFS_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    tree: _tree_pb2.Digest
    files: int
    bytes: int
    packages: _containers.ScalarMap[str, str]
    created_unix_ms: int
    install_ms: float
    refs: _containers.RepeatedCompositeFieldContainer[PackageRef]
    method: str
    def __init__(self, tree: _Optional[_Union[_tree_pb2.Digest, _Mapping]] = ..., files: _Optional[int] = ..., bytes: _Optional[int] = ..., packages: _Optional[_Mapping[str, str]] = ..., created_unix_ms: _Optional[int] = ..., install_ms: _Optional[float] = ..., refs: _Optional[_Iterable[_Union[PackageRef, _Mapping]]] = ..., method: _Optional[str] = ...) -> None: ...

class PackageRef(_message.Message):
    __slots__ = ("path", "name", "version", "integrity")
    PATH_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    INTEGRITY_FIELD_NUMBER: _ClassVar[int]
    path: str
    name: str
    version: str
    integrity: str
    def __init__(self, path: _Optional[str] = ..., name: _Optional[str] = ..., version: _Optional[str] = ..., integrity: _Optional[str] = ...) -> None: ...

class PackageRecord(_message.Message):
    __slots__ = ("tree", "name", "version", "files", "bytes", "tarball_bytes", "fetched_unix_ms")
    TREE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    TARBALL_BYTES_FIELD_NUMBER: _ClassVar[int]
    FETCHED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    tree: _tree_pb2.Digest
    name: str
    version: str
    files: int
    bytes: int
    tarball_bytes: int
    fetched_unix_ms: int
    def __init__(self, tree: _Optional[_Union[_tree_pb2.Digest, _Mapping]] = ..., name: _Optional[str] = ..., version: _Optional[str] = ..., files: _Optional[int] = ..., bytes: _Optional[int] = ..., tarball_bytes: _Optional[int] = ..., fetched_unix_ms: _Optional[int] = ...) -> None: ...

class ResolutionRecord(_message.Message):
    __slots__ = ("lockfile", "resolved_unix_ms")
    LOCKFILE_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    lockfile: bytes
    resolved_unix_ms: int
    def __init__(self, lockfile: _Optional[bytes] = ..., resolved_unix_ms: _Optional[int] = ...) -> None: ...

class ViteCacheRecord(_message.Message):
    __slots__ = ("tree", "deps_key", "created_unix_ms")
    TREE_FIELD_NUMBER: _ClassVar[int]
    DEPS_KEY_FIELD_NUMBER: _ClassVar[int]
    CREATED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    tree: _tree_pb2.Digest
    deps_key: str
    created_unix_ms: int
    def __init__(self, tree: _Optional[_Union[_tree_pb2.Digest, _Mapping]] = ..., deps_key: _Optional[str] = ..., created_unix_ms: _Optional[int] = ...) -> None: ...
