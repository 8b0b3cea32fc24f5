# frozen_string_literal: true

# pytorch_parity/record: what a torch.rb program computes, recorded without editing it, for
#
#   PYTORCH_PARITY_RECORD=DIR bundle exec ruby -rpytorch_parity/record PORT.rb [args]
#   PYTORCH_PARITY_RECORD=DIR bundle exec ruby -rpytorch_parity -rpytorch_parity/record PORT.rb [args]
#   python -m parity.diagnose PY_RUN DIR
#
# (PYTORCH_PARITY_SEED=N: Torch.manual_seed(N) before the program runs.) The run format and what is
# recorded when: parity/RUN_FORMAT.md; parity/record.py records a Python program the same way. The
# recorder only watches (record/hooks.rb): it loads without the rest of pytorch_parity, so that a plain
# run records torch.rb and torchvision-ruby as they are, and before or after it.

require_relative "bundle"
require_relative "record/run_writer"

module PytorchParity
  module Record
    SEED_MAX = 2**64 - 1

    class << self
      attr_reader :recorder

      # Starts recording into DIR (claimed as parity/record.py claims it); nil when already recording. The folder is
      # claimed before LibTorch loads: a folder refused costs no LibTorch start.
      def start(dir, seed: nil)
        return nil if @recorder

        started = Time.now.utc.iso8601(3)
        writer = RunWriter.new(dir, lambda do
          load_recorder
          Torch.manual_seed(seed) unless seed.nil?
          {side: "ruby", recorder: "pytorch_parity/record", script: $PROGRAM_NAME, argv: ARGV.dup, seed: seed,
           cwd: Dir.pwd, started: started, stack: Stack.describe, pytorch_parity: Stack.loaded_fixes}
        end)
        Hooks.install
        @recorder = Recorder.new(writer)
        recorder = @recorder
        at_exit do
          recorder.finish($!)
          writer.close
        end
        @recorder
      end

      def load_recorder
        require "torch"
        require_relative "record/recorder"
        require_relative "record/hooks"
      end

      def start_from_environment
        dir = ENV["PYTORCH_PARITY_RECORD"].to_s
        raise Error, "PYTORCH_PARITY_RECORD is not set: give the folder the run goes to (PYTORCH_PARITY_RECORD=DIR)" if dir.empty?

        start(dir, seed: parse_seed(ENV["PYTORCH_PARITY_SEED"]))
      rescue Error => e
        warn "pytorch_parity/record: #{e.message}"
        exit 2
      end

      def parse_seed(text)
        return nil if text.nil? || text.empty?

        seed = Integer(text, 10, exception: false)
        return seed if seed && seed.between?(0, SEED_MAX)

        raise Error, "the seed #{text} is not a whole number from 0 to #{SEED_MAX} (PYTORCH_PARITY_SEED=N)"
      end
    end
  end
end

PytorchParity::Record.start_from_environment
