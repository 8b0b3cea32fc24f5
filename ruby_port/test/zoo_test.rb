# frozen_string_literal: true

require_relative "test_helper"
require_relative "../lib/hymenoptera/zoo"

# The zoo's waits for the other side: a long one says once what it waits for, and each gives up at its timeout.
class ZooTest < Minitest::Test
  Zoo = Hymenoptera::Zoo

  def test_a_long_wait_says_once_what_it_waits_for
    error = nil
    assert_output(nil, "zoo: waiting for the stand-in\n") do
      error = assert_raises(Hymenoptera::UserError) do
        Zoo.wait_for("/nonexistent/standin_batch.json", "the stand-in", timeout: 0.4, notice: 0.1)
      end
    end
    assert_match(/waited 0.4 s for/, error.message)
  end

  def test_a_short_wait_says_nothing
    answers = [false, false, true].each
    assert_output(nil, "") { Zoo.wait_for("unused", "the stand-in", notice: 10) { answers.next } }
  end
end
