# frozen_string_literal: true

require_relative "test_helper"
require "minitest/mock"

# A signal that lands the moment a temporary output is made must not leak it, whether a file or a claimed
# folder is written (the twin: reference_py/tests/test_atomic.py).
class AtomicTest < Minitest::Test
  include Hymenoptera::TestSupport
  Atomic = Hymenoptera::Atomic
  OutputClaim = Hymenoptera::OutputClaim

  # SIGTERM sent to this process right after the temporary entry exists, before its maker returns.
  def sigterm_on_creation(&block)
    make = Atomic.method(:make_temporary)
    signalled = lambda do |target, &maker|
      make.call(target, &maker).tap { Process.kill("TERM", Process.pid) }
    end
    Atomic.stub(:make_temporary, signalled, &block)
  end

  def writers(target)
    {
      "OutputDir#write" => ->(&block) { OutputClaim::OutputDir.new(target, "train", "--out").write(&block) },
      "atomic_path" => ->(&block) { Atomic.atomic_path(target, &block) }
    }
  end

  %w[OutputDir#write atomic_path].each do |writer|
    define_method("test_a_signal_as_the_temporary_entry_is_made_leaves_nothing_with_#{writer}") do
      target = File.join(tmpdir, "scratch")
      error = assert_raises(SignalException) do
        sigterm_on_creation do
          writers(target).fetch(writer).call { flunk "the signal should have ended the run before the block" }
        end
      end
      assert_equal "SIGTERM", error.message
      assert_empty Dir.children(tmpdir)
    end
  end
end
