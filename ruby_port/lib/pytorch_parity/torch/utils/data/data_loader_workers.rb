# frozen_string_literal: true

# Fix: torch.rb 0.12, Torch::Utils::Data::DataLoader (lib/torch/utils/data/data_loader.rb)
# Bug: it has no num_workers (no worker processes at all), where PyTorch 1.13 loads the batches in
#   worker processes, each seeding its global generator with base_seed + its id
# Reproduction:
#   Torch.manual_seed(0)
#   loader = Torch::Utils::Data::DataLoader.new((0...4).to_a, batch_size: 2, num_workers: 2, collate_fn: ->(batch) { Torch.rand(1).item })
#   loader.to_a
# Upstream gives: raises ArgumentError
# Python gives: [0.7821398973464966, 0.6938178539276123]
# In Python: torch.manual_seed(0); loader = DataLoader(range(4), batch_size=2, num_workers=2, collate_fn=lambda batch: torch.rand(1).item()); list(loader)

require_relative "../../../bundle"
require "etc"
require "torch"
require_relative "data_loader"
require_relative "multi_processing_data_loader_iter"

module PytorchParity
  # num_workers above 0 as PyTorch 1.13 has it (MultiProcessingDataLoaderIter, Worker): worker
  # processes forked afresh for every pass, worker k seeding its global generator with the pass's
  # base seed + k and running LibTorch at one thread, worker_init_fn(k), batches dealt round-robin,
  # prefetch_factor per worker in flight, delivered in the sampler's order; a worker's exception
  # raised again here with its message, the worker and the sample's index; a worker that dies ends
  # the pass with an error naming it. On Linux (fork, memfd, SOCK_SEQPACKET).
  module DataLoaderWorkers
    # Warned once a process, as Python's warnings module shows a warning once.
    WARNED = []

    private

    def _get_iterator
      return super if num_workers.zero?

      check_worker_number_rationality
      MultiProcessingDataLoaderIter.new(self)
    end

    # PyTorch's warning when there are more workers than the cores this process may run on.
    def check_worker_number_rationality
      cores = Etc.nprocessors
      return if num_workers <= cores

      message = "This DataLoader will create #{num_workers} worker processes in total. Our suggested max number " \
                "of worker in current system is #{cores}, which is smaller than what this DataLoader is going to " \
                "create. Please be aware that excessive worker creation might get DataLoader running slow or even " \
                "freeze, lower the worker number to avoid potential slowness/freeze if necessary."
      return if WARNED.include?(message)

      WARNED << message
      warn "warning: #{message}"
    end
  end
end

Torch::Utils::Data::DataLoader.prepend(PytorchParity::DataLoaderWorkers)
