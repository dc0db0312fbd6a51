# frozen_string_literal: true

module Cached
  # BLAKE3-256 in plain Ruby: the daemon addresses blobs by BLAKE3, and Debian
  # ships no Ruby binding for it. Only files over 1 MiB are hashed (they are
  # uploaded by digest), so speed matters little; the compression function is
  # unrolled at load time to keep it tolerable (a few MB/s).
  module Blake3
    IV = [0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19].freeze
    PERMUTATION = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8].freeze
    CHUNK_START = 1
    CHUNK_END = 2
    PARENT = 4
    ROOT = 8
    BLOCK_LEN = 64
    CHUNK_LEN = 1024
    ZERO_BLOCK = ("\0" * BLOCK_LEN).b.freeze

    # Generates compress(cv, m, counter, block_len, flags) -> 16 words, with
    # the 7 rounds and the message schedule unrolled into local variables.
    def self.compress_source
      g = lambda do |a, b, c, d, x, y|
        [
          "#{a} = (#{a} + #{b} + #{x}) & 0xffffffff", "#{d} ^= #{a}", "#{d} = ((#{d} >> 16) | (#{d} << 16)) & 0xffffffff",
          "#{c} = (#{c} + #{d}) & 0xffffffff", "#{b} ^= #{c}", "#{b} = ((#{b} >> 12) | (#{b} << 20)) & 0xffffffff",
          "#{a} = (#{a} + #{b} + #{y}) & 0xffffffff", "#{d} ^= #{a}", "#{d} = ((#{d} >> 8) | (#{d} << 24)) & 0xffffffff",
          "#{c} = (#{c} + #{d}) & 0xffffffff", "#{b} ^= #{c}", "#{b} = ((#{b} >> 7) | (#{b} << 25)) & 0xffffffff"
        ]
      end
      order = (0..15).to_a
      lines = []
      lines << "def self.compress(cv, m, counter, block_len, flags)"
      lines << (0..15).map { |i| "m#{i}" }.join(", ") + " = m"
      lines << (0..7).map { |i| "v#{i}" }.join(", ") + " = cv"
      lines << "v8, v9, v10, v11 = #{IV[0]}, #{IV[1]}, #{IV[2]}, #{IV[3]}"
      lines << "v12 = counter & 0xffffffff; v13 = (counter >> 32) & 0xffffffff; v14 = block_len; v15 = flags"
      7.times do
        m = order.map { |i| "m#{i}" }
        lines.concat(g.call("v0", "v4", "v8", "v12", m[0], m[1]))
        lines.concat(g.call("v1", "v5", "v9", "v13", m[2], m[3]))
        lines.concat(g.call("v2", "v6", "v10", "v14", m[4], m[5]))
        lines.concat(g.call("v3", "v7", "v11", "v15", m[6], m[7]))
        lines.concat(g.call("v0", "v5", "v10", "v15", m[8], m[9]))
        lines.concat(g.call("v1", "v6", "v11", "v12", m[10], m[11]))
        lines.concat(g.call("v2", "v7", "v8", "v13", m[12], m[13]))
        lines.concat(g.call("v3", "v4", "v9", "v14", m[14], m[15]))
        order = PERMUTATION.map { |i| order[i] }
      end
      out = (0..7).map { |i| "v#{i} ^ v#{i + 8}" } + (0..7).map { |i| "v#{i + 8} ^ cv[#{i}]" }
      lines << "[#{out.join(', ')}]"
      lines << "end"
      lines.join("\n")
    end
    module_eval(compress_source, __FILE__, __LINE__)

    module_function

    # Hex digest (64 lowercase characters) of a String's bytes.
    def hexdigest(data)
      data = data.b
      chunks = data.empty? ? 1 : (data.bytesize + CHUNK_LEN - 1) / CHUNK_LEN
      stack = []
      (0...chunks - 1).each do |index|
        cv = chunk_output(data, index).then { |o| compress(*o)[0, 8] }
        total = index + 1
        while total.even?
          cv = compress(IV, stack.pop + cv, 0, BLOCK_LEN, PARENT)[0, 8]
          total >>= 1
        end
        stack.push(cv)
      end
      output = chunk_output(data, chunks - 1)
      until stack.empty?
        output = [IV, stack.pop + compress(*output)[0, 8], 0, BLOCK_LEN, PARENT]
      end
      cv, m, counter, block_len, flags = output
      compress(cv, m, counter, block_len, flags | ROOT)[0, 8].pack("V8").unpack1("H*")
    end

    # Compresses every block of a chunk but the last; returns the last block's
    # compress arguments (its "output"), so the caller decides about ROOT.
    def chunk_output(data, index)
      start = index * CHUNK_LEN
      length = [data.bytesize - start, CHUNK_LEN].min
      blocks = length.zero? ? 1 : (length + BLOCK_LEN - 1) / BLOCK_LEN
      cv = IV
      (0...blocks - 1).each do |b|
        flags = b.zero? ? CHUNK_START : 0
        cv = compress(cv, data.unpack("V16", offset: start + b * BLOCK_LEN), index, BLOCK_LEN, flags)[0, 8]
      end
      last_start = start + (blocks - 1) * BLOCK_LEN
      last_len = length - (blocks - 1) * BLOCK_LEN
      block = data.byteslice(last_start, last_len)
      block += ZERO_BLOCK.byteslice(0, BLOCK_LEN - last_len) if last_len < BLOCK_LEN
      flags = CHUNK_END | (blocks == 1 ? CHUNK_START : 0)
      [cv, block.unpack("V16"), index, last_len, flags]
    end
  end
end
