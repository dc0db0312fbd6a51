# frozen_string_literal: true

# How the Rails backend builds and deploys an app through cached: a job that
# loads the app's files from the database, calls Cached::Client#build with a
# block that broadcasts progress to the browser, then stores the URLs.
#
# Plain Ruby so it runs without Rails: in the Rails app, DeployAppJob would be
#
#   class DeployAppJob < ApplicationJob
#     queue_as :deploys
#     retry_on Cached::Error, attempts: 3, wait: 10.seconds   # only when error.retryable? (see perform)
#     ...
#   end
#
# with App an ActiveRecord model (has_many :app_files; columns tenant_slug,
# slug, build_status, preview_urls, last_action_key, build_log) and
# ActionCable.server as the broadcaster. One Cached::Client per process is
# enough (config/initializers/cached.rb): its channel is shared by threads.
#
# Run it directly against a daemon to build a directory once:
#
#   ruby -Iclient/ruby/lib client/ruby/examples/deploy_app_job.rb APP_DIR [TENANT] [APP]
#   (CACHED_ADDRESS, CACHED_TOKEN; CACHED_DEPLOY_TARGET=local|cloudflare to deploy too)

require "cached"

class DeployAppJob
  # ApplicationJob subclasses get these from Rails; here they are plain arguments.
  def initialize(apps:, broadcaster:, client: Cached::Client.new(ENV.fetch("CACHED_ADDRESS", Cached::DEFAULT_ADDRESS), token: ENV["CACHED_TOKEN"]))
    @apps = apps
    @broadcaster = broadcaster
    @client = client
  end

  def perform(app_id, environment: "preview")
    app = @apps.find(app_id)
    files = app.app_files.to_h { |f| [f.path, f.content] }   # App.find(id).app_files.pluck(:path, :content).to_h
    channel = "app:#{app.id}:build"
    app.update!(build_status: "building")

    result = @client.build(
      app_id: app.slug, tenant: app.tenant_slug, files: files, env: app.build_env, mode: "production",
      deploy: deploy_target && {target: deploy_target, environment: environment},
    ) do |event|
      # Phases move the progress bar, log lines feed the console, decisions say why a build ran.
      @broadcaster.broadcast(channel, event.to_h) unless event.type == :metrics
    end

    app.update!(build_status: result.deploy&.error.to_s.empty? ? "deployed" : "deploy_failed",
                preview_urls: result.urls, last_action_key: result.action_key, build_log: nil)
    @broadcaster.broadcast(channel, {type: :done, cache: result.cache, urls: result.urls})
    result
  rescue Cached::BuildFailed => e
    # The app's own code is broken: show the user the end of the log; retrying would fail the same way.
    app.update!(build_status: "failed", build_log: e.log_tail.join("\n"))
    @broadcaster.broadcast(channel, {type: :failed, log_tail: e.log_tail})
    nil
  rescue Cached::Error => e
    app&.update!(build_status: "error", build_log: e.message)
    raise if e.retryable?   # Rails' retry_on runs the job again later

    nil
  end

  private

  def deploy_target
    ENV["CACHED_DEPLOY_TARGET"]
  end
end

if $PROGRAM_NAME == __FILE__
  # Stand-ins for the ActiveRecord model and ActionCable, to run the job from a shell.
  AppFile = Struct.new(:path, :content)
  App = Struct.new(:id, :tenant_slug, :slug, :app_files, :build_env, :attrs) do
    def update!(changes)
      attrs.merge!(changes)
    end
  end
  apps = Object.new
  dir = ARGV.fetch(0) { abort "usage: deploy_app_job.rb APP_DIR [TENANT] [APP]" }
  files = Dir.glob("**/*", base: dir).reject { |p| p.split("/").any? { |part| %w[node_modules dist .git].include?(part) } }
             .select { |p| File.file?(File.join(dir, p)) }.map { |p| AppFile.new(p, File.binread(File.join(dir, p))) }
  app = App.new(1, ARGV.fetch(1, "demo"), ARGV.fetch(2, File.basename(File.expand_path(dir)).downcase.gsub(/[^a-z0-9_-]/, "-")), files, {}, {})
  apps.define_singleton_method(:find) { |_id| app }
  printer = Object.new
  printer.define_singleton_method(:broadcast) { |channel, payload| puts "#{channel} #{payload}" }
  DeployAppJob.new(apps: apps, broadcaster: printer).perform(app.id)
  puts "app record: #{app.attrs}"
end
