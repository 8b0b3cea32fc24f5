# frozen_string_literal: true

require_relative "test_helper"
require "minitest/mock"

# The writers' lock and signals_held: a signal that lands as the lock is taken leaves no lock file, and a
# held signal takes effect when its block ends (the twin: reference_py/tests/test_lock.py).
class LockTest < Minitest::Test
  include Hymenoptera::TestSupport
  OutputClaim = Hymenoptera::OutputClaim

  # SIGTERM right after the lock file is made and flocked, before the lock knows it holds it.
  def test_a_signal_as_the_lock_is_taken_leaves_no_lock_file
    identical = File.method(:identical?)
    signalled = ->(*args) { Process.kill("TERM", Process.pid).then { identical.call(*args) } }
    error = assert_raises(SignalException) do
      File.stub(:identical?, signalled) do
        OutputClaim::OutputDir.new(File.join(tmpdir, "scratch"), "train", "--out").hold do
          flunk "the signal should have ended the run before the block"
        end
      end
    end
    assert_equal "SIGTERM", error.message
    assert_empty Dir.children(tmpdir)
  end

  def test_a_held_signal_takes_effect_when_the_block_ends
    reached = []
    assert_raises(SignalException) do
      PytorchParity::Lock.signals_held do
        Process.kill("TERM", Process.pid)
        reached << "after the signal"
      end
    end
    assert_equal ["after the signal"], reached
  end
end
