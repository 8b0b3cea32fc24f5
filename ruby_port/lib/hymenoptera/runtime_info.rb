# frozen_string_literal: true

require_relative "../pytorch_parity/record/stack"

module Hymenoptera
  # What this process runs on: library versions, the LibTorch file actually loaded, threads. The same
  # description a recorded run carries (pytorch_parity's recorder, record/stack.rb), so that the suite
  # and the diagnosis judge stacks alike.
  module RuntimeInfo
    module_function

    def threads
      PytorchParity::Record::Stack.threads
    end

    def describe
      PytorchParity::Record::Stack.describe
    end
  end
end
