# frozen_string_literal: true

require "minitest/autorun"
require "digest"
require "cached"

# Cached::Routing without a daemon: the documented weight, parsing, and what removing an address moves.
# (The Python suite's tests/clients/test_routing.py checks that Ruby and Python pick the same daemons.)
class RoutingTest < Minitest::Test
  ADDRESSES = %w[127.0.0.1:7001 127.0.0.1:7002 127.0.0.1:7003].freeze

  def test_the_order_is_by_the_documented_sha256_highest_first
    by_hand = ADDRESSES.sort_by { |a| Digest::SHA256.hexdigest("acme/shop\n#{a}") }.reverse
    assert_equal by_hand, Cached::Routing.order("acme/shop", ADDRESSES)
    assert_equal Cached::Routing.order("acme/shop", ADDRESSES), Cached::Routing.order("acme/shop", ADDRESSES.reverse)
  end

  def test_addresses_come_as_an_array_or_a_comma_separated_string
    assert_equal %w[127.0.0.1:1 127.0.0.1:2], Cached::Routing.parse_addresses(" 127.0.0.1:1, 127.0.0.1:2,,127.0.0.1:1 ")
    assert_equal %w[127.0.0.1:2 127.0.0.1:1], Cached::Routing.parse_addresses(%w[127.0.0.1:2 127.0.0.1:1])
    assert_raises(ArgumentError) { Cached::Routing.parse_addresses(" , ") }
  end

  def test_removing_an_address_moves_only_its_keys
    keys = (0...200).map { |i| "routes/app#{i}" }
    rest = ADDRESSES - [ADDRESSES[1]]
    moved = keys.reject { |k| Cached::Routing.pick(k, rest) == Cached::Routing.pick(k, ADDRESSES) }
    refute_empty moved
    assert(moved.all? { |k| Cached::Routing.pick(k, ADDRESSES) == ADDRESSES[1] })
  end

  def test_the_route_header_is_sent_only_when_it_can_travel
    assert_equal({"x-cached-route" => "acme/shop"}, Cached::Routing.metadata("acme/shop"))
    assert_equal({}, Cached::Routing.metadata("acme/caf\u00e9"))
  end
end
