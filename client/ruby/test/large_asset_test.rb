# frozen_string_literal: true

require "test_helper"

# A 25 MiB asset built twice through a real daemon: the client never hashes it
# with the plain-Ruby BLAKE3 (the daemon returns its digest), and the second
# build sends it by digest without uploading it again.
class LargeAssetTest < Minitest::Test
  TENANT = "rails-large"
  SIZE = 25 << 20

  COPY = <<~JS
    import { mkdirSync, copyFileSync } from "node:fs";
    mkdirSync("dist", { recursive: true });
    copyFileSync("public/video.bin", "dist/video.bin");
  JS

  # Counts the calls into Cached::Blake3 while it is installed.
  module Blake3Spy
    class << self
      attr_accessor :calls
    end
    self.calls = 0

    def hexdigest(data)
      Blake3Spy.calls += 1
      super
    end

    def compress(*args)
      Blake3Spy.calls += 1
      super
    end
  end
  Cached::Blake3.singleton_class.prepend(Blake3Spy)

  # Records the UploadBlobs calls of one client and the bytes each sent.
  module UploadSpy
    attr_accessor :uploads

    def upload_blobs(chunks, **kwargs)
      sent = chunks.to_a
      (@uploads ||= []) << sent.sum { |c| c.data.bytesize }
      super(sent, **kwargs)
    end
  end

  def setup
    @client = Cached::Client.new(CachedTest.daemon.address, token: nil)
    @content = @client.instance_variable_get(:@content)
    @content.singleton_class.prepend(UploadSpy)
    @content.uploads = []
  end

  def teardown
    @client&.close
  end

  def test_a_25_mib_asset_is_never_hashed_in_ruby_and_uploaded_once
    video = Random.new(25).bytes(SIZE)
    files = CachedTest.tiny_app(COPY, {"public/video.bin" => video})
    Blake3Spy.calls = 0

    first, first_s = timed { @client.build(app_id: "video", tenant: TENANT, files: files) }
    assert_equal [SIZE], @content.uploads, "the first build uploads the asset once, whole"
    out = first.outputs.find { |o| o.path == "video.bin" }
    assert_equal SIZE, out.size

    @content.uploads = []
    second, second_s = timed { @client.build(app_id: "video", tenant: TENANT, files: files) }
    assert_empty @content.uploads, "the second build uploads nothing: the remembered digest is still in the daemon"
    assert second.hit?
    assert_equal out.hex, second.outputs.find { |o| o.path == "video.bin" }.hex

    # A tenant that never sent it: FindMissingBlobs names the remembered digest, so it is uploaded again.
    other = @client.build(app_id: "video", tenant: "#{TENANT}-other", files: files)
    assert_equal [SIZE], @content.uploads
    assert_equal out.hex, other.outputs.find { |o| o.path == "video.bin" }.hex

    # Changed content is never sent under the remembered digest.
    @content.uploads = []
    changed = video.dup
    changed.setbyte(SIZE / 2, changed.getbyte(SIZE / 2) ^ 1)
    third = @client.build(app_id: "video", tenant: TENANT, files: files.merge("public/video.bin" => changed))
    assert_equal [SIZE], @content.uploads
    refute_equal out.hex, third.outputs.find { |o| o.path == "video.bin" }.hex
    assert_equal changed.byteslice(SIZE / 2 - 8, 16), @client.read_blob(tenant: TENANT, digest: third.outputs.find { |o| o.path == "video.bin" }).byteslice(SIZE / 2 - 8, 16)

    assert_equal 0, Blake3Spy.calls, "the client never ran the plain-Ruby BLAKE3"
    @client.digest_of("the spy counts")
    assert_operator Blake3Spy.calls, :>, 0, "the spy sees a call to Cached::Blake3"
    puts format("\n25 MiB asset: first build %.2f s (upload, hashed by the daemon), second build %.2f s (by digest, nothing uploaded)", first_s, second_s)
  end

  private

  def timed
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    result = yield
    [result, Process.clock_gettime(Process::CLOCK_MONOTONIC) - started]
  end
end
