# frozen_string_literal: true

# Fix: torch.rb 0.12, Torch (lib/torch.rb)
# Bug: it has no set_num_threads or get_num_threads, so a program cannot change LibTorch's thread
#   count once LibTorch is loaded (only OMP_NUM_THREADS before it loads), as a DataLoader worker must
# Reproduction:
#   threads = Torch.get_num_threads
#   Torch.set_num_threads(1)
#   one = Torch.get_num_threads
#   Torch.set_num_threads(threads)
#   one
# Upstream gives: raises NoMethodError
# Python gives: 1
# In Python: threads = torch.get_num_threads(); torch.set_num_threads(1); one = torch.get_num_threads(); torch.set_num_threads(threads); one

require_relative "../bundle"
require "ffi"
require "torch"

module PytorchParity
  # torch.set_num_threads and torch.get_num_threads: LibTorch's own at::set_num_threads and
  # at::get_num_threads (what Python's call), from the libtorch_cpu this process has loaded.
  module NumThreads
    # The C++ functions' mangled names: at::set_num_threads(int), at::get_num_threads().
    module LibTorch
      extend FFI::Library

      # The libtorch_cpu mapped into this process (torch.rb's), so that the thread count set is the
      # one its kernels read.
      def self.path
        File.foreach("/proc/self/maps") do |line|
          path = line[%r{(/\S*/libtorch_cpu\.so[^\s/]*)$}, 1]
          return path if path
        end
        FFI.map_library_name("torch_cpu")
      rescue SystemCallError
        FFI.map_library_name("torch_cpu")
      end

      ffi_lib path
      attach_function :set_num_threads, :_ZN2at15set_num_threadsEi, [:int], :void
      attach_function :get_num_threads, :_ZN2at15get_num_threadsEv, [], :int
    end

    # Python's checks, in its words (before the call: a C++ exception thrown through FFI would abort).
    def set_num_threads(count)
      raise ArgumentError, "set_num_threads expects an int, but got #{count.class}" unless count.is_a?(Integer)
      raise ArgumentError, "set_num_threads expects a positive integer" unless count.positive?

      LibTorch.set_num_threads(count)
      nil
    end

    def get_num_threads
      LibTorch.get_num_threads
    end
  end
end

Torch.singleton_class.prepend(PytorchParity::NumThreads)
