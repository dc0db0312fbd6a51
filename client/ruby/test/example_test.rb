# frozen_string_literal: true

require "test_helper"
require "open3"
require_relative "../examples/deploy_app_job"

# The README's Rails job example, run against a real daemon with stand-ins for
# the model and ActionCable.
class DeployAppJobExampleTest < Minitest::Test
  FakeFile = Struct.new(:path, :content)
  FakeApp = Struct.new(:id, :tenant_slug, :slug, :app_files, :build_env, :attrs) do
    def update!(changes)
      attrs.merge!(changes)
    end
  end

  class Recorder
    attr_reader :messages

    def initialize
      @messages = []
    end

    def broadcast(channel, payload)
      @messages << [channel, payload]
    end
  end

  def run_job(app)
    apps = Object.new
    apps.define_singleton_method(:find) { |_id| app }
    recorder = Recorder.new
    client = Cached::Client.new(CachedTest.daemon.address)
    result = DeployAppJob.new(apps: apps, broadcaster: recorder, client: client).perform(app.id)
    client.close
    [result, recorder.messages]
  end

  def app_with(files, slug)
    FakeApp.new(7, "rails", slug, files.map { |p, c| FakeFile.new(p, c) }, {"GREETING" => "from-rails"}, {})
  end

  def test_the_job_broadcasts_progress_and_stores_the_result
    app = app_with(CachedTest.tiny_app(CachedTest::WRITE_DIST, {"src/job.txt" => "job"}), "job-app")
    result, messages = run_job(app)
    assert_equal ["app:7:build"], messages.map(&:first).uniq
    payloads = messages.map(&:last)
    assert payloads.any? { |p| p[:type] == :phase && p[:name] == "build" && p[:state] == "finished" }
    assert payloads.any? { |p| p[:type] == :decision && p[:layer] == "action" }
    assert_equal({type: :done, cache: "miss", urls: []}, payloads.last)
    assert_equal "deployed", app.attrs[:build_status]
    assert_equal result.action_key, app.attrs[:last_action_key]

    again, = run_job(app)
    assert again.hit?
  end

  def test_a_broken_app_is_marked_failed_with_its_log
    app = app_with(CachedTest.tiny_app("console.error('TypeError: x is not a function'); process.exit(1);"), "job-broken")
    result, messages = run_job(app)
    assert_nil result
    assert_equal "failed", app.attrs[:build_status]
    assert_includes app.attrs[:build_log], "TypeError: x is not a function"
    assert_equal :failed, messages.last.last[:type]
  end

  def test_the_example_runs_as_a_script
    dir = File.join(CachedTest.tmp, "script-app")
    CachedTest.tiny_app(CachedTest::WRITE_DIST, {"src/script.txt" => "script"}).each do |path, content|
      FileUtils.mkdir_p(File.dirname(File.join(dir, path)))
      File.binwrite(File.join(dir, path), content)
    end
    script = File.expand_path("../examples/deploy_app_job.rb", __dir__)
    env = {"CACHED_ADDRESS" => CachedTest.daemon.address, "CACHED_TOKEN" => nil, "CACHED_DEPLOY_TARGET" => nil}
    out, status = Open3.capture2e(env, RbConfig.ruby, "-I", File.expand_path("../lib", __dir__), script, dir, "rails", "script-app")
    assert status.success?, out
    assert_includes out, "app:1:build {:type=>:done, :cache=>\"miss\""
    assert_includes out, ":build_status=>\"deployed\""
  end
end
