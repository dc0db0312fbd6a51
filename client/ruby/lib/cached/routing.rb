# frozen_string_literal: true

# Which daemon serves an app: rendezvous (highest random weight) hashing over
# the daemons' addresses, the same as the Python client's
# cached_client/routing.py, so both send an app to the same daemon.
#
# Each daemon keeps a warm builder per app it built recently, so the same
# (tenant, app) should keep reaching the same daemon. Every address gets a
# weight per key, the SHA-256 hex digest of "<tenant>/<app>\n<address>"
# (UTF-8); the heaviest serves the key, the next ones take over in order when
# it is down. Removing an address moves only the keys it served. Ruby's
# String#hash is seeded per process, so it could not be used.

require "digest"

module Cached
  module Routing
    METADATA = "x-cached-route" # sent with every call about one app, for a ring-hash proxy in front

    module_function

    # The addresses of an Array, or of a comma-separated String; blanks dropped, duplicates kept once, order kept.
    def parse_addresses(addresses)
      list = addresses.is_a?(String) ? addresses.split(",") : Array(addresses)
      list = list.map { |a| a.to_s.strip }.reject(&:empty?).uniq
      raise ArgumentError, "give at least one daemon address (host:port, or several separated by commas)" if list.empty?

      list
    end

    def key(tenant, app)
      "#{tenant}/#{app}"
    end

    def weight(key, address)
      ::Digest::SHA256.hexdigest("#{key}\n#{address}".encode(Encoding::UTF_8))
    end

    # Every address, the key's daemon first, then where it goes when the ones before are down.
    def order(key, addresses)
      addresses.map { |a| [weight(key, a), a] }.sort { |(wx, x), (wy, y)| (wy <=> wx).nonzero? || (x <=> y) }.map(&:last)
    end

    def pick(key, addresses)
      order(key, addresses).first
    end

    # {"x-cached-route" => key}, or {} when the key cannot travel as a metadata value (printable ASCII);
    # tenant and app ids always can, and the daemon refuses the others anyway.
    def metadata(key)
      key.ascii_only? && key.match?(/\A[ -~]*\z/) ? {METADATA => key} : {}
    end
  end
end
