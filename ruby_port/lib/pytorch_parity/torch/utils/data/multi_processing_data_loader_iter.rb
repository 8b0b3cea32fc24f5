# frozen_string_literal: true

# Part of: torch/utils/data/data_loader_workers.rb

require_relative "../../../bundle"
require "torch"
require_relative "data_loader"
require_relative "worker"
require_relative "worker_channel"

module PytorchParity
  # One pass over a DataLoader with num_workers worker processes, as PyTorch 1.13's
  # _MultiProcessingDataLoaderIter makes it: after the base seed (BaseDataLoaderIter), the workers
  # are forked, then prefetch_factor * num_workers batches of indices are dealt round-robin (batch i
  # to worker i % num_workers), and each batch delivered, in the sampler's order, sends the next one
  # out before it is yielded. The sampler runs here, in the DataLoader's process.
  #
  # The workers end with the pass: once it is over, they are told to stop (their channels closed) and
  # waited for (MP_STATUS_CHECK_INTERVAL at most, as PyTorch's join); when the pass ends by an
  # exception (a worker's error, a signal, the loop's own) they are killed at once. A worker that dies
  # ends the pass with an error naming it. Every worker is reaped, and one whose pass was abandoned
  # (an Enumerator dropped mid-way) is killed when the pass is garbage-collected or the process exits.
  class MultiProcessingDataLoaderIter < BaseDataLoaderIter
    MP_STATUS_CHECK_INTERVAL = 5.0

    # The DataLoader's ends of every live worker's channel in this process: a worker closes them all,
    # so that each worker's channel reads as closed once its DataLoader's process has gone.
    PARENT_ENDS = []

    WorkerProcess = Struct.new(:id, :pid, :channel)

    def initialize(loader)
      super
      @num_workers = loader.num_workers
      @prefetch_factor = loader.prefetch_factor
      @timeout = loader.timeout
      @workers = []
      @shutdown = false
    end

    def each
      start_workers
      reset
      until DONE.equal?(data = next_data)
        yield data
      end
      @exhausted = true
    ensure
      shutdown_workers(graceful: @exhausted || $!.nil?)
    end

    # Kills and reaps the workers of a pass that was dropped before it ended.
    def self.finalizer(workers)
      proc { reap(workers, graceful: false) }
    end

    # Closes the workers' channels, waits for them to exit (at most MP_STATUS_CHECK_INTERVAL when
    # graceful), kills those still running and reaps them all.
    def self.reap(workers, graceful:)
      workers.each do |worker|
        PARENT_ENDS.delete(worker.channel)
        worker.channel.close
      end
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + (graceful ? MP_STATUS_CHECK_INTERVAL : 0)
      workers.each do |worker|
        next if worker.pid.nil?

        kill_after(worker.pid, deadline)
        worker.pid = nil
      end
    end

    def self.kill_after(pid, deadline)
      loop do
        return if Process.waitpid(pid, Process::WNOHANG)
        break if Process.clock_gettime(Process::CLOCK_MONOTONIC) >= deadline

        sleep 0.005
      end
      Process.kill("KILL", pid)
      Process.waitpid(pid)
    rescue Errno::ECHILD, Errno::ESRCH
      nil
    end

    DONE = Object.new.freeze
    private_constant :DONE

    private

    def start_workers
      ObjectSpace.define_finalizer(self, self.class.finalizer(@workers))
      @num_workers.times do |worker_id|
        parent_end, child_end = WorkerChannel.pair
        PARENT_ENDS << parent_end
        worker = WorkerProcess.new(worker_id, nil, parent_end)
        @workers << worker
        worker.pid = fork_worker(worker_id, child_end)
        child_end.close
      end
    end

    def fork_worker(worker_id, child_end)
      parent_pid = Process.pid
      Process.fork do
        status = 1
        begin
          Worker.detach_from_parent(parent_pid, PARENT_ENDS)
          PARENT_ENDS.clear
          Worker.worker_loop(@loader, child_end, @base_seed, worker_id)
          status = 0
        rescue Errno::EPIPE, Errno::ECONNRESET
          status = 0 # the DataLoader stopped listening: nothing more to do
        rescue Exception => e # rubocop:disable Lint/RescueException
          warn "DataLoader worker process #{worker_id}: #{e.class}: #{e.message}" unless e.is_a?(SignalException)
        ensure
          Process.exit!(status)
        end
      end
    end

    # _reset(first_iter=True): the bookkeeping of a pass, then the first batches sent out.
    def reset
      @send_idx = 0 # the next task to send to a worker
      @rcvd_idx = 0 # the next task to deliver
      @task_info = {} # task => [worker id] while outstanding, [worker id, data] once received
      @workers_status = Array.new(@num_workers, true)
      @failed = {} # worker id => the error its death makes
      @next_worker = 0
      (@prefetch_factor * @num_workers).times { try_put_index }
    end

    def next_data
      loop do
        while @rcvd_idx < @send_idx
          info = @task_info[@rcvd_idx]
          break if info.size == 2 || @workers_status[info[0]] # has data or is still active

          @task_info.delete(@rcvd_idx)
          @rcvd_idx += 1
        end
        return DONE if @rcvd_idx >= @send_idx

        info = @task_info[@rcvd_idx]
        return process_data(@task_info.delete(@rcvd_idx)[1]) if info.size == 2
        # the batches a worker sent before it died are delivered; the first it did not send ends the pass
        raise @failed[info[0]] if @failed.key?(info[0])

        idx, data = get_data
        next if idx.nil? # a worker died

        if idx == @rcvd_idx
          @task_info.delete(idx)
          return process_data(data)
        end

        @task_info[idx] << data
      end
    end

    def try_put_index
      index = next_index or return
      worker_id = @num_workers.times.lazy.map { next_worker }.find { |id| @workers_status[id] } or return

      begin
        @workers[worker_id].channel.put([@send_idx, index]) unless @failed.key?(worker_id)
      rescue Errno::EPIPE, Errno::ECONNRESET
        nil # the worker has died: its channel's end says so when its batch is waited for
      end
      @task_info[@send_idx] = [worker_id]
      @send_idx += 1
    end

    def next_worker
      @next_worker.tap { @next_worker = (@next_worker + 1) % @num_workers }
    end

    # The next result a worker sends, [task, data]; [nil, nil] when a worker has died instead (its
    # error kept for when its batch is due). Raises when, with a timeout, none has sent anything for that long.
    def get_data
      channels = @workers.reject { |worker| @failed.key?(worker.id) }.map(&:channel)
      ready, = IO.select(channels, nil, nil, @timeout.positive? ? @timeout : nil)
      raise "DataLoader timed out after #{@timeout} seconds" if ready.nil?

      worker = @workers.find { |candidate| candidate.channel.equal?(ready.first) }
      message = worker.channel.get
      return message if message

      @failed[worker.id] = worker_failure(worker)
      [nil, nil]
    end

    def process_data(data)
      @rcvd_idx += 1
      try_put_index
      data.reraise if data.is_a?(ExceptionWrapper)
      data
    end

    def worker_failure(worker)
      pid = worker.pid
      status = wait_status(worker)
      how = if status.nil? then "closed its channel"
            elsif status.signaled? then "killed by signal SIG#{Signal.signame(status.termsig)}"
            else "exit status #{status.exitstatus}"
            end
      RuntimeError.new("DataLoader worker #{worker.id} (pid #{pid}) exited unexpectedly: #{how}")
    end

    # The worker's exit status once its channel has closed (it is exiting), reaped; nil if it lingers.
    def wait_status(worker)
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 1
      loop do
        _pid, status = Process.waitpid2(worker.pid, Process::WNOHANG)
        if status
          worker.pid = nil
          return status
        end
        return nil if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline

        sleep 0.005
      end
    rescue Errno::ECHILD
      nil
    end

    def shutdown_workers(graceful:)
      return if @shutdown

      @shutdown = true
      self.class.reap(@workers, graceful: graceful)
      ObjectSpace.undefine_finalizer(self)
    end
  end
end
