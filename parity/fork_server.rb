# frozen_string_literal: true

# The fork server's Ruby twin (parity/fork_server.py says what it is for and the protocol):
#
#   bundle exec ruby parity/fork_server.rb LIB...
#
# requires the LIBs (torch: LibTorch), then forks a child for each `ruby [-rLIB...] SCRIPT ARGS` it reads
# on stdin, which takes the command's variables, folder, output and priority, requires each -r LIB in
# order and loads SCRIPT with $PROGRAM_NAME and ARGV as `ruby` sets them; an exception it raises ends the
# child as it ends `ruby` (at_exit sees it in $!, the message goes to stderr, exit 1). What differs: the
# backtrace names the script's top level `<top (required)>`, not `<main>`, and ends in this file's frames;
# and the child ends without Ruby's teardown (exit_as_ruby).

require "json"

module ForkServer
  POLL = 0.05 # seconds between looks for ended children while no command comes

  module_function

  # Forks a child per command until stdin ends; returns in a child, with its command.
  def serve(preload)
    preload.each { |name| require name }
    running = {}
    buffer = +""
    loop do
      if IO.select([$stdin], nil, nil, POLL)
        chunk = $stdin.read_nonblock(65_536, exception: false)
        if chunk.nil?
          stop(running)
          return nil
        end
        buffer << chunk if chunk.is_a?(String)
        while (newline = buffer.index("\n"))
          request = JSON.parse(buffer.slice!(0..newline))
          pid = fork
          return request if pid.nil?

          running[pid] = Process.clock_gettime(Process::CLOCK_MONOTONIC)
          answer(started: pid)
        end
      end
      reap(running, Process::WNOHANG)
    end
  end

  # A child's CPU is what the children's total grew by when it was reaped (this process reaps one at a time).
  def reap(running, flags)
    until running.empty?
      before = Process.times
      pid, status = Process.wait2(-1, flags)
      return if pid.nil?

      after = Process.times
      started = running.delete(pid)
      next unless started

      user = after.cutime - before.cutime
      answer(pid: pid, status: status.exitstatus || 128 + status.termsig.to_i, cpu: user + after.cstime - before.cstime,
             user: user, wall: Process.clock_gettime(Process::CLOCK_MONOTONIC) - started)
    end
  end

  def stop(running)
    running.each_key { |pid| Process.kill("TERM", pid) }
    reap(running, 0)
  end

  def answer(message)
    $stdout.syswrite("#{JSON.generate(message)}\n")
  end

  # In the forked child: the command's variables, folder, output and priority, then `ruby [-rLIB...] SCRIPT ARGS`.
  def run_child(request)
    $stdin.reopen(File::NULL)
    $stdout.reopen(request.fetch("output"), "w")
    $stderr.reopen($stdout)
    argv = request.fetch("argv").dup
    libraries = []
    libraries << argv.shift.delete_prefix("-r") while argv.first&.match?(/\A-r./)
    script = argv.shift
    if script.nil? || script.start_with?("-")
      warn "parity/fork_server.rb: serves `ruby [-rLIB...] SCRIPT ARGS`, not #{request['argv']}"
      exit! 2
    end
    Dir.chdir(request.fetch("cwd"))
    ENV.update(request.fetch("env"))
    Process.setpriority(Process::PRIO_PROCESS, 0, Process.getpriority(Process::PRIO_PROCESS, 0) + request.fetch("niceness", 0))
    $PROGRAM_NAME = script # as `ruby` sets them before its -r libraries load (pytorch_parity/record reads them)
    ARGV.replace(argv)
    at_exit { exit_as_ruby($!) } # the first handler, so the last to run: after the program's (the recorder's end)
    libraries.each { |name| require name }
    load(File.absolute_path?(script) ? script : "./#{script}")
  end

  # How `ruby` ends after its at_exit handlers (the status, and an error's message on stderr), but at once: its
  # teardown would free every object and write to (so copy) each page of what the server loaded, 0.65 CPU-s a run.
  # The finalizers still pending then do not run; open files are flushed first.
  def exit_as_ruby(error)
    status = case error
             when nil then 0
             when SystemExit then error.status
             else
               $stderr.write(error.full_message(highlight: false))
               1
             end
    ObjectSpace.each_object(IO) { |io| io.flush unless io.closed? rescue nil }
    exit!(status)
  end
end

request = ForkServer.serve(ARGV)
ForkServer.run_child(request) if request
