# frozen_string_literal: true

# Fix: torch.rb 0.12, Torch::Utils::Data::DataLoader (lib/torch/utils/data/data_loader.rb)
# Bug: it takes no sampler, batch_sampler, drop_last or generator and shuffles with one permutation of
#   the global generator, where PyTorch 1.13's RandomSampler seeds a generator of its own from the
#   global one (and draws a second, trimmed permutation each pass)
# Reproduction:
#   Torch.manual_seed(0)
#   Torch::Utils::Data::DataLoader.new((0...6).to_a, batch_size: 6, shuffle: true).first.to_a
# Upstream gives: [5, 1, 0, 3, 2, 4]
# Python gives: [0, 4, 3, 5, 2, 1]
# In Python: torch.manual_seed(0); next(iter(DataLoader(list(range(6)), batch_size=6, shuffle=True))).tolist()

require_relative "../../../bundle"
require "torch"
require_relative "../../tensor_memory"
require_relative "random_sampler"
require_relative "sequential_sampler"
require_relative "batch_sampler"
require_relative "collate"

module PytorchParity
  # torch.utils.data.DataLoader as PyTorch 1.13 has it for map-style datasets (objects with [] and
  # size): its arguments and their checks (in PyTorch's words), its samplers and default collation,
  # and its random numbers: each pass draws the workers' base seed from the loader's generator (the
  # global one when nil) as it starts, then the sampler draws as it is asked for indices. num_workers
  # above 0 runs worker processes (data_loader_workers.rb). Once stacked by the default collation, a
  # batch's samples are freed if the dataset says they are fresh (fresh_samples?: only the loader
  # holds them), as Python drops them (torch/tensor_memory.rb).
  module DataLoader
    attr_reader :dataset, :batch_size, :num_workers, :prefetch_factor, :timeout, :worker_init_fn, :drop_last,
                :sampler, :batch_sampler, :generator, :collate_fn, :persistent_workers

    def initialize(dataset, batch_size: 1, shuffle: false, sampler: nil, batch_sampler: nil, num_workers: 0,
                   collate_fn: nil, drop_last: false, timeout: 0, worker_init_fn: nil, generator: nil,
                   prefetch_factor: 2, persistent_workers: false)
      check_non_negative(num_workers, "num_workers option should be non-negative; use num_workers=0 to disable multiprocessing.")
      raise ArgumentError, "'float' object cannot be interpreted as an integer" unless num_workers.is_a?(Integer)

      check_non_negative(timeout, "timeout option should be non-negative")
      if num_workers.zero? && prefetch_factor != 2
        raise ArgumentError, "prefetch_factor option could only be specified in multiprocessing." \
                             "let num_workers > 0 to enable multiprocessing."
      end
      raise ArgumentError, "prefetch_factor should be a positive integer" unless prefetch_factor.is_a?(Integer) && prefetch_factor.positive?
      raise ArgumentError, "persistent_workers option needs num_workers > 0" if persistent_workers && num_workers.zero?
      # PyTorch asserts these when iteration starts
      raise ArgumentError, "timeout option needs num_workers > 0" if num_workers.zero? && timeout.positive?
      raise ArgumentError, "persistent_workers is not supported: workers are started afresh every pass" if persistent_workers
      if defined?(Torch::Utils::Data::IterableDataset) && dataset.is_a?(Torch::Utils::Data::IterableDataset)
        raise ArgumentError, "an IterableDataset is not supported: the DataLoader loads map-style datasets (with [] and size)"
      end

      raise ArgumentError, "sampler option is mutually exclusive with shuffle" if sampler && shuffle

      if batch_sampler
        if batch_size != 1 || shuffle || sampler || drop_last
          raise ArgumentError, "batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, and drop_last"
        end

        batch_size = nil
        drop_last = false
      elsif batch_size.nil? && drop_last
        raise ArgumentError, "batch_size=None option disables auto-batching and is mutually exclusive with drop_last"
      end

      sampler ||= if shuffle
                    Torch::Utils::Data::RandomSampler.new(dataset, generator: generator)
                  else
                    Torch::Utils::Data::SequentialSampler.new(dataset)
                  end
      batch_sampler = Torch::Utils::Data::BatchSampler.new(sampler, batch_size, drop_last) if batch_size && batch_sampler.nil?

      @dataset = dataset
      @num_workers = num_workers
      @prefetch_factor = prefetch_factor
      @timeout = timeout
      @worker_init_fn = worker_init_fn
      @batch_size = batch_size
      @drop_last = drop_last
      @sampler = sampler
      @batch_sampler = batch_sampler
      @generator = generator
      @default_collation = collate_fn.nil?
      @collate_fn = collate_fn || Collate.method(auto_collation? ? :default_collate : :default_convert)
      @persistent_workers = persistent_workers
    end

    # Yields each batch of a pass over the dataset (PyTorch's `for batch in loader`).
    def each(&block)
      return to_enum(:each) { size } unless block

      _get_iterator.each(&block)
      self
    end

    # The number of batches a pass yields.
    def size
      index_sampler.size
    end
    alias_method :length, :size
    alias_method :count, :size

    # Batches of indices, or single ones when batch_size is nil.
    def auto_collation?
      !@batch_sampler.nil?
    end

    # What the iterators ask for indices: the batch sampler, or the sampler without batching.
    def index_sampler
      auto_collation? ? @batch_sampler : @sampler
    end

    # Whether the samples may be freed once the default collation has stacked them: the dataset says
    # that only the loader holds them.
    def fresh_samples?
      fresh_batches? && @dataset.respond_to?(:fresh_samples?) && @dataset.fresh_samples?
    end

    # Whether a batch is made of new tensors only (the default collation stacked the samples): a
    # worker gives their memory back as soon as it has sent them.
    def fresh_batches?
      @default_collation && auto_collation?
    end

    private

    def _get_iterator
      unless @num_workers.zero?
        raise NotImplementedError, "num_workers above 0 needs pytorch_parity/torch/utils/data/data_loader_workers " \
                                   "(require \"pytorch_parity\")"
      end

      SingleProcessDataLoaderIter.new(self)
    end

    # PyTorch's `value < 0` check: its message for a negative number, Python's TypeError's words for
    # what cannot be compared with 0 (naming Ruby's values as Python's types).
    def check_non_negative(value, message)
      unless value.is_a?(Numeric)
        type = {String => "str", Symbol => "str", NilClass => "NoneType", TrueClass => "bool", FalseClass => "bool",
                Array => "list", Hash => "dict"}.fetch(value.class, value.class.name)
        raise ArgumentError, "'<' not supported between instances of '#{type}' and 'int'"
      end
      raise ArgumentError, message if value.negative?
    end
  end

  # What every pass starts with (_BaseDataLoaderIter): the index sampler's enumerator, not started
  # yet, and then the base seed, drawn from the loader's generator.
  class BaseDataLoaderIter
    def initialize(loader)
      @loader = loader
      @sampler_iter = loader.index_sampler.to_enum(:each)
      @base_seed = PytorchParity.random_int64(loader.generator)
    end

    private

    # The next index (or batch of indices), nil at the end.
    def next_index
      @sampler_iter.next
    rescue StopIteration
      nil
    end

    def fetcher
      MapDatasetFetcher.new(@loader.dataset, @loader.auto_collation?, @loader.collate_fn, free_samples: @loader.fresh_samples?)
    end
  end

  # num_workers 0: the batches made in this process (_SingleProcessDataLoaderIter).
  class SingleProcessDataLoaderIter < BaseDataLoaderIter
    def each
      fetcher = self.fetcher
      while (index = next_index)
        yield fetcher.fetch(index)
      end
    end
  end

  # The samples of an index (or a batch of indices) collated (_MapDatasetFetcher); index: the one
  # being loaded, for a worker's error.
  class MapDatasetFetcher
    attr_reader :index

    def initialize(dataset, auto_collation, collate_fn, free_samples: false)
      @dataset = dataset
      @auto_collation = auto_collation
      @collate_fn = collate_fn
      @free_samples = free_samples
    end

    def fetch(possibly_batched_index)
      data = if @auto_collation
               possibly_batched_index.map { |index| @dataset[@index = index] }
             else
               @dataset[@index = possibly_batched_index]
             end
      @index = possibly_batched_index
      @collate_fn.call(data).tap { free(data) if @free_samples }
    end

    private

    def free(data)
      case data
      when Torch::Tensor then TensorMemory.free(data)
      when Array then data.each { |item| free(item) }
      when Hash then data.each_value { |item| free(item) }
      when Struct then data.each { |item| free(item) }
      end
    end
  end
end

Torch::Utils::Data::DataLoader.prepend(PytorchParity::DataLoader)
