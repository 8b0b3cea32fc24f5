# frozen_string_literal: true

# What every entry point in ruby_port/bin/ does first: one-line errors and the option parser, with no gem of
# the bundle and no LibTorch loaded, so that bad options are refused at once; then, once its options are
# checked, the entry point calls CLI.load_port: the bundle set up, LibTorch's thread count set
# (HYMENOPTERA_THREADS), then LibTorch and the port. Bundler's setup alone was half of a refusal's CPU.
require_relative "python_reference"
ENV["BUNDLE_GEMFILE"] ||= File.join(Hymenoptera::PythonReference::ROOT, "Gemfile")
require_relative "errors"
require_relative "arguments"
require_relative "threads"
require_relative "output_claim"
require_relative "recipe"

module Hymenoptera
  module CLI
    module_function

    # Runs the block (an entry point's main); a user's problem becomes one line on stderr and exit 2.
    def run(program, &block)
      Errors.run_cli(program, &block)
    end

    # Where an entry point's long work starts (train.py's threads.configure): the bundle, LibTorch, torchvision
    # and the port. A caller in a process that already has them (the tests) keeps its thread count.
    def load_port
      require "bundler/setup"
      Threads.configure unless defined?(Torch::Tensor)
      ENV["VIPS_WARNING"] ||= "1" # libvips' warnings (read when it loads) would add lines to our one-line errors
      require_relative "../hymenoptera"
    end
  end
end
