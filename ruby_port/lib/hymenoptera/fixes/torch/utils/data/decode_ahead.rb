# frozen_string_literal: true

# Part of: torch/utils/data/data_loader.rb

module Hymenoptera
  # A loader's samples decoded on a second Ruby thread, one or two ahead of the thread that
  # transforms them, in the sampler's order.
  #
  # Decoding (libvips) and the transforms (LibTorch) each take about half of a sample's time, and
  # Python's DataLoader (num_workers=0) does them one after the other on one core, with LibTorch's
  # threads for the transforms' few large operations. The port can overlap them: libvips computes
  # the pixels with Ruby's lock released (VipsTensor.pixels, a blocking call), so this thread decodes
  # sample k + 1 on one core while the transforms of sample k run on the other at one LibTorch thread.
  # Nothing random happens while decoding, so the transforms draw their numbers in the same order as
  # one after the other; a sample whose file does not decode raises when its turn comes.
  #
  # The queue holds one decoded sample: while the model trains on a batch, this thread has decoded at
  # most the next batch's first two samples and then waits.
  class DecodeAhead
    include Enumerable

    def initialize(dataset, indices)
      @dataset = dataset
      @indices = indices
    end

    # Yields each index's decoded [image, target], in order.
    def each
      return to_enum(:each) unless block_given?

      queue = Thread::SizedQueue.new(1)
      decoder = Thread.new { decode_into(queue) }
      @indices.size.times do
        kind, value = queue.pop
        raise value if kind == :error

        yield value
        Thread.pass # let the decoder take Ruby's lock for its next file, then release it in libvips
      end
    ensure
      decoder&.kill&.join
    end

    private

    def decode_into(queue)
      @indices.each { |index| queue << [:sample, @dataset.load(index)] }
    rescue StandardError => e
      queue << [:error, e]
    end
  end
end
