# frozen_string_literal: true

# `bundle exec ruby -rpytorch_parity PORT.rb` requires the library before RUBYOPT's bundler/setup (Ruby
# takes the command line's -r first), so the gems it requires would not be the bundle's, or not be
# found: under a Gemfile, set the bundle up first (a no-op once it is).
require "bundler/setup" if ENV["BUNDLE_GEMFILE"]
