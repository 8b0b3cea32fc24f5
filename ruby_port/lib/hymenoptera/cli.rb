# frozen_string_literal: true

# What every entry point in ruby_port/bin/ does first: the project's gems, one-line errors, and
# LibTorch's thread count set before LibTorch loads (HYMENOPTERA_THREADS), then the port.
require_relative "python_reference"
ENV["BUNDLE_GEMFILE"] ||= File.join(Hymenoptera::PythonReference::ROOT, "Gemfile")
require "bundler/setup"
require_relative "errors"
require_relative "threads"

module Hymenoptera
  module CLI
    module_function

    # Runs the block with the port loaded; a user's problem becomes one line on stderr and exit 2.
    def run(program)
      Errors.run_cli(program) do
        Threads.configure
        ENV["VIPS_WARNING"] ||= "1" # libvips' warnings (read when it loads) would add lines to our one-line errors
        require_relative "../hymenoptera"
        yield
      end
    end
  end
end
