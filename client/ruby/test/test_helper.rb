# frozen_string_literal: true

# Starts real daemons for the Ruby tests: `python -m cached serve` on
# 127.0.0.1 with an ephemeral port. The Python test suite runs these tests and
# sets CACHED_PYTHON (its interpreter), CACHED_NPM_CACHE (its npm cache) and
# CACHED_FIXTURE (the fixture app); run alone, they default to the repo's
# .venv, a fresh npm cache and the repo's examples/dashboard.
#
#   cd client/ruby && ruby -Ilib -Itest -e 'Dir["test/*_test.rb"].each { |f| require File.expand_path(f) }'

require "minitest/autorun"
require "fileutils"
require "tmpdir"
require "timeout"
require "json"
require "cached"

module CachedTest
  REPO = File.expand_path("../../..", __dir__)

  def self.python
    ENV.fetch("CACHED_PYTHON") { File.join(REPO, ".venv", "bin", "python") }
  end

  # CACHED_TEST_TMP (the Python runner's tmp dir) is kept for inspection; a dir made here is removed at exit.
  def self.tmp
    @tmp ||= ENV["CACHED_TEST_TMP"] ? FileUtils.mkdir_p(ENV["CACHED_TEST_TMP"]).first : (@own_tmp = Dir.mktmpdir("cached-ruby-test-"))
  end

  def self.npm_cache
    ENV.fetch("CACHED_NPM_CACHE") { File.join(tmp, "npm-cache").tap { |d| FileUtils.mkdir_p(d) } }
  end

  def self.fixture_dir
    dir = ENV.fetch("CACHED_FIXTURE") { File.join(REPO, "examples", "dashboard") }
    raise "the fixture app is missing at #{dir}; set CACHED_FIXTURE" unless File.file?(File.join(dir, "package.json"))

    dir
  end

  # The app's files as the Rails backend would hold them: without node_modules, .git and the output dir.
  def self.app_files(dir)
    Dir.glob("**/*", File::FNM_DOTMATCH, base: dir).each_with_object({}) do |rel, files|
      next if rel.split("/").any? { |part| %w[node_modules .git dist . ..].include?(part) }

      full = File.join(dir, rel)
      files[rel] = File.binread(full) if File.file?(full) && !File.symlink?(full)
    end
  end

  # An app without dependencies whose build is a Node script (fast; no npm download).
  def self.tiny_app(build_js, extra = {}, script: "node build.mjs")
    package = {name: "tiny", version: "1.0.0", private: true, scripts: {build: script}}
    lock = {name: "tiny", version: "1.0.0", lockfileVersion: 3, requires: true, packages: {"" => {name: "tiny", version: "1.0.0"}}}
    {"package.json" => JSON.pretty_generate(package), "package-lock.json" => JSON.pretty_generate(lock), "build.mjs" => build_js}.merge(extra)
  end

  WRITE_DIST = <<~JS
    import { mkdirSync, writeFileSync } from "node:fs";
    mkdirSync("dist", { recursive: true });
    writeFileSync("dist/index.html", "<h1>" + (process.env.GREETING ?? "hello") + "</h1>\\n");
  JS

  class Daemon
    attr_reader :port, :root, :log_path

    def initialize(name, args: [])
      @dir = File.join(CachedTest.tmp, name)
      FileUtils.mkdir_p(@dir)
      @root = File.join(@dir, "root")
      @args = args
      @log_path = File.join(@dir, "daemon.log")
    end

    def address
      "127.0.0.1:#{port}"
    end

    def start(timeout: 90)
      port_file = File.join(@dir, "port")
      FileUtils.rm_f(port_file)
      command = [CachedTest.python, "-m", "cached", "serve", "--root", @root, "--npm-cache", CachedTest.npm_cache,
                 "--listen", "127.0.0.1:0", "--port-file", port_file, "--drain-seconds", "10", *@args]
      @pid = Process.spawn(*command, chdir: REPO, out: @log_path, err: %i[child out], pgroup: false)
      deadline = Time.now + timeout
      until File.exist?(port_file)
        if Process.waitpid(@pid, Process::WNOHANG)
          raise "the daemon exited with #{$?.exitstatus}:\n#{log}"
        end
        raise "the daemon did not start in #{timeout}s:\n#{log}" if Time.now > deadline

        sleep 0.05
      end
      @port = Integer(File.read(port_file))
      self
    end

    def log
      File.exist?(@log_path) ? File.read(@log_path) : ""
    end

    def stop
      return unless @pid

      Process.kill("TERM", @pid)
      Timeout.timeout(60) { Process.wait(@pid) }
    rescue Errno::ESRCH, Errno::ECHILD
      nil
    rescue Timeout::Error
      Process.kill("KILL", @pid)
      Process.wait(@pid)
    ensure
      @pid = nil
    end
  end

  @daemons = {}

  # One daemon per name for the whole run, started on first use, stopped at exit.
  def self.daemon(name = "plain", args: [])
    @daemons[name] ||= Daemon.new(name, args: args).start
  end

  Minitest.after_run do
    @daemons.each_value(&:stop)
    FileUtils.rm_rf(@own_tmp) if @own_tmp && !ENV["CACHED_KEEP_TMP"]
  end
end
