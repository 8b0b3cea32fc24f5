# frozen_string_literal: true

require "etc"
require_relative "errors"

module Hymenoptera
  # One thread-count setting for both languages: HYMENOPTERA_THREADS (default: every core).
  #
  # torch.rb 0.12 has no set_num_threads. LibTorch's OpenMP pool reads OMP_NUM_THREADS when the
  # library is loaded, so this must run before `require "torch"`.
  module Threads
    ENV_VAR = "HYMENOPTERA_THREADS"

    # HYMENOPTERA_THREADS holds something other than a whole number of at least 1.
    class SettingError < UserError; end

    module_function

    def count
      value = ENV.fetch(ENV_VAR, "")
      return Etc.nprocessors if value.empty?
      unless value.match?(/\A[1-9]\d*\z/)
        raise SettingError, "#{ENV_VAR}=#{value.inspect}: expected a whole number of threads, at least 1; " \
                            "set it to 1 or #{Etc.nprocessors}, or unset it to use every core"
      end

      Integer(value, 10)
    end

    def configure
      if defined?(Torch::Tensor)
        raise "Hymenoptera::Threads.configure must run before torch is loaded"
      end

      ENV["OMP_NUM_THREADS"] = count.to_s
    end
  end
end
