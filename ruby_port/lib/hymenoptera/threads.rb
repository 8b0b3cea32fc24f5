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
    PER_CORE_MAX = 4 # more LibTorch threads than this per core only slow it down: 10,000 on 2 cores never ended

    # HYMENOPTERA_THREADS holds something other than a whole number from 1 to PER_CORE_MAX per core.
    class SettingError < UserError; end

    module_function

    def count
      cores = Etc.nprocessors
      value = ENV.fetch(ENV_VAR, "")
      return cores if value.empty?

      most = PER_CORE_MAX * cores
      unless value.match?(/\A[1-9][0-9]*\z/) && Integer(value, 10) <= most
        raise SettingError, "#{ENV_VAR}=#{value.inspect}: expected a whole number of threads from 1 to #{most} " \
                            "(#{PER_CORE_MAX} per core); set it to 1 or #{cores}, or unset it to use every core"
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
