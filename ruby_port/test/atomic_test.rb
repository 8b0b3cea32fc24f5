# frozen_string_literal: true

require_relative "test_helper"
require "minitest/mock"

# A signal that lands the moment a temporary output is made must not leak it (the twin:
# reference_py/tests/test_atomic.py).
class AtomicTest < Minitest::Test
  include Hymenoptera::TestSupport
  Atomic = Hymenoptera::Atomic

  # SIGTERM sent to this process right after the temporary folder exists, before Dir.mkdir returns.
  def sigterm_on_creation(&block)
    mkdir = Dir.method(:mkdir)
    signalled = lambda do |*args|
      mkdir.call(*args).tap { Process.kill("TERM", Process.pid) }
    end
    Dir.stub(:mkdir, signalled, &block)
  end

  def writers(target)
    {
      "OutputDir#write" => ->(&block) { Atomic::OutputDir.new(target, "train", "--out").write(&block) },
      "Atomic.dir" => ->(&block) { Atomic.dir(target, &block) }
    }
  end

  %w[OutputDir#write Atomic.dir].each do |writer|
    define_method("test_a_signal_as_the_temporary_folder_is_made_leaves_nothing_with_#{writer}") do
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

  def test_a_held_signal_takes_effect_when_the_block_ends
    reached = []
    assert_raises(SignalException) do
      Atomic.signals_held do
        Process.kill("TERM", Process.pid)
        reached << "after the signal"
      end
    end
    assert_equal ["after the signal"], reached
  end
end
