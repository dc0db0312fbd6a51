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
# channel per daemon) may be shared by the threads of a process.
#
# Given several daemons (an Array, or "host:port,host:port"), the client sends
# each (tenant, app) to one of them by rendezvous hashing (Cached::Routing, the
# same choice as the Python client's) and goes on to the next address on
# UNAVAILABLE, each at most once per call. Calls that are not about one app
# (stats, read_blob, ...) go to the first daemon that answers, or to address:.
# Every call about an app sends "x-cached-route: tenant/app" metadata, so a
# ring-hash proxy in front of the daemons routes the same way.

require "grpc"
require "digest"

lib = File.expand_path("..", __dir__)
$LOAD_PATH.unshift(lib) unless $LOAD_PATH.include?(lib)

require "cached/v1/cached_services_pb"
require "cached/v1/admin_services_pb"
require "cached/blake3"
require "cached/routing"

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
  # #server is the address of the daemon that built it: its store holds the outputs (read_blob(..., address: result.server)).
  Result = Struct.new(:action_key, :cache, :reason, :duration_ms, :phases, :decisions, :outputs, :lockfile, :log_digest, :deploy, :server,
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
        {type: :metrics, duration_ms: metrics.duration_ms, output_files: metrics.output_files, output_bytes: metrics.output_bytes,
         deps_method: metrics.deps_method, deps_ms: metrics.deps_ms, packages_reused: metrics.packages_reused,
         packages_fetched: metrics.packages_fetched, package_bytes_downloaded: metrics.package_bytes_downloaded}
      when :result
        {type: :result, cache: result.cache, reason: result.reason, action_key: result.action_key, duration_ms: result.duration_ms}
      when :deploy_result
        {type: :deploy_result, target: deploy_result.target, urls: deploy_result.urls.to_a, version_id: deploy_result.version_id, error: deploy_result.error}
      else
        {type: type}
      end
    end
  end

  # One daemon's channel and stubs.
  Endpoint = Struct.new(:address, :channel, :builder, :content, :admin)

  class Client
    attr_reader :address, :addresses

    # address: "host:port" of the daemon, or several (an Array, or a comma-separated String),
    # routed as the file's header says. token: sent as "authorization: Bearer <token>"
    # (default $CACHED_TOKEN); a build token acts only for the tenants the daemon's token file
    # names for it ("build:TENANT:TOKEN", or all with "build:*:TOKEN"): a call for another tenant
    # raises Cached::Error with status :permission_denied.
    # credentials: :this_channel_is_insecure or GRPC::Core::ChannelCredentials for TLS.
    def initialize(address = ENV.fetch("CACHED_ADDRESS", DEFAULT_ADDRESS), token: ENV["CACHED_TOKEN"], credentials: :this_channel_is_insecure, channel_args: {})
      @addresses = Routing.parse_addresses(address)
      @address = @addresses.first
      @token = token.to_s.empty? ? nil : token
      @credentials = credentials
      @channel_args = {"grpc.max_receive_message_length" => MAX_MESSAGE_BYTES, "grpc.max_send_message_length" => MAX_MESSAGE_BYTES}.merge(channel_args)
      @endpoints = {}
      @endpoints_lock = Mutex.new
      @addresses.each { |a| endpoint(a) }
      first = endpoint(@address) # the first daemon's channel and stubs, as before several addresses were allowed
      @channel, @builder, @content, @admin = first.channel, first.builder, first.content, first.admin
      @known = {} # "size:sha256" of a content => the Cached::V1::Digest the daemon returned for it
      @known_lock = Mutex.new
    end

    # Builds an app from its files and returns a Cached::Result; yields each
    # Cached::Event as the daemon sends it. files: {path => content String}
    # (or {path => {content:, executable: true}}). An exception raised by the
    # block cancels the call, and with it the build.
    #
    # With several daemons the build goes to the app's daemon. When that one is
    # UNAVAILABLE before the first event (down, refusing connections, draining),
    # it starts again on the next address, its large files uploaded there. A
    # build that already streamed events is not replayed: the block has seen
    # its events, and the daemon may still be running (or deploying) it, so a
    # second daemon would build and deploy it again. That error is raised.
    def build(app_id:, tenant:, files:, env: {}, mode: "production", script: nil, force: false, deploy: nil, timeout: nil, &block)
      entries = files.map { |path, value| normalize_file(path, value) }
      big = entries.select { |e| e[:content].bytesize > INLINE_LIMIT }
      key = Routing.key(tenant, app_id)
      streamed = false
      with_failover(Routing.order(key, @addresses), retry_if: -> { !streamed }) do |address|
        request = build_request(entries, big, address, key, app_id: app_id, tenant: tenant, env: env, mode: mode, script: script,
                                                           force: force, deploy: deploy, timeout: timeout)
        stream_build(endpoint(address), request, key, deadline: timeout && Time.now + timeout + 60, on_first: -> { streamed = true }, &block)
      end
    end

    # The addresses an app's calls try, in order: its daemon first.
    def route_of(tenant:, app_id:)
      Routing.order(Routing.key(tenant, app_id), @addresses)
    end

    private def build_request(entries, big, address, key, app_id:, tenant:, env:, mode:, script:, force:, deploy:, timeout:)
      by_content = big.empty? ? {} : send_blobs(endpoint(address), tenant, big.map { |e| e[:content] }, key).first
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
      request
    end

    # Uploads the blobs the daemon lacks for this tenant and returns the digests
    # (Cached::V1::Digest) of those sent. Without digests, nothing is hashed
    # with BLAKE3: a blob whose digest this client remembers is sent only when
    # FindMissingBlobs names it, any other is sent and the daemon's digest kept.
    # Blobs are per daemon: app: sends them to that app's daemon (tenant/app), address: to one daemon,
    # neither to the first that answers.
    def upload_missing(tenant:, blobs:, digests: nil, app: nil, address: nil)
      key = app && Routing.key(tenant, app)
      with_failover(order_for(key, address)) do |a|
        digests ? upload_by_digest(endpoint(a), tenant, blobs, digests, key) : send_blobs(endpoint(a), tenant, blobs, key).last
      end
    end

    # The bytes of a blob this tenant uploaded or built. digest: a Cached::V1::Digest or a Cached::OutputFile.
    # From address: (a result's #server holds its outputs), else from the app's daemon with app: (which
    # also sends x-cached-route, for a proxy), else from the first daemon that answers.
    def read_blob(tenant:, digest:, app: nil, address: nil)
      digest = digest.digest if digest.is_a?(OutputFile)
      key = app && Routing.key(tenant, app)
      with_failover(order_for(key, address)) do |a|
        data = +"".b
        request = V1::ReadBlobRequest.new(tenant: tenant, digest: digest)
        call { endpoint(a).content.read_blob(request, metadata: metadata(key)).each { |c| data << c.data } }
        data
      end
    end

    # The store's and the daemon's figures (Cached::V1::StatsResponse) of address:, or of the first
    # daemon that answers; needs an admin token when tokens are on.
    def stats(address: nil)
      with_failover(order_for(nil, address)) { |a| call { endpoint(a).admin.stats(V1::StatsRequest.new, metadata: metadata) } }
    end

    # Removes everything made with one package version, for every tenant: its package records, the
    # dependency trees holding it (aliases too) and the results and Vite caches built on them. package:
    # "NAME@VERSION". Returns Cached::V1::PurgePackageResponse (by_kind: entries and bytes per kind).
    # Needs an admin token when tokens are on; a malformed package raises Cached::Error :invalid_argument.
    # One daemon's store (address:, or the first that answers): with several, call it for each of #addresses.
    def purge_package(package:, dry_run: false, address: nil)
      request = V1::PurgePackageRequest.new(package: package.to_s, dry_run: dry_run)
      with_failover(order_for(nil, address)) { |a| call { endpoint(a).admin.purge_package(request, metadata: metadata) } }
    end

    # The tenants and apps whose last build used a package ("NAME" or "NAME@VERSION"), where it sits in
    # their trees, and how many stored trees and package records hold it (Cached::V1::ExplainPackageResponse).
    # Needs an admin token when tokens are on.
    def explain_package(package:, limit: 0, address: nil)
      request = V1::ExplainPackageRequest.new(package: package.to_s, limit: Integer(limit))
      with_failover(order_for(nil, address)) { |a| call { endpoint(a).admin.explain_package(request, metadata: metadata) } }
    end

    def close
      @endpoints_lock.synchronize { @endpoints.each_value { |e| e.channel.close } }
    end

    # The BLAKE3 digest, in plain Ruby (about 1.5 MB/s): builds and upload_missing never call it.
    def digest_of(content)
      V1::Digest.new(hash: Blake3.hexdigest(content), size: content.bytesize, function: :BLAKE3)
    end

    private

    # The channel and stubs of one address; an explicit address outside the list gets its own on first use.
    def endpoint(address)
      @endpoints_lock.synchronize do
        @endpoints[address] ||= begin
          channel = GRPC::Core::Channel.new(address, @channel_args, @credentials)
          Endpoint.new(address, channel, V1::Builder::Stub.new(address, @credentials, channel_override: channel),
                       V1::ContentStore::Stub.new(address, @credentials, channel_override: channel),
                       V1::Admin::Stub.new(address, @credentials, channel_override: channel))
        end
      end
    end

    # address: alone; else the key's rendezvous order; else the addresses as given (the first that answers).
    def order_for(key, address)
      return [address] if address
      return Routing.order(key, @addresses) if key

      @addresses
    end

    # Yields each address in order until the block does not raise UNAVAILABLE, each at most once;
    # retry_if says whether a call that failed so may still move on (a build that streamed may not).
    # UNAVAILABLE is what a daemon that is down or draining answers before doing anything.
    def with_failover(order, retry_if: -> { true })
      failures = []
      order.each do |address|
        return yield(address)
      rescue Error => e
        raise unless e.status == :unavailable && retry_if.call

        failures << [address, e]
      end
      raise failures.first.last if failures.size == 1

      raise Error.new(GRPC::Core::StatusCodes::UNAVAILABLE, "no daemon answered (#{failures.map { |a, e| "#{a}: #{e.details}" }.join("; ")})")
    end

    def upload_by_digest(endpoint, tenant, blobs, digests, key)
      by_hash = {}
      blobs.zip(digests) { |blob, digest| by_hash[digest["hash"]] ||= [blob, digest] } # (Message#hash is Ruby's hash code)
      request = V1::FindMissingBlobsRequest.new(tenant: tenant, digests: by_hash.values.map(&:last))
      missing = call { endpoint.content.find_missing_blobs(request, metadata: metadata(key)) }.missing
      return [] if missing.empty?

      chunks = upload_chunks(tenant, missing.map { |digest| [by_hash.fetch(digest["hash"]).first, { digest: digest }] })
      call { endpoint.content.upload_blobs(chunks, metadata: metadata(key)) }.stored.to_a
    end

    # SHA-256 is collision resistant, so a remembered digest is never reused for
    # other content (a CRC or String#hash could be forged by whoever writes the files).
    def content_key(content)
      "#{content.bytesize}:#{::Digest::SHA256.digest(content)}"
    end

    # Makes the daemon hold every blob for the tenant. Returns [{content_key => digest}, digests sent].
    # The remembered digests hold for every daemon (a digest names content); whether the daemon has the blob is asked.
    def send_blobs(endpoint, tenant, blobs, key = nil)
      contents = {}
      blobs.each { |b| contents[content_key(b)] ||= b }
      digests = @known_lock.synchronize { contents.keys.to_h { |k| [k, @known[k]] }.compact }
      unless digests.empty?
        request = V1::FindMissingBlobsRequest.new(tenant: tenant, digests: digests.values)
        missing = call { endpoint.content.find_missing_blobs(request, metadata: metadata(key)) }.missing
        missing = missing.map { |d| [d["hash"], d.size] }
        digests.reject! { |_, d| missing.include?([d["hash"], d.size]) }
      end
      to_send = contents.reject { |k, _| digests.key?(k) }
      return [digests, []] if to_send.empty?

      stored = upload_unknown(endpoint, tenant, to_send.values, key)
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
    def upload_unknown(endpoint, tenant, blobs, key)
      chunks = upload_chunks(tenant, blobs.map { |blob| [blob, { unknown_digest: true }] })
      stored = call { endpoint.content.upload_blobs(chunks, metadata: metadata(key)) }.stored.to_a
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

    # The token, and x-cached-route for a call about one app (key "tenant/app").
    def metadata(key = nil)
      auth = @token ? {"authorization" => "Bearer #{@token}"} : {}
      key ? auth.merge(Routing.metadata(key)) : auth
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

    # on_first is called when the first event arrives: from then on the build is never replayed elsewhere.
    def stream_build(endpoint, request, key, deadline: nil, on_first: nil)
      op = endpoint.builder.build(request, metadata: metadata(key), return_op: true, deadline: deadline)
      decisions = []
      result = metrics = deploy = nil
      finished = false
      begin
        op.execute.each do |raw|
          on_first&.call
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

      to_result(result, decisions, metrics, deploy, endpoint.address)
    end

    def to_result(r, decisions, _metrics, deploy, server)
      Result.new(
        server: server,
        action_key: r.action_key, cache: r.cache, reason: r.reason, duration_ms: r.duration_ms, phases: r.phase_ms.to_h,
        decisions: decisions, lockfile: r.lockfile, log_digest: r.log,
        outputs: r.outputs.map { |o| OutputFile.new(path: o.path, digest: o.digest, hex: o.digest["hash"], size: o.digest.size, executable: o.executable) },
        deploy: deploy && Deploy.new(target: deploy.target, environment: deploy.environment.to_s.downcase, version_id: deploy.version_id,
                                     urls: deploy.urls.to_a, error: deploy.error)
      )
    end
  end
end
