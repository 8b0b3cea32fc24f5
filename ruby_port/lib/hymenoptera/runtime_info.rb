# frozen_string_literal: true

module Hymenoptera
  # What this process runs on: library versions, the LibTorch file actually loaded, threads.
  module RuntimeInfo
    module_function

    # The LibTorch shared library mapped into this process (its resolved path), or nil.
    def loaded_libtorch
      File.foreach("/proc/#{Process.pid}/maps") do |line|
        path = line.strip[%r{(/\S*/libtorch_cpu\.so\S*)\z}, 1]
        return File.realpath(path) if path
      end
      nil
    rescue SystemCallError
      nil
    end

    def libtorch_version
      Torch.show_config[/TORCH_VERSION=([\w.+-]+)/, 1]&.chomp(",")
    end

    # The thread count LibTorch reports; torch.rb 0.12 exposes no get_num_threads.
    def threads
      Torch.parallel_info[/at::get_num_threads\(\)\s*:\s*(\d+)/, 1]&.to_i
    end

    def describe
      {
        side: "ruby",
        ruby: RUBY_VERSION,
        torch_rb: Torch::VERSION,
        torchvision: defined?(TorchVision::VERSION) ? TorchVision::VERSION : nil,
        libtorch: libtorch_version,
        libtorch_library: loaded_libtorch,
        threads: threads
      }
    end
  end
end
