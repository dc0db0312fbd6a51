# frozen_string_literal: true

# A Ruby client for the cached daemon, for the Rails backend that calls it.
#
#   client = Cached::Client.new("127.0.0.1:7878", token: ENV["CACHED_TOKEN"])
#   result = client.build(app_id: "shop", tenant: "acme", files: {"package.json" => "...", ...}) do |event|
#     puts event.to_h
#   end
#   result.hit?      # the action cache answered: no Node process ran
#   result.outputs   # [Cached::OutputFile(path, digest, size, executable)]
#
# Files over 1 MiB are uploaded first and sent by digest. The client does not
# hash them with BLAKE3: it uploads a file it has not seen with no digest, the
# daemon hashes it and returns its digest, and the client remembers that digest
# under the file's SHA-256 (OpenSSL, about 0.15 s for 25 MiB). A later build of
# the same content asks FindMissingBlobs and uploads again only when the daemon
# lacks it for the tenant. A failed build raises
# Cached::BuildFailed (with #log_tail); any other failure raises Cached::Error
# carrying the gRPC status (#code, #status, #details). One client (one
# channel) may be shared by the threads of a process.

require "grpc"
require "digest"

lib = File.expand_path("..", __dir__)
$LOAD_PATH.unshift(lib) unless $LOAD_PATH.include?(lib)

require "cached/v1/cached_services_pb"
require "cached/v1/admin_services_pb"
require "cached/blake3"

module Cached
  INLINE_LIMIT = 1 << 20
  UPLOAD_CHUNK = 1 << 20
  MAX_MESSAGE_BYTES = 64 << 20
  KNOWN_DIGESTS = 4096 # remembered daemon digests per client (the oldest go first)
  DEFAULT_ADDRESS = "127.0.0.1:7878"

  STATUS_NAMES = GRPC::Core::StatusCodes.constants.to_h do |name|
    [GRPC::Core::StatusCodes.const_get(name), name.to_s.downcase.to_sym]
  end.freeze

  # A failed call. #code is the gRPC status code (an Integer), #status its
  # name as a Symbol (:unauthenticated, :invalid_argument, ...), #details the
  # daemon's message.
  class Error < StandardError
    attr_reader :code, :details, :metadata

    def initialize(code, details, metadata = {})
      @code = code
      @details = details.to_s
      @metadata = metadata || {}
      super("#{status.to_s.upcase}: #{@details}")
    end

    def status
      STATUS_NAMES.fetch(code, :unknown)
    end

    # Worth retrying later (the daemon is restarting or out of room), as a job's retry_on would.
    def retryable?
      %i[unavailable resource_exhausted].include?(status)
    end

    def self.from_grpc(error)
      klass = error.code == GRPC::Core::StatusCodes::FAILED_PRECONDITION ? BuildFailed : Error
      klass.new(error.code, error.details, error.metadata)
    end
  end

  # FAILED_PRECONDITION: the app's install or build failed (or it cannot be
  # built as sent). #log_tail holds the last lines of the failing step's log.
  class BuildFailed < Error
    LOG_TAIL_MARKER = "Last lines:\n"

    def log_tail
      _, marker, tail = details.partition(LOG_TAIL_MARKER)
      marker.empty? ? [] : tail.lines.map(&:chomp)
    end
  end

  Decision = Struct.new(:layer, :result, :tier, :reason, :detail, keyword_init: true) do
    def hit?
      result == "hit"
    end
  end

  # digest: a Cached::V1::Digest; hex: its hash in hex.
  OutputFile = Struct.new(:path, :digest, :hex, :size, :executable, keyword_init: true)

  Deploy = Struct.new(:target, :environment, :version_id, :urls, :error, keyword_init: true)

  # What a build returns. #cache is "hit" or "miss" (of the whole-build action
  # cache), #decisions every layer's decision, #deploy set when a deploy was asked.
  Result = Struct.new(:action_key, :cache, :reason, :duration_ms, :phases, :decisions, :outputs, :lockfile, :log_digest, :deploy,
                      keyword_init: true) do
    def hit?
      cache == "hit"
    end

    def decision(layer = "action")
      decisions.find { |d| d.layer == layer }
    end

    def urls
      deploy ? deploy.urls : []
    end
  end

  # One event of a build's stream, as it arrives. #type is :phase, :log,
  # :decision, :metrics, :result or :deploy_result; the accessor of that name
  # returns the message (Cached::V1::Phase, ...); #to_h is a plain Hash fit
  # for broadcasting to a browser.
  class Event
    TYPES = %i[phase log decision metrics result deploy_result].freeze

    attr_reader :type, :raw

    def initialize(raw)
      @raw = raw
      @type = raw.event
    end

    TYPES.each do |name|
      define_method(name) { @type == name ? @raw.public_send(name) : nil }
    end

    def to_h
      case type
      when :phase
        {type: :phase, name: phase.name, state: phase.state.to_s.downcase, progress: phase.progress, elapsed_ms: phase.elapsed_ms}
      when :log
        {type: :log, source: log.source, stream: log.stream.to_s.downcase, line: log.line}
      when :decision
        {type: :decision, layer: decision.layer, result: decision.result.to_s.downcase, tier: decision.tier, reason: decision.reason, detail: decision.detail}
      when :metrics
        {type: :metrics, duration_ms: metrics.duration_ms, output_files: metrics.output_files, output_bytes: metrics.output_bytes}
      when :result
        {type: :result, cache: result.cache, reason: result.reason, action_key: result.action_key, duration_ms: result.duration_ms}
      when :deploy_result
        {type: :deploy_result, target: deploy_result.target, urls: deploy_result.urls.to_a, version_id: deploy_result.version_id, error: deploy_result.error}
      else
        {type: type}
      end
    end
  end

  class Client
    attr_reader :address

    # address: "host:port" of the daemon. token: sent as "authorization: Bearer <token>"
    # (default $CACHED_TOKEN); a build token acts only for the tenants the daemon's token file
    # names for it ("build:TENANT:TOKEN", or all with "build:*:TOKEN"): a call for another tenant
    # raises Cached::Error with status :permission_denied.
    # credentials: :this_channel_is_insecure or GRPC::Core::ChannelCredentials for TLS.
    def initialize(address = ENV.fetch("CACHED_ADDRESS", DEFAULT_ADDRESS), token: ENV["CACHED_TOKEN"], credentials: :this_channel_is_insecure, channel_args: {})
      @address = address
      @token = token.to_s.empty? ? nil : token
      args = {"grpc.max_receive_message_length" => MAX_MESSAGE_BYTES, "grpc.max_send_message_length" => MAX_MESSAGE_BYTES}.merge(channel_args)
      @channel = GRPC::Core::Channel.new(address, args, credentials)
      @builder = V1::Builder::Stub.new(address, credentials, channel_override: @channel)
      @content = V1::ContentStore::Stub.new(address, credentials, channel_override: @channel)
      @admin = V1::Admin::Stub.new(address, credentials, channel_override: @channel)
      @known = {} # "size:sha256" of a content => the Cached::V1::Digest the daemon returned for it
      @known_lock = Mutex.new
    end

    # Builds an app from its files and returns a Cached::Result; yields each
    # Cached::Event as the daemon sends it. files: {path => content String}
    # (or {path => {content:, executable: true}}). An exception raised by the
    # block cancels the call, and with it the build.
    def build(app_id:, tenant:, files:, env: {}, mode: "production", script: nil, force: false, deploy: nil, timeout: nil, &block)
      entries = files.map { |path, value| normalize_file(path, value) }
      big = entries.select { |e| e[:content].bytesize > INLINE_LIMIT }
      by_content = big.empty? ? {} : send_blobs(tenant, big.map { |e| e[:content] }).first
      digests = big.to_h { |e| [e[:path], by_content.fetch(content_key(e[:content]))] }

      request = V1::BuildRequest.new(
        tenant: tenant.to_s, app: app_id.to_s, mode: mode.to_s, build_script: script.to_s, force: force,
        timeout_seconds: timeout.to_f, env: env.to_h { |k, v| [k.to_s, v.to_s] },
        files: entries.map do |e|
          if digests.key?(e[:path])
            V1::File.new(path: e[:path], executable: e[:executable], digest: digests[e[:path]])
          else
            V1::File.new(path: e[:path], executable: e[:executable], content: e[:content])
          end
        end
      )
      request.deploy = deploy_options(deploy) if deploy
      stream_build(request, deadline: timeout && Time.now + timeout + 60, &block)
    end

    # Uploads the blobs the daemon lacks for this tenant and returns the digests
    # (Cached::V1::Digest) of those sent. Without digests, nothing is hashed
    # with BLAKE3: a blob whose digest this client remembers is sent only when
    # FindMissingBlobs names it, any other is sent and the daemon's digest kept.
    def upload_missing(tenant:, blobs:, digests: nil)
      return send_blobs(tenant, blobs).last unless digests

      by_hash = {}
      blobs.zip(digests) { |blob, digest| by_hash[digest["hash"]] ||= [blob, digest] } # (Message#hash is Ruby's hash code)
      missing = call { @content.find_missing_blobs(V1::FindMissingBlobsRequest.new(tenant: tenant, digests: by_hash.values.map(&:last)), metadata: metadata) }.missing
      return [] if missing.empty?

      chunks = upload_chunks(tenant, missing.map { |digest| [by_hash.fetch(digest["hash"]).first, { digest: digest }] })
      call { @content.upload_blobs(chunks, metadata: metadata) }.stored.to_a
    end

    # The bytes of a blob this tenant uploaded or built. digest: a Cached::V1::Digest or a Cached::OutputFile.
    def read_blob(tenant:, digest:)
      digest = digest.digest if digest.is_a?(OutputFile)
      data = +"".b
      call { @content.read_blob(V1::ReadBlobRequest.new(tenant: tenant, digest: digest), metadata: metadata).each { |c| data << c.data } }
      data
    end

    # The store's and the daemon's figures (Cached::V1::StatsResponse); needs an admin token when tokens are on.
    def stats
      call { @admin.stats(V1::StatsRequest.new, metadata: metadata) }
    end

    # Removes everything made with one package version, for every tenant: its package records, the
    # dependency trees holding it (aliases too) and the results and Vite caches built on them. package:
    # "NAME@VERSION". Returns Cached::V1::PurgePackageResponse (by_kind: entries and bytes per kind).
    # Needs an admin token when tokens are on; a malformed package raises Cached::Error :invalid_argument.
    def purge_package(package:, dry_run: false)
      call { @admin.purge_package(V1::PurgePackageRequest.new(package: package.to_s, dry_run: dry_run), metadata: metadata) }
    end

    # The tenants and apps whose last build used a package ("NAME" or "NAME@VERSION"), where it sits in
    # their trees, and how many stored trees and package records hold it (Cached::V1::ExplainPackageResponse).
    # Needs an admin token when tokens are on.
    def explain_package(package:, limit: 0)
      call { @admin.explain_package(V1::ExplainPackageRequest.new(package: package.to_s, limit: Integer(limit)), metadata: metadata) }
    end

    def close
      @channel.close
    end

    # The BLAKE3 digest, in plain Ruby (about 1.5 MB/s): builds and upload_missing never call it.
    def digest_of(content)
      V1::Digest.new(hash: Blake3.hexdigest(content), size: content.bytesize, function: :BLAKE3)
    end

    private

    # SHA-256 is collision resistant, so a remembered digest is never reused for
    # other content (a CRC or String#hash could be forged by whoever writes the files).
    def content_key(content)
      "#{content.bytesize}:#{::Digest::SHA256.digest(content)}"
    end

    # Makes the daemon hold every blob for the tenant. Returns [{content_key => digest}, digests sent].
    def send_blobs(tenant, blobs)
      contents = {}
      blobs.each { |b| contents[content_key(b)] ||= b }
      digests = @known_lock.synchronize { contents.keys.to_h { |k| [k, @known[k]] }.compact }
      unless digests.empty?
        missing = call { @content.find_missing_blobs(V1::FindMissingBlobsRequest.new(tenant: tenant, digests: digests.values), metadata: metadata) }.missing
        missing = missing.map { |d| [d["hash"], d.size] }
        digests.reject! { |_, d| missing.include?([d["hash"], d.size]) }
      end
      to_send = contents.reject { |k, _| digests.key?(k) }
      return [digests, []] if to_send.empty?

      stored = upload_unknown(tenant, to_send.values)
      sent = to_send.keys.zip(stored).to_h
      remember(sent)
      [digests.merge(sent), stored]
    end

    # The chunks of one UploadBlobs stream: the tenant on the first, each blob's first chunk with its
    # head (its digest, or unknown_digest), the rest of a blob in UPLOAD_CHUNK pieces.
    def upload_chunks(tenant, blobs_with_heads)
      Enumerator.new do |out|
        blobs_with_heads.each_with_index do |(blob, head), i|
          out << V1::UploadChunk.new(tenant: i.zero? ? tenant : "", data: blob.byteslice(0, UPLOAD_CHUNK) || "", **head)
          offset = UPLOAD_CHUNK
          while offset < blob.bytesize
            out << V1::UploadChunk.new(data: blob.byteslice(offset, UPLOAD_CHUNK))
            offset += UPLOAD_CHUNK
          end
        end
      end
    end

    # One UploadBlobs stream of blobs sent without a digest; the daemon returns theirs, in order.
    def upload_unknown(tenant, blobs)
      chunks = upload_chunks(tenant, blobs.map { |blob| [blob, { unknown_digest: true }] })
      stored = call { @content.upload_blobs(chunks, metadata: metadata) }.stored.to_a
      unless stored.size == blobs.size && stored.zip(blobs).all? { |d, b| d.size == b.bytesize }
        raise Error.new(GRPC::Core::StatusCodes::INTERNAL, "the daemon stored #{stored.size} blobs of #{blobs.size} sent")
      end

      stored
    end

    def remember(digests)
      @known_lock.synchronize do
        digests.each do |key, digest|
          @known.delete(key)
          @known[key] = digest
        end
        @known.shift while @known.size > KNOWN_DIGESTS
      end
    end

    def metadata
      @token ? {"authorization" => "Bearer #{@token}"} : {}
    end

    def call
      yield
    rescue GRPC::BadStatus => e
      raise Error.from_grpc(e)
    end

    def normalize_file(path, value)
      content, executable = value.is_a?(Hash) ? [value.fetch(:content), value.fetch(:executable, false)] : [value, false]
      {path: path.to_s, content: content.to_s.b, executable: executable ? true : false}
    end

    def deploy_options(deploy)
      deploy = deploy.transform_keys(&:to_sym)
      environment = deploy.fetch(:environment, "preview").to_s.upcase.to_sym
      raise ArgumentError, "deploy environment must be preview or production" unless %i[PREVIEW PRODUCTION].include?(environment)

      V1::DeployOptions.new(
        target: deploy.fetch(:target).to_s, environment: environment,
        vars: deploy.fetch(:vars, {}).to_h { |k, v| [k.to_s, v.to_s] },
        secrets: deploy.fetch(:secrets, {}).to_h { |k, v| [k.to_s, v.to_s] }
      )
    end

    def stream_build(request, deadline: nil)
      op = @builder.build(request, metadata: metadata, return_op: true, deadline: deadline)
      decisions = []
      result = metrics = deploy = nil
      finished = false
      begin
        op.execute.each do |raw|
          case raw.event
          when :result then result = raw.result
          when :metrics then metrics = raw.metrics
          when :deploy_result then deploy = raw.deploy_result
          when :decision
            d = raw.decision
            decisions << Decision.new(layer: d.layer, result: d.result.to_s.downcase, tier: d.tier, reason: d.reason, detail: d.detail)
          end
          yield Event.new(raw) if block_given?
        end
        finished = true
      rescue GRPC::BadStatus => e
        finished = true
        raise Error.from_grpc(e)
      ensure
        op.cancel unless finished # the caller left early (an exception in the block, a killed job): cancel the build
      end
      raise Error.new(GRPC::Core::StatusCodes::UNKNOWN, "the build stream ended without a result") unless result

      to_result(result, decisions, metrics, deploy)
    end

    def to_result(r, decisions, _metrics, deploy)
      Result.new(
        action_key: r.action_key, cache: r.cache, reason: r.reason, duration_ms: r.duration_ms, phases: r.phase_ms.to_h,
        decisions: decisions, lockfile: r.lockfile, log_digest: r.log,
        outputs: r.outputs.map { |o| OutputFile.new(path: o.path, digest: o.digest, hex: o.digest["hash"], size: o.digest.size, executable: o.executable) },
        deploy: deploy && Deploy.new(target: deploy.target, environment: deploy.environment.to_s.downcase, version_id: deploy.version_id,
                                     urls: deploy.urls.to_a, error: deploy.error)
      )
    end
  end
end
