# frozen_string_literal: true

# Time the training step (finetune, feature_extractor) and the eval forward in Ruby.
#
#   bundle exec ruby bench/train_step.rb [--warmup 3] [--iters 10] [--modes finetune,feature_extractor,eval]
#
# The twin of bench/train_step.py. Prints one JSON object: this side's runtime, and per mode the time of
# every timed iteration and of each of its phases, in ms (and Ruby's GC runs and GC time while timing).
# A benchmark, not a test: it asserts nothing.

ENV["BUNDLE_GEMFILE"] ||= File.expand_path("../Gemfile", __dir__)
require "bundler/setup"
require "json"
require "optparse"
require_relative "../ruby_port/lib/hymenoptera/threads"
Hymenoptera::Threads.configure!
require "torch"
require "torchvision"
require_relative "../ruby_port/lib/hymenoptera/runtime_info"
require_relative "workload"

def clock_ms
  Process.clock_gettime(Process::CLOCK_MONOTONIC, :float_millisecond)
end

def time_mode(mode, warmup, iters)
  inputs, labels = Workload.batch
  model, optimizer = Workload.build(mode)
  criterion = Torch::NN::CrossEntropyLoss.new
  warmup.times { Workload.run(mode, model, optimizer, criterion, inputs, labels, ->(_phase) {}) }
  totals = []
  phases = Workload.phases(mode).to_h { |phase| [phase, []] }
  gc_count, gc_time = GC.stat(:count), GC.stat(:time)
  iters.times do
    start = last = clock_ms
    mark = lambda do |phase|
      now = clock_ms
      phases[phase] << now - last
      last = now
    end
    Workload.run(mode, model, optimizer, criterion, inputs, labels, mark)
    totals << last - start
  end
  {total_ms: totals, phases_ms: phases, gc_runs: GC.stat(:count) - gc_count, gc_ms: GC.stat(:time) - gc_time}
end

options = {warmup: 3, iters: 10, modes: Workload::MODES.join(",")}
OptionParser.new do |parser|
  parser.banner = "usage: bundle exec ruby bench/train_step.rb [options]"
  parser.on("--warmup N", Integer, "untimed iterations per mode (default 3)") { |n| options[:warmup] = n }
  parser.on("--iters N", Integer, "timed iterations per mode (default 10)") { |n| options[:iters] = n }
  parser.on("--modes LIST", "comma-separated subset of #{Workload::MODES.join(",")}") { |list| options[:modes] = list }
end.parse!

modes = options[:modes].split(",").to_h { |mode| [mode, time_mode(mode, options[:warmup], options[:iters])] }
puts JSON.generate(side: "ruby", source: Workload::SOURCE, runtime: Hymenoptera::RuntimeInfo.describe, modes: modes)
