# frozen_string_literal: true

# How often a Ruby process that uses the port aborts on rice 4.0's method-registry collision
# (std::bad_any_cast; bin/patch-rice-method-registry is the fix). Starts PROCESSES processes of
# bench/rice_registry_workload.rb, JOBS at a time, at the lowest priority, and counts how each ended.
#
#   ruby bench/rice_registry_stress.rb [--processes 500] [--jobs 2] [--timeout 300]
#   HYMENOPTERA_PARITY_CACHE=/tmp/other-cache ruby bench/rice_registry_stress.rb   # another bundle
#
# Each process runs what users run (the workload file says what), after interning and allocating a
# different amount, so that the runs cover many of the process shapes in which rice 4.0's keys
# collide. It also reports rice's registry: its entries (on rice 4.0, fewer entries than usual
# means some were lost to a collision) and, on the patched header, how many of its (class, method id)
# pairs rice 4.0 would have lost; the tally is printed with the outcomes.
#
# The processes use this checkout's bundle (.bundle/config), or HYMENOPTERA_PARITY_CACHE/bundle if
# that is set. Each runs one thread (HYMENOPTERA_THREADS=1 unless set). The stderr of every process
# that did not end well is kept in the log directory printed at the end. Exit status 0 when every
# process succeeded, 1 otherwise. Without `bundle exec`: this script uses no gem itself.

require "fileutils"
require "json"
require "optparse"
require "rbconfig"
require "tmpdir"

ROOT = File.expand_path("..", __dir__)
WORKLOAD = File.join(__dir__, "rice_registry_workload.rb")
REGISTRY_ABORT = "std::bad_any_cast"
PATCHED_SYMBOL = "N4Rice6detail10MethodData7KeyHashE" # see bin/setup: torch_rb_has_patched_registry
OUTCOMES = {
  ok: "succeeded",
  registry_abort: "aborted with #{REGISTRY_ABORT} (rice's method-registry collision)",
  other_signal: "killed by another signal",
  failed: "exited non-zero without #{REGISTRY_ABORT}",
  timeout: "timed out (killed)"
}.freeze

def parse_options(argv)
  options = {processes: 500, jobs: 2, timeout: 300}
  OptionParser.new do |o|
    o.banner = "usage: ruby bench/rice_registry_stress.rb [options]"
    o.on("--processes N", Integer, "processes to start (default 500)")
    o.on("--jobs N", Integer, "processes at a time (default 2)")
    o.on("--timeout SECONDS", Integer, "kill a process after this long (default 300)")
  end.parse!(argv, into: options)
  abort "rice_registry_stress: --processes, --jobs and --timeout must be at least 1" unless options.values.all?(&:positive?)
  options
end

# The environment of every child: which bundle, one thread.
def child_env(work)
  env = {"BUNDLE_GEMFILE" => File.join(ROOT, "Gemfile"), "HYMENOPTERA_THREADS" => ENV.fetch("HYMENOPTERA_THREADS", "1")}
  cache = ENV["HYMENOPTERA_PARITY_CACHE"]
  return env if cache.nil? || cache.empty?

  # .bundle/config outranks BUNDLE_PATH in the environment; give Bundler a config of its own instead.
  config_dir = File.join(work, "bundle-config")
  FileUtils.mkdir_p(config_dir)
  File.write(File.join(config_dir, "config"), "---\nBUNDLE_PATH: #{JSON.generate(File.join(cache, "bundle"))}\n")
  env.merge("BUNDLE_APP_CONFIG" => config_dir)
end

# Runs one child to its end or its deadline; returns [outcome, detail].
def run_child(env, args, log, timeout)
  pid = Process.spawn(env, RbConfig.ruby, WORKLOAD, *args, in: File::NULL, out: File::NULL, err: log, pgroup: true)
  deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
  status = nil
  loop do
    _, status = Process.wait2(pid, Process::WNOHANG)
    break if status
    if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
      Process.kill("KILL", -pid)
      Process.wait2(pid)
      return [:timeout, "after #{timeout} s"]
    end
    sleep 0.05
  end
  stderr = File.binread(log)
  return [:ok, nil] if status.success?
  return [:registry_abort, status.inspect] if stderr.include?(REGISTRY_ABORT)
  return [:other_signal, "signal #{status.termsig}"] if status.signaled?

  [:failed, "exit #{status.exitstatus}"]
end

# Four tiny images per split (two per class), for the workload's one-epoch training run.
def make_data(env, work)
  script = <<~RUBY
    require "bundler/setup"
    require "vips"
    %w[train val].product(%w[ants bees]).each_with_index do |(split, klass), k|
      dir = File.join(ARGV[0], split, klass)
      FileUtils.mkdir_p(dir)
      2.times do |n|
        image = ((Vips::Image.xyz(72, 56) * [3 + k, 5 + n]) % 256).bandjoin(k * 40 + n * 20).cast(:uchar)
        image.write_to_file(File.join(dir, "img" + n.to_s + ".jpg"))
      end
    end
  RUBY
  system(env, RbConfig.ruby, "-rfileutils", "-e", script, File.join(work, "data"), exception: true)
end

# The stand-in net.pth, made by a workload process; that process can itself abort, so a few tries.
def make_weights(env, work, timeout)
  5.times do |attempt|
    log = File.join(work, "weights-#{attempt}.stderr")
    outcome, = run_child(env, ["weights", work], log, timeout)
    return attempt if outcome == :ok
  end
  abort "rice_registry_stress: could not make the stand-in net.pth in 5 tries; see #{work}/weights-*.stderr"
end

# Which bundle the children load, and whether its torch-rb holds the patched registry.
def inspect_bundle(env)
  probe = 'spec = Gem.loaded_specs.fetch("torch-rb"); ' \
          'so = Dir[File.join(spec.extension_dir, "**", "ext.so")].first || Dir[File.join(spec.full_gem_path, "lib", "**", "ext.so")].first; ' \
          'puts spec.full_gem_path, so.to_s'
  gem_path, so = IO.popen(env, [RbConfig.ruby, "-rbundler/setup", "-e", probe], &:read).lines.map(&:chomp)
  patched = so && File.file?(so) ? File.binread(so).include?(PATCHED_SYMBOL) : nil
  [patched, "torch-rb #{gem_path}; rice method registry #{{true => "patched", false => "NOT patched", nil => "unknown"}[patched]}"]
end

def main(argv)
  options = parse_options(argv)
  $stdout.sync = true
  Process.setpriority(Process::PRIO_PROCESS, 0, 19) # children inherit it
  work = Dir.mktmpdir("rice-registry-stress-")
  logs = File.join(work, "failures")
  FileUtils.mkdir_p(logs)
  env = child_env(work)
  patched, description = inspect_bundle(env)
  env["RICE_REGISTRY_PATCHED"] = patched ? "1" : "0"
  puts "rice_registry_stress: #{description}"
  make_data(env, work)
  weight_tries = make_weights(env, work, options[:timeout])

  counts = Hash.new(0)
  registries = Hash.new(0) # what each process's workload reported of rice's registry
  examples = Hash.new { |hash, key| hash[key] = [] }
  queue = Queue.new
  options[:processes].times { |index| queue << index }
  queue.close
  lock = Mutex.new
  started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
  workers = Array.new(options[:jobs]) do
    Thread.new do
      while (index = queue.pop)
        log = File.join(logs, "#{index}.stderr")
        outcome, detail = run_child(env, ["run", work, index.to_s], log, options[:timeout])
        registry = File.binread(log)[/^rice_registry: (.*)$/, 1] || "not reported"
        lock.synchronize do
          counts[outcome] += 1
          registries[registry] += 1
          examples[outcome] << "#{index} (#{detail})" if outcome != :ok
          File.delete(log) if outcome == :ok
          done = counts.values.sum
          warn "rice_registry_stress: #{done}/#{options[:processes]} #{counts.map { |k, v| "#{k}=#{v}" }.join(" ")}" if (done % 25).zero?
        end
      end
    end
  end
  workers.each(&:join)
  elapsed = Process.clock_gettime(Process::CLOCK_MONOTONIC) - started

  puts "rice_registry_stress: #{options[:processes]} processes, #{options[:jobs]} at a time, " \
       "#{format("%.0f", elapsed)} s (#{format("%.1f", elapsed / options[:processes] * options[:jobs])} s each)"
  puts "  (the stand-in net.pth took #{weight_tries + 1} tries)" if weight_tries.positive?
  OUTCOMES.each do |outcome, label|
    line = format("  %-15s %5d  %s", outcome, counts[outcome], label)
    line += "; processes #{examples[outcome].first(5).join(", ")}#{" ..." if examples[outcome].size > 5}" if examples[outcome].any?
    puts line
  end
  puts "  rice's method registry, as the processes reported it (processes: registry):"
  registries.sort_by { |registry, count| [-count, registry] }.each { |registry, count| puts format("  %5d  %s", count, registry) }
  failures = counts.sum { |outcome, count| outcome == :ok ? 0 : count }
  if failures.zero?
    FileUtils.rm_rf(work)
  else
    FileUtils.rm_rf(Dir.glob(File.join(work, "run-*")))
    puts "  stderr of each failed process: #{logs}/INDEX.stderr"
  end
  exit(failures.zero? ? 0 : 1)
end

main(ARGV)
