# frozen_string_literal: true

require_relative "../test_helper"
require_relative "fix"

module Hymenoptera
  # A fix's canary (Fix, fix.rb): the installed gem still does what the fix's header says, and with
  # pytorch_parity the same code gives what Python gives.
  #
  #   class BatchNorm2dCanaryTest < CanaryTest
  #     canary "torch/nn/batch_norm2d.rb", now_does: "count num_batches_tracked in training mode"
  #   end
  class CanaryTest < Minitest::Test
    include TestSupport

    # Defines the canary of the fix NAME (a path under lib/pytorch_parity/): test_upstream_still_differs
    # (its reproduction, run on the gems alone, gives the header's "Upstream gives") and, when the header
    # has a "Python gives", test_with_pytorch_parity_it_gives_what_python_gives (the same reproduction
    # run here, with the library loaded).
    def self.canary(name, now_does:)
      define_method(:test_upstream_still_differs) { assert_upstream_still_differs(name, now_does) }
      return unless Fix.new(name).fields.key?("Python gives")

      define_method(:test_with_pytorch_parity_it_gives_what_python_gives) { assert_fix_gives_what_python_gives(name) }
    end

    # Passes while the fix's reproduction, without pytorch_parity, gives the header's "Upstream gives".
    # When the gem gives Python's value instead (or, for a fix without one, anything else) it fails with
    # "GEM now does NOW_DOES: delete FILES".
    def assert_upstream_still_differs(name, now_does)
      fix = Fix.new(name)
      value = Fix.upstream_values.fetch(name)
      documented = fix.fields.fetch("Upstream gives")
      return pass if value == documented

      python = fix.python_value
      if python.nil? || value == python.inspect
        flunk "#{fix.gem} now does #{now_does} (the reproduction in #{fix.path} gives #{value}, no longer " \
              "#{documented}): delete #{fix.files.join(', ')}"
      end
      flunk "#{fix.gem} changed but still differs from Python: the reproduction in #{fix.path} gives #{value}, " \
            "its header says #{documented} (Python: #{fix.fields['Python gives']}); update the header"
    end

    # With pytorch_parity loaded, the fix's reproduction gives the header's "Python gives".
    def assert_fix_gives_what_python_gives(name)
      fix = Fix.new(name)
      assert_equal fix.python_value.inspect, fix.reproduce,
                   "#{fix.path}: with pytorch_parity the reproduction gives #{fix.reproduce} where its header says " \
                   "Python gives #{fix.fields['Python gives']}"
    end
  end
end
