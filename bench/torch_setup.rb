# frozen_string_literal: true

# Loads torch for a Ruby benchmark as the port's entry points do: the repository's bundle, then
# HYMENOPTERA_THREADS applied (Hymenoptera::Threads.configure) before LibTorch loads and reads it.
ENV["BUNDLE_GEMFILE"] ||= File.expand_path("../Gemfile", __dir__)
require "bundler/setup"
require "json"
require "optparse"
require_relative "../ruby_port/lib/hymenoptera/threads"
Hymenoptera::Threads.configure
require "torch"
require "torchvision"
require_relative "../ruby_port/lib/hymenoptera/runtime_info"
