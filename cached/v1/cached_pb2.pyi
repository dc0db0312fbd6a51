from cached.v1 import tree_pb2 as _tree_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DeployEnvironment(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEPLOY_ENVIRONMENT_UNSPECIFIED: _ClassVar[DeployEnvironment]
    PREVIEW: _ClassVar[DeployEnvironment]
    PRODUCTION: _ClassVar[DeployEnvironment]
DEPLOY_ENVIRONMENT_UNSPECIFIED: DeployEnvironment
PREVIEW: DeployEnvironment
PRODUCTION: DeployEnvironment

class File(_message.Message):
    __slots__ = ("path", "executable", "content", "digest")
    PATH_FIELD_NUMBER: _ClassVar[int]
    EXECUTABLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    path: str
    executable: bool
    content: bytes
    digest: _tree_pb2.Digest
    def __init__(self, path: _Optional[str] = ..., executable: _Optional[bool] = ..., content: _Optional[bytes] = ..., digest: _Optional[_Union[_tree_pb2.Digest, _Mapping]] = ...) -> None: ...

class DeployOptions(_message.Message):
    __slots__ = ("target", "environment", "vars", "secrets")
    class VarsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class SecretsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TARGET_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    VARS_FIELD_NUMBER: _ClassVar[int]
    SECRETS_FIELD_NUMBER: _ClassVar[int]
    target: str
    environment: DeployEnvironment
    vars: _containers.ScalarMap[str, str]
    secrets: _containers.ScalarMap[str, str]
    def __init__(self, target: _Optional[str] = ..., environment: _Optional[_Union[DeployEnvironment, str]] = ..., vars: _Optional[_Mapping[str, str]] = ..., secrets: _Optional[_Mapping[str, str]] = ...) -> None: ...

class BuildRequest(_message.Message):
    __slots__ = ("tenant", "app", "files", "env", "mode", "build_script", "deploy", "force", "timeout_seconds")
    class EnvEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TENANT_FIELD_NUMBER: _ClassVar[int]
    APP_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    BUILD_SCRIPT_FIELD_NUMBER: _ClassVar[int]
    DEPLOY_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    app: str
    files: _containers.RepeatedCompositeFieldContainer[File]
    env: _containers.ScalarMap[str, str]
    mode: str
    build_script: str
    deploy: DeployOptions
    force: bool
    timeout_seconds: float
    def __init__(self, tenant: _Optional[str] = ..., app: _Optional[str] = ..., files: _Optional[_Iterable[_Union[File, _Mapping]]] = ..., env: _Optional[_Mapping[str, str]] = ..., mode: _Optional[str] = ..., build_script: _Optional[str] = ..., deploy: _Optional[_Union[DeployOptions, _Mapping]] = ..., force: _Optional[bool] = ..., timeout_seconds: _Optional[float] = ...) -> None: ...

class BuildEvent(_message.Message):
    __slots__ = ("phase", "log", "decision", "metrics", "result", "deploy_result")
    PHASE_FIELD_NUMBER: _ClassVar[int]
    LOG_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    DEPLOY_RESULT_FIELD_NUMBER: _ClassVar[int]
    phase: Phase
    log: Log
    decision: CacheDecision
    metrics: Metrics
    result: BuildResult
    deploy_result: DeployResult
    def __init__(self, phase: _Optional[_Union[Phase, _Mapping]] = ..., log: _Optional[_Union[Log, _Mapping]] = ..., decision: _Optional[_Union[CacheDecision, _Mapping]] = ..., metrics: _Optional[_Union[Metrics, _Mapping]] = ..., result: _Optional[_Union[BuildResult, _Mapping]] = ..., deploy_result: _Optional[_Union[DeployResult, _Mapping]] = ...) -> None: ...

class Phase(_message.Message):
    __slots__ = ("name", "state", "progress", "elapsed_ms")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[Phase.State]
        STARTED: _ClassVar[Phase.State]
        FINISHED: _ClassVar[Phase.State]
        PROGRESS: _ClassVar[Phase.State]
    STATE_UNSPECIFIED: Phase.State
    STARTED: Phase.State
    FINISHED: Phase.State
    PROGRESS: Phase.State
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_MS_FIELD_NUMBER: _ClassVar[int]
    name: str
    state: Phase.State
    progress: float
    elapsed_ms: float
    def __init__(self, name: _Optional[str] = ..., state: _Optional[_Union[Phase.State, str]] = ..., progress: _Optional[float] = ..., elapsed_ms: _Optional[float] = ...) -> None: ...

class Log(_message.Message):
    __slots__ = ("stream", "line", "source")
    class Stream(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STREAM_UNSPECIFIED: _ClassVar[Log.Stream]
        STDOUT: _ClassVar[Log.Stream]
        STDERR: _ClassVar[Log.Stream]
    STREAM_UNSPECIFIED: Log.Stream
    STDOUT: Log.Stream
    STDERR: Log.Stream
    STREAM_FIELD_NUMBER: _ClassVar[int]
    LINE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    stream: Log.Stream
    line: str
    source: str
    def __init__(self, stream: _Optional[_Union[Log.Stream, str]] = ..., line: _Optional[str] = ..., source: _Optional[str] = ...) -> None: ...

class CacheDecision(_message.Message):
    __slots__ = ("layer", "result", "tier", "reason", "detail")
    class Result(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        RESULT_UNSPECIFIED: _ClassVar[CacheDecision.Result]
        HIT: _ClassVar[CacheDecision.Result]
        MISS: _ClassVar[CacheDecision.Result]
        COALESCED: _ClassVar[CacheDecision.Result]
    RESULT_UNSPECIFIED: CacheDecision.Result
    HIT: CacheDecision.Result
    MISS: CacheDecision.Result
    COALESCED: CacheDecision.Result
    LAYER_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    layer: str
    result: CacheDecision.Result
    tier: str
    reason: str
    detail: str
    def __init__(self, layer: _Optional[str] = ..., result: _Optional[_Union[CacheDecision.Result, str]] = ..., tier: _Optional[str] = ..., reason: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class Metrics(_message.Message):
    __slots__ = ("decisions", "phase_ms", "output_files", "output_bytes", "bytes_ingested", "bytes_restored", "duration_ms", "deps_method", "deps_files", "deps_bytes", "deps_ms", "packages_reused", "packages_fetched", "package_bytes_downloaded")
    class PhaseMsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    DECISIONS_FIELD_NUMBER: _ClassVar[int]
    PHASE_MS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FILES_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_BYTES_FIELD_NUMBER: _ClassVar[int]
    BYTES_INGESTED_FIELD_NUMBER: _ClassVar[int]
    BYTES_RESTORED_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    DEPS_METHOD_FIELD_NUMBER: _ClassVar[int]
    DEPS_FILES_FIELD_NUMBER: _ClassVar[int]
    DEPS_BYTES_FIELD_NUMBER: _ClassVar[int]
    DEPS_MS_FIELD_NUMBER: _ClassVar[int]
    PACKAGES_REUSED_FIELD_NUMBER: _ClassVar[int]
    PACKAGES_FETCHED_FIELD_NUMBER: _ClassVar[int]
    PACKAGE_BYTES_DOWNLOADED_FIELD_NUMBER: _ClassVar[int]
    decisions: _containers.RepeatedCompositeFieldContainer[CacheDecision]
    phase_ms: _containers.ScalarMap[str, float]
    output_files: int
    output_bytes: int
    bytes_ingested: int
    bytes_restored: int
    duration_ms: float
    deps_method: str
    deps_files: int
    deps_bytes: int
    deps_ms: float
    packages_reused: int
    packages_fetched: int
    package_bytes_downloaded: int
    def __init__(self, decisions: _Optional[_Iterable[_Union[CacheDecision, _Mapping]]] = ..., phase_ms: _Optional[_Mapping[str, float]] = ..., output_files: _Optional[int] = ..., output_bytes: _Optional[int] = ..., bytes_ingested: _Optional[int] = ..., bytes_restored: _Optional[int] = ..., duration_ms: _Optional[float] = ..., deps_method: _Optional[str] = ..., deps_files: _Optional[int] = ..., deps_bytes: _Optional[int] = ..., deps_ms: _Optional[float] = ..., packages_reused: _Optional[int] = ..., packages_fetched: _Optional[int] = ..., package_bytes_downloaded: _Optional[int] = ...) -> None: ...

class OutputFile(_message.Message):
    __slots__ = ("path", "digest", "executable")
    PATH_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    EXECUTABLE_FIELD_NUMBER: _ClassVar[int]
    path: str
    digest: _tree_pb2.Digest
    executable: bool
    def __init__(self, path: _Optional[str] = ..., digest: _Optional[_Union[_tree_pb2.Digest, _Mapping]] = ..., executable: _Optional[bool] = ...) -> None: ...

class BuildResult(_message.Message):
    __slots__ = ("action_key", "output_tree", "outputs", "phase_ms", "duration_ms", "cache", "reason", "lockfile", "log")
    class PhaseMsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    ACTION_KEY_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TREE_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    PHASE_MS_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    CACHE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    LOCKFILE_FIELD_NUMBER: _ClassVar[int]
    LOG_FIELD_NUMBER: _ClassVar[int]
    action_key: str
    output_tree: _tree_pb2.Digest
    outputs: _containers.RepeatedCompositeFieldContainer[OutputFile]
    phase_ms: _containers.ScalarMap[str, float]
    duration_ms: float
    cache: str
    reason: str
    lockfile: bytes
    log: _tree_pb2.Digest
    def __init__(self, action_key: _Optional[str] = ..., output_tree: _Optional[_Union[_tree_pb2.Digest, _Mapping]] = ..., outputs: _Optional[_Iterable[_Union[OutputFile, _Mapping]]] = ..., phase_ms: _Optional[_Mapping[str, float]] = ..., duration_ms: _Optional[float] = ..., cache: _Optional[str] = ..., reason: _Optional[str] = ..., lockfile: _Optional[bytes] = ..., log: _Optional[_Union[_tree_pb2.Digest, _Mapping]] = ...) -> None: ...

class DeployResult(_message.Message):
    __slots__ = ("target", "environment", "version_id", "urls", "script_name", "action_key", "sequence", "assets_total", "assets_uploaded", "large_files", "large_files_uploaded", "bundle_dir", "error", "rolled_back")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    URLS_FIELD_NUMBER: _ClassVar[int]
    SCRIPT_NAME_FIELD_NUMBER: _ClassVar[int]
    ACTION_KEY_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    ASSETS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    ASSETS_UPLOADED_FIELD_NUMBER: _ClassVar[int]
    LARGE_FILES_FIELD_NUMBER: _ClassVar[int]
    LARGE_FILES_UPLOADED_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_DIR_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ROLLED_BACK_FIELD_NUMBER: _ClassVar[int]
    target: str
    environment: DeployEnvironment
    version_id: str
    urls: _containers.RepeatedScalarFieldContainer[str]
    script_name: str
    action_key: str
    sequence: int
    assets_total: int
    assets_uploaded: int
    large_files: int
    large_files_uploaded: int
    bundle_dir: str
    error: str
    rolled_back: bool
    def __init__(self, target: _Optional[str] = ..., environment: _Optional[_Union[DeployEnvironment, str]] = ..., version_id: _Optional[str] = ..., urls: _Optional[_Iterable[str]] = ..., script_name: _Optional[str] = ..., action_key: _Optional[str] = ..., sequence: _Optional[int] = ..., assets_total: _Optional[int] = ..., assets_uploaded: _Optional[int] = ..., large_files: _Optional[int] = ..., large_files_uploaded: _Optional[int] = ..., bundle_dir: _Optional[str] = ..., error: _Optional[str] = ..., rolled_back: _Optional[bool] = ...) -> None: ...

class FindMissingBlobsRequest(_message.Message):
    __slots__ = ("tenant", "digests")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    DIGESTS_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    digests: _containers.RepeatedCompositeFieldContainer[_tree_pb2.Digest]
    def __init__(self, tenant: _Optional[str] = ..., digests: _Optional[_Iterable[_Union[_tree_pb2.Digest, _Mapping]]] = ...) -> None: ...

class FindMissingBlobsResponse(_message.Message):
    __slots__ = ("missing",)
    MISSING_FIELD_NUMBER: _ClassVar[int]
    missing: _containers.RepeatedCompositeFieldContainer[_tree_pb2.Digest]
    def __init__(self, missing: _Optional[_Iterable[_Union[_tree_pb2.Digest, _Mapping]]] = ...) -> None: ...

class UploadChunk(_message.Message):
    __slots__ = ("tenant", "digest", "data", "unknown_digest")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_DIGEST_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    digest: _tree_pb2.Digest
    data: bytes
    unknown_digest: bool
    def __init__(self, tenant: _Optional[str] = ..., digest: _Optional[_Union[_tree_pb2.Digest, _Mapping]] = ..., data: _Optional[bytes] = ..., unknown_digest: _Optional[bool] = ...) -> None: ...

class UploadBlobsResponse(_message.Message):
    __slots__ = ("stored",)
    STORED_FIELD_NUMBER: _ClassVar[int]
    stored: _containers.RepeatedCompositeFieldContainer[_tree_pb2.Digest]
    def __init__(self, stored: _Optional[_Iterable[_Union[_tree_pb2.Digest, _Mapping]]] = ...) -> None: ...

class ReadBlobRequest(_message.Message):
    __slots__ = ("tenant", "digest")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    digest: _tree_pb2.Digest
    def __init__(self, tenant: _Optional[str] = ..., digest: _Optional[_Union[_tree_pb2.Digest, _Mapping]] = ...) -> None: ...

class ReadBlobChunk(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...
