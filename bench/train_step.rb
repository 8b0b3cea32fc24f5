# frozen_string_literal: true

# Time the training step (finetune, feature_extractor) and the eval forward in Ruby.
#
#   bundle exec ruby bench/train_step.rb [--warmup 3] [--iters 10] [--modes finetune,feature_extractor,eval]
#
# The twin of bench/train_step.py. Prints one JSON object: this side's runtime, and per mode the time of
# every timed iteration and of each of its phases, in ms, with the process's CPU time and minor page faults
# per iteration, its resident memory after the mode, and Ruby's GC runs and GC time while timing: gc_ms is
# GC.stat(:time), process CPU time (LibTorch's spinning threads included); accounting_gc_wall_ms is the wall
# time of the GCs pytorch_parity's memory accounting started (tensor_memory_accounting.cpp says why both).
# A benchmark, not a test: it asserts nothing.
#
# Each mode also runs as MODE+gc: the same step followed by a minor GC, timed as the phase "gc". torch.rb
# frees a tensor's memory only when Ruby collects the object holding it; pytorch_parity (required by the
# workload) counts LibTorch's memory for Ruby's GC so that it runs as tensors pile up, and MODE+gc shows
# what a GC after every step, the port's loops' design before that, would still change.

require_relative "torch_setup"
require_relative "workload"

def clock_ms(clock = Process::CLOCK_MONOTONIC)
  Process.clock_gettime(clock, :float_millisecond)
end

GC_SUFFIX = "+gc"
DEFAULT_MODES = Workload::MODES + Workload::MODES.map { |mode| mode + GC_SUFFIX }

def rss_mb
  File.read("/proc/self/status")[/VmRSS:\s+(\d+)/, 1].to_i / 1024.0
end

# Minor page faults of this process so far (/proc/self/stat, field 10).
def minor_faults
  File.read("/proc/self/stat").split(") ", 2).last.split[7].to_i
end

def time_mode(name, warmup, iters)
  mode, gc = name.delete_suffix(GC_SUFFIX), name.end_with?(GC_SUFFIX)
  workload_step = Workload.step_fn(mode)
  step = lambda do |mark|
    workload_step.call(mark)
    next unless gc

    GC.start(full_mark: false, immediate_sweep: true)
    mark.call("gc")
  end
  warmup.times { step.call(->(_phase) {}) }
  totals, cpu, faults = [], [], []
  phases = (Workload.phases(mode) + (gc ? ["gc"] : [])).to_h { |phase| [phase, []] }
  gc_count, gc_time, started = GC.stat(:count), GC.stat(:time), accounting_gcs
  iters.times do
    cpu_start, faults_start = clock_ms(Process::CLOCK_PROCESS_CPUTIME_ID), minor_faults
    start = last = clock_ms
    mark = lambda do |phase|
      now = clock_ms
      phases[phase] << now - last
      last = now
    end
    step.call(mark)
    totals << last - start
    cpu << clock_ms(Process::CLOCK_PROCESS_CPUTIME_ID) - cpu_start
    faults << minor_faults - faults_start
  end
  runs, seconds = accounting_gcs
  {total_ms: totals, phases_ms: phases, cpu_ms: cpu, page_faults: faults, rss_mb: rss_mb,
   gc_runs: GC.stat(:count) - gc_count, gc_ms: GC.stat(:time) - gc_time,
   accounting_gc_runs: runs - started[0], accounting_gc_wall_ms: (seconds - started[1]) * 1000.0}
end

# [GCs pytorch_parity's memory accounting started so far, their wall time in s]; [0, 0.0] without it.
def accounting_gcs
  defined?(PytorchParity::TensorMemoryAccounting) ? PytorchParity::TensorMemoryAccounting.collections_started : [0, 0.0]
end

options = {warmup: 3, iters: 10, modes: DEFAULT_MODES.join(",")}
OptionParser.new do |parser|
  parser.banner = "usage: bundle exec ruby bench/train_step.rb [options]"
  parser.on("--warmup N", Integer, "untimed iterations per mode (default 3)") { |n| options[:warmup] = n }
  parser.on("--iters N", Integer, "timed iterations per mode (default 10)") { |n| options[:iters] = n }
  parser.on("--modes LIST", "comma-separated subset of #{DEFAULT_MODES.join(",")}") { |list| options[:modes] = list }
end.parse!

modes = options[:modes].split(",").to_h { |mode| [mode, time_mode(mode, options[:warmup], options[:iters])] }
puts JSON.generate(side: "ruby", source: Workload::SOURCE, runtime: Hymenoptera::RuntimeInfo.describe, modes: modes)
