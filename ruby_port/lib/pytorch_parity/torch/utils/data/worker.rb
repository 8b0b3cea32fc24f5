# frozen_string_literal: true

# Part of: torch/utils/data/data_loader_workers.rb

require_relative "../../../bundle"
require "ffi"
require "torch"
require_relative "../../num_threads"
require_relative "data_loader"
require_relative "worker_channel"

module PytorchParity
  # A DataLoader worker process, as PyTorch 1.13's _utils/worker.py runs one: forked from the
  # DataLoader, it seeds its global generator (and Ruby's, as Python seeds `random`) with base_seed +
  # worker id, runs LibTorch at one thread, calls worker_init_fn(worker id), then loads the batches
  # it is sent until the DataLoader closes its end (or exits), and ends with exit!: nothing of the
  # parent's (at_exit handlers, finalizers, ensure clauses) runs in it.
  module Worker
    # torch.utils.data.get_worker_info() in a worker.
    WorkerInfo = Struct.new(:id, :num_workers, :seed, :dataset, keyword_init: true)

    # Signals whose handlers the worker must not inherit from the parent (a program's clean-up on
    # SIGTERM would run in every worker): the system's default (die) instead, as Python's workers have.
    RESET_SIGNALS = %w[INT TERM HUP QUIT USR1 USR2 ALRM].freeze

    # A minor GC before the next batch is made, once the batches sent since the last one hold this many
    # bytes. Ruby's GC does not see LibTorch's memory, so left alone it seldom runs in a worker and every
    # batch is made in fresh memory, which in a forked process first copies the parent's pages: 38,000
    # page faults for the train transforms' first 96 stand-in images in a worker against 11,000 with a GC
    # every batch of 4, most of the difference in their CPU time (the DataLoader's own process frees as it
    # goes: tensor_memory.rb). Not right after a send: a worker's last batch is followed by no other, and
    # a GC then (its marking writes to, so copies, pages of the parent's heap) was work for nothing just
    # before the worker exits: 16 workers of a fine-tuning trainer, 80,000 -> 73,000 page faults.
    GC_BYTES = 1 << 20

    # glibc's malloc in a worker: every block under MMAP_THRESHOLD from the heap, and what is freed kept
    # there (TRIM_THRESHOLD). A worker's tensors (a decoded image, its resized copies, the batch) are
    # hundreds of KiB to a few MiB, which glibc maps afresh and unmaps when freed (its threshold rises
    # only as far as the largest block freed so far): every image cost page faults, in a forked
    # process up to 50 us each on this project's 2-core machine, and the train transforms' 48 images
    # took a worker 0.48-0.55 s of CPU with 10,000-14,000 faults, 0.36-0.40 s with 6,000 this way. The
    # worker lives for one pass; the DataLoader's own process is left as it is.
    MMAP_THRESHOLD = 32 << 20 # glibc's largest (HEAP_MAX_SIZE / 2)
    TRIM_THRESHOLD = 1 << 30

    module LibC
      extend FFI::Library
      ffi_lib FFI::Library::LIBC
      attach_function :prctl, [:int, :ulong, :ulong, :ulong, :ulong], :int
      attach_function :mallopt, [:int, :int], :int
      PR_SET_PDEATHSIG = 1
      M_TRIM_THRESHOLD = -1
      M_MMAP_THRESHOLD = -3
    end

    class << self
      attr_reader :worker_info
    end

    module_function

    # In the forked child: the signals reset, the descriptors of the other workers' channels closed
    # (so that each worker sees the DataLoader's end close), SIGKILL when the DataLoader's process
    # dies, whatever the worker is doing (its channel's end covers the idle worker too), and malloc
    # set to reuse what the worker frees.
    def detach_from_parent(parent_pid, parent_ends)
      RESET_SIGNALS.each { |signal| Signal.trap(signal, "SYSTEM_DEFAULT") }
      parent_ends.each(&:close)
      LibC.prctl(LibC::PR_SET_PDEATHSIG, Signal.list.fetch("KILL"), 0, 0, 0)
      Process.exit!(0) if Process.ppid != parent_pid # the parent died before the line above
      LibC.mallopt(LibC::M_MMAP_THRESHOLD, MMAP_THRESHOLD)
      LibC.mallopt(LibC::M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    end

    # _worker_loop for a map-style dataset.
    def worker_loop(loader, channel, base_seed, worker_id)
      Torch.set_num_threads(1)
      seed = base_seed + worker_id
      Kernel.srand(seed)
      Torch.manual_seed(seed)
      @worker_info = WorkerInfo.new(id: worker_id, num_workers: loader.num_workers, seed: seed, dataset: loader.dataset).freeze
      where = "in DataLoader worker process #{worker_id}"

      init_exception = nil
      begin
        loader.worker_init_fn&.call(worker_id)
        fetcher = MapDatasetFetcher.new(loader.dataset, loader.auto_collation?, loader.collate_fn,
                                        free_samples: loader.fresh_samples?)
      rescue Exception => e # rubocop:disable Lint/RescueException
        raise if fatal?(e)

        init_exception = ExceptionWrapper.capture(e, where)
      end

      sent = 0
      while (task = channel.get)
        if sent >= GC_BYTES
          TensorMemory.release
          sent = 0
        end
        idx, index = task
        if fetcher.nil? # worker_init_fn or the fetcher failed: every task gets that error
          data = init_exception
        else
          begin
            data = fetcher.fetch(index)
          rescue Exception => e # rubocop:disable Lint/RescueException
            raise if fatal?(e)

            data = ExceptionWrapper.capture(e, where, index: fetcher.index)
          end
        end
        sent += send_result(channel, idx, data, where, fresh: loader.fresh_batches?)
      end
    end

    # Sends a result; its tensors' bytes. A batch the default collation made is the worker's alone:
    # its memory is given back once sent.
    def send_result(channel, idx, data, where, fresh:)
      begin
        sent = channel.put([idx, data])
      rescue Errno::EPIPE, Errno::ECONNRESET
        raise # the DataLoader has gone: the worker ends
      rescue StandardError, ScriptError => e # a batch Marshal cannot send, a full memory file system
        return channel.put([idx, ExceptionWrapper.capture(e, where)])
      end
      free_tensors(data) if fresh && !data.is_a?(ExceptionWrapper)
      sent
    end

    def free_tensors(data)
      case data
      when Torch::Tensor
        begin
          TensorMemory.free(data)
        rescue StandardError
          nil # a dtype it cannot empty (float16): the memory goes back when Ruby's GC collects the tensor
        end
      when Array then data.each { |item| free_tensors(item) }
      when Hash then data.each_value { |item| free_tensors(item) }
      when Struct then data.each { |item| free_tensors(item) }
      end
    end

    # What a worker lets end it rather than report: exit and signals.
    def fatal?(exception)
      exception.is_a?(SystemExit) || exception.is_a?(SignalException)
    end
  end

  # An exception raised in a worker, carried to the DataLoader and raised there again (PyTorch's
  # ExceptionWrapper): the same class when it can be made with a message, else RuntimeError; the
  # worker's message with where it happened (the worker and the sample's index); the worker's backtrace.
  ExceptionWrapper = Struct.new(:class_name, :message, :backtrace, :where, :index) do
    def self.capture(exception, where, index: nil)
      new(exception.class.name, exception.message, exception.backtrace, where, index)
    end

    # The DataLoader's error: original message (where: in DataLoader worker process K, sample index I).
    def reraise
      text = "#{message} (#{where}#{", sample index #{index.inspect}" unless index.nil?})"
      exception = build(text)
      exception.extend(WorkerException)
      exception.worker_message = message
      exception.set_backtrace(Array(backtrace) + caller)
      raise exception
    end

    private

    def build(text)
      klass = begin
        Object.const_get(class_name)
      rescue NameError, TypeError
        nil
      end
      exception = begin
        klass.is_a?(Class) && klass <= Exception ? klass.new(text) : RuntimeError.new(text)
      rescue StandardError
        RuntimeError.new(text)
      end
      # SystemCallError's classes put the errno's description before a message, which it already has
      exception.define_singleton_method(:to_s) { text } unless exception.message == text
      exception
    end
  end

  # Extends an exception the DataLoader raised for a worker: the worker's message alone.
  module WorkerException
    attr_accessor :worker_message
  end
end

module Torch
  module Utils
    module Data
      # torch.utils.data.get_worker_info(): in a DataLoader worker, its id, num_workers, seed and
      # dataset; nil in the DataLoader's own process.
      def self.get_worker_info
        PytorchParity::Worker.worker_info
      end
    end
  end
end
