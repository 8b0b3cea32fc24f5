# frozen_string_literal: true

module Hymenoptera
  # A one-line progress bar on stderr, redrawn in place and erased when done (tqdm with leave=False).
  class ProgressBar
    WIDTH = 24

    def initialize(total, desc:, io: $stderr, enabled: true)
      @total = total
      @desc = desc
      @io = io
      @enabled = enabled
      @done = 0
      @started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
      draw
    end

    # Yields each element of enumerable, advancing the bar after each; erases it at the end.
    def self.wrap(enumerable, desc:, enabled: true, &block)
      bar = new(enumerable.size, desc: desc, enabled: enabled)
      enumerable.each do |*item|
        block.call(*item)
        bar.advance
      end
    ensure
      bar&.close
    end

    def advance
      @done += 1
      draw
    end

    def close
      @io.print("\r\e[K") if @enabled
      @io.flush if @enabled
    end

    private

    def draw
      return unless @enabled

      filled = @total.positive? ? WIDTH * @done / @total : WIDTH
      elapsed = Process.clock_gettime(Process::CLOCK_MONOTONIC) - @started
      rate = elapsed.positive? ? @done / elapsed : 0.0
      @io.print(format("\r%s: %3d%%|%-#{WIDTH}s| %d/%d [%.1fs, %.2f it/s]\e[K",
                       @desc, @total.positive? ? 100 * @done / @total : 100, "#" * filled, @done, @total, elapsed, rate))
      @io.flush
    end
  end
end
