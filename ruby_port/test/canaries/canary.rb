# frozen_string_literal: true

require_relative "../test_helper"
require_relative "fix"

module Hymenoptera
  # A fix's canary (Fix, fix.rb): the installed gem still does what the fix's header says, and the fix
  # gives what Python gives.
  #
  #   class BatchNorm2dCanaryTest < CanaryTest
  #     canary "torch/nn/batch_norm2d.rb", now_does: "count num_batches_tracked in training mode" do
  #       ...the header's reproduction, with the fix; its value is what Python gives
  #     end
  #   end
  class CanaryTest < Minitest::Test
    include TestSupport

    # Defines the canary of the fix NAME (a path under lib/hymenoptera/fixes/): test_upstream_still_differs
    # and, with a block (the reproduction with the fix), test_the_fix_gives_what_python_gives. tidy: the
    # reproduction's local variable that holds a temporary folder, removed once it has run.
    def self.canary(name, now_does:, tidy: nil, &with_the_fix)
      define_method(:test_upstream_still_differs) do
        assert_upstream_still_differs(name, now_does) { |scope| FileUtils.rm_rf(scope.local_variable_get(tidy)) if tidy && scope.local_variable_defined?(tidy) }
      end
      return unless with_the_fix

      define_method(:test_the_fix_gives_what_python_gives) do
        assert_fix_gives_what_python_gives(name, instance_exec(&with_the_fix))
      end
    end

    # Passes while the fix's reproduction gives the header's "Upstream gives". When the gem gives
    # Python's value instead (or, for a fix without one, anything else) it fails with
    # "GEM now does NOW_DOES: delete FILES". Yields the reproduction's local variables (to tidy up).
    def assert_upstream_still_differs(name, now_does)
      fix = Fix.new(name)
      value, scope = fix.reproduce
      yield scope if block_given?
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

    # The fix's own value for the reproduction is the header's "Python gives".
    def assert_fix_gives_what_python_gives(name, value)
      fix = Fix.new(name)
      assert_equal fix.python_value, value,
                   "#{fix.path}: the fix gives #{value.inspect} where its header says Python gives #{fix.fields['Python gives']}"
    end
  end
end
