# frozen_string_literal: true

module PytorchParity
  module Record
    # What the recorded process runs on (the diagnosis expects bit-identical results only when both
    # sides ran the same LibTorch file at the same thread count), and which pytorch_parity fixes it loaded.
    module Stack
      FIX_FILE = %r{/pytorch_parity/((?:torch|torchvision)/.+\.rb)\z}

      module_function

      def describe
        {
          side: "ruby",
          ruby: RUBY_VERSION,
          torch_rb: Torch::VERSION,
          torchvision: defined?(::TorchVision::VERSION) ? ::TorchVision::VERSION : nil,
          libtorch: libtorch_version,
          libtorch_library: libtorch_library,
          threads: threads
        }
      end

      def libtorch_version
        Torch.show_config[/TORCH_VERSION=([\w.+-]+)/, 1]&.chomp(",")
      end

      # The thread count LibTorch reports (read from parallel_info: torch.rb 0.12 has no get_num_threads).
      def threads
        Torch.parallel_info[/at::get_num_threads\(\)\s*:\s*(\d+)/, 1]&.to_i
      end

      # The resolved path of the LibTorch library mapped into this process, or nil.
      def libtorch_library
        File.foreach("/proc/#{Process.pid}/maps") do |line|
          path = line.strip[%r{(/\S*/libtorch_cpu\.so\S*)\z}, 1]
          return File.realpath(path) if path
        end
        nil
      rescue SystemCallError
        nil
      end

      # The pytorch_parity fixes loaded so far, as paths under pytorch_parity/ ("torch/nn/batch_norm2d.rb").
      def loaded_fixes
        $LOADED_FEATURES.filter_map { |feature| feature[FIX_FILE, 1] }.sort
      end
    end
  end
end
