# frozen_string_literal: true

require "test_helper"

# Cached::Client against a real daemon: the fixture app built cold then from
# the action cache, a broken app, large files, errors and cancellation.
class ClientTest < Minitest::Test
  TENANT = "rails"

  def client
    @client ||= Cached::Client.new(CachedTest.daemon.address, token: nil)
  end

  def teardown
    @client&.close
  end

  # The fixture app twice: once cold (install, build), once from the action cache.
  def test_fixture_app_builds_then_hits_the_action_cache
    files = CachedTest.app_files(CachedTest.fixture_dir)
    assert files.key?("package.json") && files.key?("src/main.tsx")

    events = []
    first = client.build(app_id: "storefront", tenant: TENANT, files: files) { |event| events << event }
    phases = events.select { |e| e.type == :phase }.map { |e| [e.phase.name, e.phase.state] }
    %w[lookup build].each do |name|
      assert_includes phases, [name, :STARTED], "phase #{name} started"
      assert_includes phases, [name, :FINISHED], "phase #{name} finished"
    end
    assert phases.index(["lookup", :FINISHED]) < phases.index(["build", :STARTED])
    # deps: a miss (npm ci) or, when the broken copy ran first, a hit on the tree it installed.
    assert_includes %w[hit miss], first.decision("deps")&.result
    assert events.any? { |e| e.type == :log && e.log.source == "build" }, "the build's log lines are streamed"
    assert_equal :result, events.last.type
    assert_equal "miss", first.cache
    assert_equal %w[miss new_app], [first.decision.result, first.decision.reason]
    assert events.any? { |e| e.type == :decision && e.to_h[:layer] == "action" && e.to_h[:result] == "miss" }
    metrics = events.find { |e| e.type == :metrics }.to_h
    assert_operator metrics[:deps_ms], :>, 0
    deps = first.decision("deps")
    if deps&.result == "miss" && deps.detail.include?("from the package store") # every package counted once
      assert_operator metrics[:packages_reused] + metrics[:packages_fetched], :>, 100, metrics.inspect
    end
    paths = first.outputs.map(&:path)
    assert_includes paths, "index.html"
    assert paths.any? { |p| p.start_with?("assets/") && p.end_with?(".js") }, paths.inspect
    html = client.read_blob(tenant: TENANT, digest: first.outputs.find { |o| o.path == "index.html" })
    assert_includes html, "<div id=\"root\">"

    again_events = []
    second = client.build(app_id: "storefront", tenant: TENANT, files: files) { |event| again_events << event }
    assert second.hit?
    assert_equal %w[hit action], [second.decision.result, second.decision.layer]
    assert_equal first.action_key, second.action_key
    assert_equal first.outputs.map { |o| [o.path, o.hex] }, second.outputs.map { |o| [o.path, o.hex] }
    assert again_events.none? { |e| e.type == :log }, "a hit runs no process, so it logs nothing"
    refute again_events.any? { |e| e.type == :phase && e.phase.name == "build" }
  end

  # The fixture with an import that does not resolve: same dependencies (no
  # second npm ci once the fixture was built), Vite fails, nothing is cached.
  def test_broken_app_raises_build_failed_with_the_log_tail
    files = CachedTest.app_files(CachedTest.fixture_dir)
    files["src/main.tsx"] = files.fetch("src/main.tsx").sub('import App from "./App";', 'import App from "./AppThatDoesNotExist";')
    error = assert_raises(Cached::BuildFailed) do
      client.build(app_id: "storefront-broken", tenant: TENANT, files: files)
    end
    assert_equal :failed_precondition, error.status
    assert_equal GRPC::Core::StatusCodes::FAILED_PRECONDITION, error.code
    refute_empty error.log_tail
    assert error.log_tail.any? { |line| line.include?("AppThatDoesNotExist") }, error.log_tail.join("\n")
    assert_kind_of Cached::Error, error
  end

  def test_files_over_one_mib_are_uploaded_first_and_built
    big = Random.new(42).bytes((1 << 20) + 4321)
    copy = <<~JS
      import { mkdirSync, copyFileSync } from "node:fs";
      mkdirSync("dist", { recursive: true });
      copyFileSync("public/big.bin", "dist/big.bin");
    JS
    files = CachedTest.tiny_app(copy, {"public/big.bin" => big})
    digest = client.digest_of(big)
    assert_equal [digest["hash"]], client.upload_missing(tenant: "other", blobs: [big]).map { |d| d["hash"] }
    result = client.build(app_id: "big-file", tenant: TENANT, files: files)
    out = result.outputs.find { |o| o.path == "big.bin" }
    assert_equal [digest["hash"], big.bytesize], [out.hex, out.size]
    assert_equal big, client.read_blob(tenant: TENANT, digest: out)
    assert_empty client.upload_missing(tenant: TENANT, blobs: [big]), "known now: nothing is sent again"
  end

  def test_other_failures_are_cached_errors_with_the_status
    error = assert_raises(Cached::Error) { client.build(app_id: "Not An Id", tenant: TENANT, files: CachedTest.tiny_app(CachedTest::WRITE_DIST)) }
    refute_kind_of Cached::BuildFailed, error
    assert_equal :invalid_argument, error.status
    assert_includes error.details, "app"
    missing = client.digest_of("never uploaded #{rand}")
    assert_equal :not_found, assert_raises(Cached::Error) { client.read_blob(tenant: TENANT, digest: missing) }.status
  end

  def test_an_exception_in_the_block_cancels_the_build
    marker = "cached-ruby-cancel-#{Process.pid}-#{rand(1 << 30)}"
    script = <<~JS
      import { spawn } from "node:child_process";
      spawn("sh", ["-c", "sleep 300; : " + process.argv[2]], { detached: true, stdio: "ignore" });
      console.log("started");
      setTimeout(() => {}, 300000);
    JS
    stop = Class.new(StandardError)
    assert_raises(stop) do
      client.build(app_id: "cancel", tenant: TENANT, files: CachedTest.tiny_app(script, script: "node build.mjs #{marker}")) do |event|
        next unless event.type == :log && event.log.line == "started"

        refute_empty running(marker), "the build runs before the cancel"
        raise stop
      end
    end
    deadline = Time.now + 30
    sleep 0.2 while !running(marker).empty? && Time.now < deadline
    assert_empty running(marker), "cancelling the call kills the build's processes"
  end

  private

  def running(marker)
    `pgrep -f #{marker}`.split
  end
end

# A daemon started with tokens: calls without one are UNAUTHENTICATED, and a
# build token acts only for the tenants its lines name.
class AuthTest < Minitest::Test
  BUILD_TOKEN = "ruby-build-token-0123456789"
  ADMIN_TOKEN = "ruby-admin-token-9876543210"

  def daemon
    token_file = File.join(CachedTest.tmp, "tokens")
    File.write(token_file, "build:rails:#{BUILD_TOKEN}\nadmin:#{ADMIN_TOKEN}\n") unless File.exist?(token_file)
    CachedTest.daemon("secured", args: ["--token-file", token_file])
  end

  def test_calls_without_a_token_are_unauthenticated
    files = CachedTest.tiny_app(CachedTest::WRITE_DIST, {"src/auth.txt" => "ruby"})
    [nil, "not-the-token-0123456789"].each do |token|
      anonymous = Cached::Client.new(daemon.address, token: token)
      error = assert_raises(Cached::Error) { anonymous.build(app_id: "auth", tenant: "rails", files: files) }
      assert_equal :unauthenticated, error.status
      assert_equal :unauthenticated, assert_raises(Cached::Error) { anonymous.stats }.status
      anonymous.close
    end

    builder = Cached::Client.new(daemon.address, token: BUILD_TOKEN)
    assert_equal "index.html", builder.build(app_id: "auth", tenant: "rails", files: files).outputs.first.path
    assert_equal :permission_denied, assert_raises(Cached::Error) { builder.stats }.status
    other_tenant = assert_raises(Cached::Error) { builder.build(app_id: "auth", tenant: "someone-else", files: files) }
    assert_equal :permission_denied, other_tenant.status
    assert_includes other_tenant.message, "someone-else"
    builder.close

    admin = Cached::Client.new(daemon.address, token: ADMIN_TOKEN)
    assert_operator admin.stats.builds, :>=, 1
    admin.close
  end
end
