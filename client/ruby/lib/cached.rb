# frozen_string_literal: true

# require "cached" (with client/ruby/lib on the load path) loads Cached::Client.
require_relative "cached/client"
