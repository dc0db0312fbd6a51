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
    __slots__ = ("tenant", "app", "last_action_key", "last_build_unix_ms", "bytes", "entries", "builds", "action_hits", "hit_rate", "builds_failed")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    APP_FIELD_NUMBER: _ClassVar[int]
    LAST_ACTION_KEY_FIELD_NUMBER: _ClassVar[int]
    LAST_BUILD_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    BUILDS_FIELD_NUMBER: _ClassVar[int]
    ACTION_HITS_FIELD_NUMBER: _ClassVar[int]
    HIT_RATE_FIELD_NUMBER: _ClassVar[int]
    BUILDS_FAILED_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    app: str
    last_action_key: str
    last_build_unix_ms: int
    bytes: int
    entries: int
    builds: int
    action_hits: int
    hit_rate: float
    builds_failed: int
    def __init__(self, tenant: _Optional[str] = ..., app: _Optional[str] = ..., last_action_key: _Optional[str] = ..., last_build_unix_ms: _Optional[int] = ..., bytes: _Optional[int] = ..., entries: _Optional[int] = ..., builds: _Optional[int] = ..., action_hits: _Optional[int] = ..., hit_rate: _Optional[float] = ..., builds_failed: _Optional[int] = ...) -> None: ...

class TenantStats(_message.Message):
    __slots__ = ("tenant", "bytes", "entries", "apps", "builds", "action_hits", "hit_rate", "last_build_unix_ms", "shadow_builds", "shadow_bytes", "shadow_entries")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    APPS_FIELD_NUMBER: _ClassVar[int]
    BUILDS_FIELD_NUMBER: _ClassVar[int]
    ACTION_HITS_FIELD_NUMBER: _ClassVar[int]
    HIT_RATE_FIELD_NUMBER: _ClassVar[int]
    LAST_BUILD_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    SHADOW_BUILDS_FIELD_NUMBER: _ClassVar[int]
    SHADOW_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHADOW_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    bytes: int
    entries: int
    apps: int
    builds: int
    action_hits: int
    hit_rate: float
    last_build_unix_ms: int
    shadow_builds: int
    shadow_bytes: int
    shadow_entries: int
    def __init__(self, tenant: _Optional[str] = ..., bytes: _Optional[int] = ..., entries: _Optional[int] = ..., apps: _Optional[int] = ..., builds: _Optional[int] = ..., action_hits: _Optional[int] = ..., hit_rate: _Optional[float] = ..., last_build_unix_ms: _Optional[int] = ..., shadow_builds: _Optional[int] = ..., shadow_bytes: _Optional[int] = ..., shadow_entries: _Optional[int] = ...) -> None: ...

class StatsResponse(_message.Message):
    __slots__ = ("blobs", "bytes", "actions", "apps", "app_stats", "digest_function", "root", "processes_started", "builds", "action_hits", "entries", "tenant_stats", "hit_rate", "builds_failed", "evictions", "max_bytes", "metrics_address", "shadow_builds", "shadow_bytes", "shadow_entries", "remote")
    class EntriesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
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
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    TENANT_STATS_FIELD_NUMBER: _ClassVar[int]
    HIT_RATE_FIELD_NUMBER: _ClassVar[int]
    BUILDS_FAILED_FIELD_NUMBER: _ClassVar[int]
    EVICTIONS_FIELD_NUMBER: _ClassVar[int]
    MAX_BYTES_FIELD_NUMBER: _ClassVar[int]
    METRICS_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    SHADOW_BUILDS_FIELD_NUMBER: _ClassVar[int]
    SHADOW_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHADOW_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    REMOTE_FIELD_NUMBER: _ClassVar[int]
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
    entries: _containers.ScalarMap[str, int]
    tenant_stats: _containers.RepeatedCompositeFieldContainer[TenantStats]
    hit_rate: float
    builds_failed: int
    evictions: int
    max_bytes: int
    metrics_address: str
    shadow_builds: int
    shadow_bytes: int
    shadow_entries: int
    remote: RemoteTierStats
    def __init__(self, blobs: _Optional[int] = ..., bytes: _Optional[int] = ..., actions: _Optional[int] = ..., apps: _Optional[int] = ..., app_stats: _Optional[_Iterable[_Union[AppStats, _Mapping]]] = ..., digest_function: _Optional[str] = ..., root: _Optional[str] = ..., processes_started: _Optional[int] = ..., builds: _Optional[int] = ..., action_hits: _Optional[int] = ..., entries: _Optional[_Mapping[str, int]] = ..., tenant_stats: _Optional[_Iterable[_Union[TenantStats, _Mapping]]] = ..., hit_rate: _Optional[float] = ..., builds_failed: _Optional[int] = ..., evictions: _Optional[int] = ..., max_bytes: _Optional[int] = ..., metrics_address: _Optional[str] = ..., shadow_builds: _Optional[int] = ..., shadow_bytes: _Optional[int] = ..., shadow_entries: _Optional[int] = ..., remote: _Optional[_Union[RemoteTierStats, _Mapping]] = ...) -> None: ...

class RemoteTierStats(_message.Message):
    __slots__ = ("bucket", "prefix", "writer", "queue_depth", "queued_bytes", "circuit_open", "bytes_in", "bytes_out", "counters")
    class CountersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    WRITER_FIELD_NUMBER: _ClassVar[int]
    QUEUE_DEPTH_FIELD_NUMBER: _ClassVar[int]
    QUEUED_BYTES_FIELD_NUMBER: _ClassVar[int]
    CIRCUIT_OPEN_FIELD_NUMBER: _ClassVar[int]
    BYTES_IN_FIELD_NUMBER: _ClassVar[int]
    BYTES_OUT_FIELD_NUMBER: _ClassVar[int]
    COUNTERS_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    prefix: str
    writer: bool
    queue_depth: int
    queued_bytes: int
    circuit_open: bool
    bytes_in: int
    bytes_out: int
    counters: _containers.ScalarMap[str, int]
    def __init__(self, bucket: _Optional[str] = ..., prefix: _Optional[str] = ..., writer: _Optional[bool] = ..., queue_depth: _Optional[int] = ..., queued_bytes: _Optional[int] = ..., circuit_open: _Optional[bool] = ..., bytes_in: _Optional[int] = ..., bytes_out: _Optional[int] = ..., counters: _Optional[_Mapping[str, int]] = ...) -> None: ...

class PurgeRequest(_message.Message):
    __slots__ = ("app", "tenant", "deps_key", "older_than_seconds", "all", "dry_run")
    APP_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    DEPS_KEY_FIELD_NUMBER: _ClassVar[int]
    OLDER_THAN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ALL_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    app: str
    tenant: str
    deps_key: str
    older_than_seconds: int
    all: bool
    dry_run: bool
    def __init__(self, app: _Optional[str] = ..., tenant: _Optional[str] = ..., deps_key: _Optional[str] = ..., older_than_seconds: _Optional[int] = ..., all: _Optional[bool] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class PurgeResponse(_message.Message):
    __slots__ = ("entries", "bytes", "by_kind", "keys", "dry_run", "blobs_deleted", "bytes_freed", "bytes_after", "watermark_set", "held", "bytes_held")
    class ByKindEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    BY_KIND_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    BLOBS_DELETED_FIELD_NUMBER: _ClassVar[int]
    BYTES_FREED_FIELD_NUMBER: _ClassVar[int]
    BYTES_AFTER_FIELD_NUMBER: _ClassVar[int]
    WATERMARK_SET_FIELD_NUMBER: _ClassVar[int]
    HELD_FIELD_NUMBER: _ClassVar[int]
    BYTES_HELD_FIELD_NUMBER: _ClassVar[int]
    entries: int
    bytes: int
    by_kind: _containers.ScalarMap[str, int]
    keys: _containers.RepeatedScalarFieldContainer[str]
    dry_run: bool
    blobs_deleted: int
    bytes_freed: int
    bytes_after: int
    watermark_set: bool
    held: _containers.RepeatedCompositeFieldContainer[HeldBytes]
    bytes_held: int
    def __init__(self, entries: _Optional[int] = ..., bytes: _Optional[int] = ..., by_kind: _Optional[_Mapping[str, int]] = ..., keys: _Optional[_Iterable[str]] = ..., dry_run: _Optional[bool] = ..., blobs_deleted: _Optional[int] = ..., bytes_freed: _Optional[int] = ..., bytes_after: _Optional[int] = ..., watermark_set: _Optional[bool] = ..., held: _Optional[_Iterable[_Union[HeldBytes, _Mapping]]] = ..., bytes_held: _Optional[int] = ...) -> None: ...

class HeldBytes(_message.Message):
    __slots__ = ("reason", "blobs", "bytes", "free_from_unix_ms", "free_all_unix_ms", "detail")
    REASON_FIELD_NUMBER: _ClassVar[int]
    BLOBS_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    FREE_FROM_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    FREE_ALL_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    reason: str
    blobs: int
    bytes: int
    free_from_unix_ms: int
    free_all_unix_ms: int
    detail: str
    def __init__(self, reason: _Optional[str] = ..., blobs: _Optional[int] = ..., bytes: _Optional[int] = ..., free_from_unix_ms: _Optional[int] = ..., free_all_unix_ms: _Optional[int] = ..., detail: _Optional[str] = ...) -> None: ...

class CollectGarbageRequest(_message.Message):
    __slots__ = ("max_bytes", "dry_run")
    MAX_BYTES_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    max_bytes: int
    dry_run: bool
    def __init__(self, max_bytes: _Optional[int] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class CollectGarbageResponse(_message.Message):
    __slots__ = ("roots_evicted", "blobs_deleted", "bytes_freed", "bytes_before", "bytes_after", "trees_removed", "blobs_kept_protected", "seconds", "dry_run", "evicted", "held", "bytes_held")
    ROOTS_EVICTED_FIELD_NUMBER: _ClassVar[int]
    BLOBS_DELETED_FIELD_NUMBER: _ClassVar[int]
    BYTES_FREED_FIELD_NUMBER: _ClassVar[int]
    BYTES_BEFORE_FIELD_NUMBER: _ClassVar[int]
    BYTES_AFTER_FIELD_NUMBER: _ClassVar[int]
    TREES_REMOVED_FIELD_NUMBER: _ClassVar[int]
    BLOBS_KEPT_PROTECTED_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    EVICTED_FIELD_NUMBER: _ClassVar[int]
    HELD_FIELD_NUMBER: _ClassVar[int]
    BYTES_HELD_FIELD_NUMBER: _ClassVar[int]
    roots_evicted: int
    blobs_deleted: int
    bytes_freed: int
    bytes_before: int
    bytes_after: int
    trees_removed: int
    blobs_kept_protected: int
    seconds: float
    dry_run: bool
    evicted: _containers.RepeatedScalarFieldContainer[str]
    held: _containers.RepeatedCompositeFieldContainer[HeldBytes]
    bytes_held: int
    def __init__(self, roots_evicted: _Optional[int] = ..., blobs_deleted: _Optional[int] = ..., bytes_freed: _Optional[int] = ..., bytes_before: _Optional[int] = ..., bytes_after: _Optional[int] = ..., trees_removed: _Optional[int] = ..., blobs_kept_protected: _Optional[int] = ..., seconds: _Optional[float] = ..., dry_run: _Optional[bool] = ..., evicted: _Optional[_Iterable[str]] = ..., held: _Optional[_Iterable[_Union[HeldBytes, _Mapping]]] = ..., bytes_held: _Optional[int] = ...) -> None: ...

class VerifyRequest(_message.Message):
    __slots__ = ("repair",)
    REPAIR_FIELD_NUMBER: _ClassVar[int]
    repair: bool
    def __init__(self, repair: _Optional[bool] = ...) -> None: ...

class VerifyResponse(_message.Message):
    __slots__ = ("files_checked", "corrupt", "missing", "quarantined", "roots_deleted", "trees_removed", "seconds", "ok")
    FILES_CHECKED_FIELD_NUMBER: _ClassVar[int]
    CORRUPT_FIELD_NUMBER: _ClassVar[int]
    MISSING_FIELD_NUMBER: _ClassVar[int]
    QUARANTINED_FIELD_NUMBER: _ClassVar[int]
    ROOTS_DELETED_FIELD_NUMBER: _ClassVar[int]
    TREES_REMOVED_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    files_checked: int
    corrupt: _containers.RepeatedScalarFieldContainer[str]
    missing: _containers.RepeatedScalarFieldContainer[str]
    quarantined: int
    roots_deleted: int
    trees_removed: int
    seconds: float
    ok: bool
    def __init__(self, files_checked: _Optional[int] = ..., corrupt: _Optional[_Iterable[str]] = ..., missing: _Optional[_Iterable[str]] = ..., quarantined: _Optional[int] = ..., roots_deleted: _Optional[int] = ..., trees_removed: _Optional[int] = ..., seconds: _Optional[float] = ..., ok: _Optional[bool] = ...) -> None: ...

class ExplainRequest(_message.Message):
    __slots__ = ("tenant", "app")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    APP_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    app: str
    def __init__(self, tenant: _Optional[str] = ..., app: _Optional[str] = ...) -> None: ...

class DepsComponents(_message.Message):
    __slots__ = ("deps_key", "lockfile_digest", "lockfile_packages", "package_fields_digest", "package_fields", "install_scripts", "npmrc", "patches", "toolchain", "command")
    class NpmrcEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class ToolchainEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    DEPS_KEY_FIELD_NUMBER: _ClassVar[int]
    LOCKFILE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    LOCKFILE_PACKAGES_FIELD_NUMBER: _ClassVar[int]
    PACKAGE_FIELDS_DIGEST_FIELD_NUMBER: _ClassVar[int]
    PACKAGE_FIELDS_FIELD_NUMBER: _ClassVar[int]
    INSTALL_SCRIPTS_FIELD_NUMBER: _ClassVar[int]
    NPMRC_FIELD_NUMBER: _ClassVar[int]
    PATCHES_FIELD_NUMBER: _ClassVar[int]
    TOOLCHAIN_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    deps_key: str
    lockfile_digest: str
    lockfile_packages: int
    package_fields_digest: str
    package_fields: _containers.RepeatedScalarFieldContainer[str]
    install_scripts: _containers.RepeatedScalarFieldContainer[str]
    npmrc: _containers.ScalarMap[str, str]
    patches: _containers.RepeatedScalarFieldContainer[str]
    toolchain: _containers.ScalarMap[str, str]
    command: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, deps_key: _Optional[str] = ..., lockfile_digest: _Optional[str] = ..., lockfile_packages: _Optional[int] = ..., package_fields_digest: _Optional[str] = ..., package_fields: _Optional[_Iterable[str]] = ..., install_scripts: _Optional[_Iterable[str]] = ..., npmrc: _Optional[_Mapping[str, str]] = ..., patches: _Optional[_Iterable[str]] = ..., toolchain: _Optional[_Mapping[str, str]] = ..., command: _Optional[_Iterable[str]] = ...) -> None: ...

class KeyComponents(_message.Message):
    __slots__ = ("action_key", "sources_digest", "source_files", "deps", "env_names", "toolchain", "script", "mode", "built_unix_ms", "reason", "detail")
    ACTION_KEY_FIELD_NUMBER: _ClassVar[int]
    SOURCES_DIGEST_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FILES_FIELD_NUMBER: _ClassVar[int]
    DEPS_FIELD_NUMBER: _ClassVar[int]
    ENV_NAMES_FIELD_NUMBER: _ClassVar[int]
    TOOLCHAIN_FIELD_NUMBER: _ClassVar[int]
    SCRIPT_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    BUILT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    action_key: str
    sources_digest: str
    source_files: int
    deps: DepsComponents
    env_names: _containers.RepeatedScalarFieldContainer[str]
    toolchain: str
    script: str
    mode: str
    built_unix_ms: int
    reason: str
    detail: str
    def __init__(self, action_key: _Optional[str] = ..., sources_digest: _Optional[str] = ..., source_files: _Optional[int] = ..., deps: _Optional[_Union[DepsComponents, _Mapping]] = ..., env_names: _Optional[_Iterable[str]] = ..., toolchain: _Optional[str] = ..., script: _Optional[str] = ..., mode: _Optional[str] = ..., built_unix_ms: _Optional[int] = ..., reason: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class Difference(_message.Message):
    __slots__ = ("component", "changed", "count", "detail")
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    component: str
    changed: _containers.RepeatedScalarFieldContainer[str]
    count: int
    detail: str
    def __init__(self, component: _Optional[str] = ..., changed: _Optional[_Iterable[str]] = ..., count: _Optional[int] = ..., detail: _Optional[str] = ...) -> None: ...

class ExplainResponse(_message.Message):
    __slots__ = ("found", "last", "has_before", "before", "differences", "state", "summary")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    HAS_BEFORE_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    DIFFERENCES_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    found: bool
    last: KeyComponents
    has_before: bool
    before: KeyComponents
    differences: _containers.RepeatedCompositeFieldContainer[Difference]
    state: str
    summary: str
    def __init__(self, found: _Optional[bool] = ..., last: _Optional[_Union[KeyComponents, _Mapping]] = ..., has_before: _Optional[bool] = ..., before: _Optional[_Union[KeyComponents, _Mapping]] = ..., differences: _Optional[_Iterable[_Union[Difference, _Mapping]]] = ..., state: _Optional[str] = ..., summary: _Optional[str] = ...) -> None: ...

class PurgePackageRequest(_message.Message):
    __slots__ = ("package", "dry_run")
    PACKAGE_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    package: str
    dry_run: bool
    def __init__(self, package: _Optional[str] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class KindRemoved(_message.Message):
    __slots__ = ("entries", "bytes")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    entries: int
    bytes: int
    def __init__(self, entries: _Optional[int] = ..., bytes: _Optional[int] = ...) -> None: ...

class PurgePackageResponse(_message.Message):
    __slots__ = ("name", "version", "entries", "bytes", "by_kind", "keys", "apps", "apps_count", "late_entries", "dry_run", "blobs_deleted", "bytes_freed", "bytes_after", "held", "bytes_held")
    class ByKindEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: KindRemoved
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[KindRemoved, _Mapping]] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    BY_KIND_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    APPS_FIELD_NUMBER: _ClassVar[int]
    APPS_COUNT_FIELD_NUMBER: _ClassVar[int]
    LATE_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    BLOBS_DELETED_FIELD_NUMBER: _ClassVar[int]
    BYTES_FREED_FIELD_NUMBER: _ClassVar[int]
    BYTES_AFTER_FIELD_NUMBER: _ClassVar[int]
    HELD_FIELD_NUMBER: _ClassVar[int]
    BYTES_HELD_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    entries: int
    bytes: int
    by_kind: _containers.MessageMap[str, KindRemoved]
    keys: _containers.RepeatedScalarFieldContainer[str]
    apps: _containers.RepeatedScalarFieldContainer[str]
    apps_count: int
    late_entries: int
    dry_run: bool
    blobs_deleted: int
    bytes_freed: int
    bytes_after: int
    held: _containers.RepeatedCompositeFieldContainer[HeldBytes]
    bytes_held: int
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., entries: _Optional[int] = ..., bytes: _Optional[int] = ..., by_kind: _Optional[_Mapping[str, KindRemoved]] = ..., keys: _Optional[_Iterable[str]] = ..., apps: _Optional[_Iterable[str]] = ..., apps_count: _Optional[int] = ..., late_entries: _Optional[int] = ..., dry_run: _Optional[bool] = ..., blobs_deleted: _Optional[int] = ..., bytes_freed: _Optional[int] = ..., bytes_after: _Optional[int] = ..., held: _Optional[_Iterable[_Union[HeldBytes, _Mapping]]] = ..., bytes_held: _Optional[int] = ...) -> None: ...

class ExplainPackageRequest(_message.Message):
    __slots__ = ("package", "limit")
    PACKAGE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    package: str
    limit: int
    def __init__(self, package: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class PackageUse(_message.Message):
    __slots__ = ("tenant", "app", "deps_key", "versions", "paths", "last_build_unix_ms")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    APP_FIELD_NUMBER: _ClassVar[int]
    DEPS_KEY_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    PATHS_FIELD_NUMBER: _ClassVar[int]
    LAST_BUILD_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    app: str
    deps_key: str
    versions: _containers.RepeatedScalarFieldContainer[str]
    paths: _containers.RepeatedScalarFieldContainer[str]
    last_build_unix_ms: int
    def __init__(self, tenant: _Optional[str] = ..., app: _Optional[str] = ..., deps_key: _Optional[str] = ..., versions: _Optional[_Iterable[str]] = ..., paths: _Optional[_Iterable[str]] = ..., last_build_unix_ms: _Optional[int] = ...) -> None: ...

class ExplainPackageResponse(_message.Message):
    __slots__ = ("name", "version", "uses", "apps", "tenants", "versions", "trees", "package_records", "apps_unknown", "truncated", "summary")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    USES_FIELD_NUMBER: _ClassVar[int]
    APPS_FIELD_NUMBER: _ClassVar[int]
    TENANTS_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    TREES_FIELD_NUMBER: _ClassVar[int]
    PACKAGE_RECORDS_FIELD_NUMBER: _ClassVar[int]
    APPS_UNKNOWN_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    uses: _containers.RepeatedCompositeFieldContainer[PackageUse]
    apps: int
    tenants: _containers.RepeatedScalarFieldContainer[str]
    versions: _containers.RepeatedScalarFieldContainer[str]
    trees: int
    package_records: int
    apps_unknown: int
    truncated: bool
    summary: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., uses: _Optional[_Iterable[_Union[PackageUse, _Mapping]]] = ..., apps: _Optional[int] = ..., tenants: _Optional[_Iterable[str]] = ..., versions: _Optional[_Iterable[str]] = ..., trees: _Optional[int] = ..., package_records: _Optional[int] = ..., apps_unknown: _Optional[int] = ..., truncated: _Optional[bool] = ..., summary: _Optional[str] = ...) -> None: ...
