# frozen_string_literal: true

require_relative "../test_helper"
require_relative "fix"

module Hymenoptera
  # What a canary asserts about a fix (Fix, fix.rb): the installed gem still does what the fix's
  # header says, and the fix gives what Python gives.
  module Canary
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
